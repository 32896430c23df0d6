"""Where the `weather` tool gets its data: Open-Meteo over HTTP, or offline sample values.

Configuration is read from the environment at call time (not import time):

- `TOOLQ_WEATHER_PROVIDER`: `open-meteo` (default) or `offline` (deterministic sample data,
  no network at all).
- `TOOLQ_WEATHER_GEOCODING_URL`: base URL of the geocoding API
  (default `https://geocoding-api.open-meteo.com`).
- `TOOLQ_WEATHER_FORECAST_URL`: base URL of the forecast API (default `https://api.open-meteo.com`).
- `TOOLQ_WEATHER_TIMEOUT`: seconds allowed for one whole lookup, geocoding plus forecast
  (default 8).

One `aiohttp.ClientSession` is shared per process (per event loop); the worker runtime closes it
on shutdown with `aclose_providers()`. Every failure reaches the tool as a `ToolError` whose
message a model can act on; no aiohttp exception escapes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from workers.definition import ToolError

DEFAULT_PROVIDER = "open-meteo"
PROVIDERS = ("open-meteo", "offline")
DEFAULT_GEOCODING_URL = "https://geocoding-api.open-meteo.com"
DEFAULT_FORECAST_URL = "https://api.open-meteo.com"
DEFAULT_TIMEOUT = 8.0
CURRENT_VARIABLES = (
    "temperature_2m",
    "relative_humidity_2m",
    "apparent_temperature",
    "is_day",
    "weather_code",
    "wind_speed_10m",
    "wind_direction_10m",
)
OFFLINE_NOTE = (
    "Sample data from toolq's offline weather provider, derived from the city name: "
    "these are not real weather observations."
)

#: WMO weather interpretation codes, as used by Open-Meteo's `weather_code`.
WMO_CODES: dict[int, str] = {
    0: "Clear sky",
    1: "Mainly clear",
    2: "Partly cloudy",
    3: "Overcast",
    45: "Fog",
    48: "Depositing rime fog",
    51: "Light drizzle",
    53: "Moderate drizzle",
    55: "Dense drizzle",
    56: "Light freezing drizzle",
    57: "Dense freezing drizzle",
    61: "Slight rain",
    63: "Moderate rain",
    65: "Heavy rain",
    66: "Light freezing rain",
    67: "Heavy freezing rain",
    71: "Slight snow fall",
    73: "Moderate snow fall",
    75: "Heavy snow fall",
    77: "Snow grains",
    80: "Slight rain showers",
    81: "Moderate rain showers",
    82: "Violent rain showers",
    85: "Slight snow showers",
    86: "Heavy snow showers",
    95: "Thunderstorm",
    96: "Thunderstorm with slight hail",
    99: "Thunderstorm with heavy hail",
}

_Model = TypeVar("_Model", bound=BaseModel)

# Qualifiers people write after the comma that are not what Open-Meteo calls the country.
_QUALIFIER_ALIASES = {"uk": "gb", "usa": "us", "u.s.": "us", "u.s.a.": "us"}


def describe_weather_code(code: int) -> str:
    """Words for a WMO weather code, e.g. 2 -> "Partly cloudy"."""
    return WMO_CODES.get(code, f"Unknown (code {code})")


@dataclass(frozen=True)
class Observation:
    """Current conditions at one place, as any provider reports them."""

    city: str
    temperature: float
    condition: str
    weather_code: int
    observed_at: str
    source: str
    temperature_unit: str = "°C"
    apparent_temperature: float | None = None
    wind_speed: float | None = None
    wind_direction: int | None = None
    humidity: int | None = None
    is_day: bool | None = None
    latitude: float | None = None
    longitude: float | None = None
    country: str | None = None
    admin1: str | None = None
    timezone: str | None = None
    note: str | None = None


class WeatherProvider(Protocol):
    name: str

    async def current(self, city: str) -> Observation: ...


# --- the shared HTTP session ---------------------------------------------------------------


class _Shared:
    session: aiohttp.ClientSession | None = None
    loop: asyncio.AbstractEventLoop | None = None


_shared = _Shared()


def _shared_session() -> aiohttp.ClientSession:
    """The process's ClientSession, created on first use (inside the running event loop)."""
    loop = asyncio.get_running_loop()
    session = _shared.session
    if session is not None and not session.closed:
        if _shared.loop is loop:
            return session
        # Made on an event loop that is gone: it cannot be closed from here, only dropped.
        session.detach()
    _shared.session = aiohttp.ClientSession(headers={"User-Agent": "toolq-weather/0.1"})
    _shared.loop = loop
    return _shared.session


async def aclose_providers() -> None:
    """Close the shared HTTP session, if one was opened; safe to call more than once."""
    session, _shared.session, _shared.loop = _shared.session, None, None
    if session is not None and not session.closed:
        await session.close()


# --- Open-Meteo ----------------------------------------------------------------------------


class _Place(BaseModel):
    name: str
    latitude: float
    longitude: float
    country: str | None = None
    country_code: str | None = None
    admin1: str | None = None
    admin2: str | None = None
    timezone: str | None = None


class _GeocodingResponse(BaseModel):
    # Open-Meteo leaves `results` out entirely when nothing matched.
    results: list[_Place] | None = None


class _Current(BaseModel):
    time: str
    temperature_2m: float
    weather_code: int
    relative_humidity_2m: float | None = None
    apparent_temperature: float | None = None
    is_day: bool | None = None
    wind_speed_10m: float | None = None
    wind_direction_10m: float | None = None


class _ForecastResponse(BaseModel):
    latitude: float
    longitude: float
    timezone: str | None = None
    current: _Current


def _pick_place(places: list[_Place], qualifier: str) -> _Place:
    """The first place matching most of the comma-separated qualifier parts (or the first)."""
    parts = [part.strip().casefold() for part in qualifier.split(",") if part.strip()]
    parts = [_QUALIFIER_ALIASES.get(part, part) for part in parts]

    def score(place: _Place) -> int:
        fields = {
            value.casefold()
            for value in (place.country, place.country_code, place.admin1, place.admin2)
            if value
        }
        return sum(part in fields for part in parts)

    return max(places, key=score)  # max keeps the first of equal scores: Open-Meteo's ranking


class OpenMeteoProvider:
    """Geocode the city with Open-Meteo, then fetch its current conditions."""

    name = "open-meteo"

    def __init__(
        self,
        *,
        geocoding_url: str = DEFAULT_GEOCODING_URL,
        forecast_url: str = DEFAULT_FORECAST_URL,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.geocoding_url = geocoding_url.rstrip("/")
        self.forecast_url = forecast_url.rstrip("/")
        self.timeout = timeout

    async def current(self, city: str) -> Observation:
        try:
            async with asyncio.timeout(self.timeout):
                place = await self._geocode(city)
                forecast = await self._forecast(place)
        except TimeoutError as exc:
            raise ToolError(
                f"The weather service did not answer within {self.timeout:g} s. "
                "It may be slow or overloaded right now; try again shortly."
            ) from exc
        now = forecast.current
        return Observation(
            city=place.name,
            temperature=now.temperature_2m,
            condition=describe_weather_code(now.weather_code),
            weather_code=now.weather_code,
            observed_at=now.time,
            source=self.name,
            apparent_temperature=now.apparent_temperature,
            wind_speed=now.wind_speed_10m,
            wind_direction=_round(now.wind_direction_10m),
            humidity=_round(now.relative_humidity_2m),
            is_day=now.is_day,
            latitude=place.latitude,
            longitude=place.longitude,
            country=place.country,
            admin1=place.admin1,
            timezone=forecast.timezone or place.timezone,
        )

    async def _geocode(self, city: str) -> _Place:
        name, _, qualifier = city.partition(",")
        name, qualifier = " ".join(name.split()), qualifier.strip()
        if not name:
            raise ToolError(f"'{city}' has no place name before the comma; write it like 'Paris, France'.")
        params = {
            "name": name,
            # With a qualifier, fetch a few candidates to choose the one in that country/region.
            "count": "10" if qualifier else "1",
            "language": "en",
            "format": "json",
        }
        data = await self._get_json("geocoding", f"{self.geocoding_url}/v1/search", params)
        response = _parse(_GeocodingResponse, data, "geocoding")
        if not response.results:
            raise ToolError(
                f"No place named '{city.strip()}' was found. Check the spelling or add the "
                "country, e.g. 'Paris, France'."
            )
        return _pick_place(response.results, qualifier)

    async def _forecast(self, place: _Place) -> _ForecastResponse:
        params = {
            "latitude": f"{place.latitude:.5f}",
            "longitude": f"{place.longitude:.5f}",
            "current": ",".join(CURRENT_VARIABLES),
            "timezone": "auto",
        }
        data = await self._get_json("forecast", f"{self.forecast_url}/v1/forecast", params)
        return _parse(_ForecastResponse, data, "forecast")

    async def _get_json(self, service: str, url: str, params: dict[str, str]) -> Any:
        session = _shared_session()
        try:
            async with session.get(
                url, params=params, timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as response:
                status = response.status
                body = await response.read()
        except TimeoutError:
            raise  # reported once, with the budget, by current()
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror or str(exc.os_error)
            raise ToolError(
                f"Could not connect to the weather service ({service}) at {exc.host}:{exc.port}: "
                f"{reason}. The service is unreachable from here right now; try again later."
            ) from exc
        except aiohttp.ClientError as exc:
            raise ToolError(
                f"The request to the weather service ({service}) failed: "
                f"{type(exc).__name__}: {exc}. Try again later."
            ) from exc
        if status != 200:
            raise ToolError(_http_error_message(service, status, body))
        try:
            return json.loads(body)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ToolError(
                f"The weather service ({service}) sent a response that is not valid JSON; "
                "it may be having problems. Try again later."
            ) from exc


def _http_error_message(service: str, status: int, body: bytes) -> str:
    reason = ""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("reason"), str):
        reason = f" ({payload['reason']})"
    message = f"The weather service answered HTTP {status} to the {service} request{reason}."
    if status == 429:
        return f"{message} It is rate limiting this server; wait a minute before trying again."
    if status >= 500:
        return f"{message} This is a problem on its side, usually temporary; try again shortly."
    return f"{message} The request was refused; retrying the same request will not help."


def _parse(model: type[_Model], data: Any, service: str) -> _Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ToolError(
            f"The weather service ({service}) sent data in an unexpected shape "
            f"({where}: {first['msg']}); it may have changed or be having problems."
        ) from exc


def _round(value: float | None) -> int | None:
    return None if value is None else round(value)


# --- offline samples -----------------------------------------------------------------------

_SAMPLE_CODES = (0, 1, 2, 3, 45, 51, 61, 63, 71, 80, 95)


class OfflineSampleProvider:
    """Deterministic made-up conditions per city name; never touches the network."""

    name = "offline-sample"

    async def current(self, city: str) -> Observation:
        place = " ".join(city.split())
        digest = hashlib.sha256(place.casefold().encode()).digest()

        def sample(index: int, low: float, high: float) -> float:
            fraction = int.from_bytes(digest[2 * index : 2 * index + 2], "big") / 0xFFFF
            return low + (high - low) * fraction

        temperature = round(sample(0, -10.0, 35.0), 1)
        code = _SAMPLE_CODES[digest[12] % len(_SAMPLE_CODES)]
        now = datetime.now(UTC)
        observed = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
        return Observation(
            city=place,
            temperature=temperature,
            condition=describe_weather_code(code),
            weather_code=code,
            observed_at=observed.strftime("%Y-%m-%dT%H:%M"),
            source=self.name,
            apparent_temperature=round(temperature + sample(1, -3.0, 3.0), 1),
            wind_speed=round(sample(2, 0.0, 40.0), 1),
            wind_direction=round(sample(3, 0.0, 359.0)),
            humidity=round(sample(4, 20.0, 100.0)),
            is_day=digest[13] % 2 == 0,
            timezone="GMT",
            note=OFFLINE_NOTE,
        )


# --- selection -----------------------------------------------------------------------------


def _env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def _timeout_from_env() -> float:
    raw = _env("TOOLQ_WEATHER_TIMEOUT", str(DEFAULT_TIMEOUT))
    try:
        timeout = float(raw)
    except ValueError:
        timeout = -1.0
    if not 0 < timeout < float("inf"):
        raise ToolError(
            f"The weather tool is misconfigured: TOOLQ_WEATHER_TIMEOUT must be a positive "
            f"number of seconds, not {raw!r}."
        )
    return timeout


def provider_from_env() -> WeatherProvider:
    """The provider the environment selects (`TOOLQ_WEATHER_PROVIDER`), configured from it."""
    raw = _env("TOOLQ_WEATHER_PROVIDER", DEFAULT_PROVIDER)
    choice = raw.lower()
    if choice == "open-meteo":
        return OpenMeteoProvider(
            geocoding_url=_env("TOOLQ_WEATHER_GEOCODING_URL", DEFAULT_GEOCODING_URL),
            forecast_url=_env("TOOLQ_WEATHER_FORECAST_URL", DEFAULT_FORECAST_URL),
            timeout=_timeout_from_env(),
        )
    if choice == "offline":
        return OfflineSampleProvider()
    valid = " or ".join(repr(name) for name in PROVIDERS)
    raise ToolError(
        f"The weather tool is misconfigured: TOOLQ_WEATHER_PROVIDER is {raw!r}; valid values are {valid}."
    )


async def current_weather(city: str) -> Observation:
    """Current conditions for `city` from the provider the environment selects."""
    return await provider_from_env().current(city)
