"""The Open-Meteo provider: geocoding, then current conditions, over the shared HTTP session."""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from workers.definition import ToolError
from workers.weather.http_session import _shared_session
from workers.weather.observation import Observation
from workers.weather.wmo_codes import describe_weather_code

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

_Model = TypeVar("_Model", bound=BaseModel)

# Qualifiers people write after the comma that are not what Open-Meteo calls the country.
_QUALIFIER_ALIASES = {"uk": "gb", "usa": "us", "u.s.": "us", "u.s.a.": "us"}


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
