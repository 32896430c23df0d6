"""A local stand-in for Open-Meteo: a real aiohttp server on 127.0.0.1 serving the two endpoints
the weather tool uses, `GET /v1/search` (geocoding) and `GET /v1/forecast`, from a small table
of cities, in Open-Meteo's response shapes.

    async with FakeOpenMeteo() as fake:      # or: await fake.start() ... await fake.stop()
        monkeypatch.setenv("TOOLQ_WEATHER_GEOCODING_URL", fake.base_url)
        monkeypatch.setenv("TOOLQ_WEATHER_FORECAST_URL", fake.base_url)
        fake.forecast_status = 500           # knobs: fail, hang, or garble an endpoint
        fake.count("/v1/forecast")           # requests received

Both endpoints live on the one base URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from loopback_server import LoopbackServer

SEARCH_PATH = "/v1/search"
FORECAST_PATH = "/v1/forecast"

# What /v1/forecast knows how to answer for `current=`, with Open-Meteo's units.
CURRENT_UNITS = {
    "temperature_2m": "°C",
    "relative_humidity_2m": "%",
    "apparent_temperature": "°C",
    "is_day": "",
    "weather_code": "wmo code",
    "wind_speed_10m": "km/h",
    "wind_direction_10m": "°",
}


@dataclass(frozen=True)
class FakeCity:
    """One row of the fake's geocoding table plus the current conditions it reports there."""

    id: int
    name: str
    latitude: float
    longitude: float
    country: str
    country_code: str
    admin1: str | None
    timezone: str
    utc_offset_seconds: int
    timezone_abbreviation: str
    population: int
    elevation: float
    current: dict[str, float | int] = field(default_factory=dict)
    time: str = "2025-06-01T12:00"

    def geocoding_result(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "elevation": self.elevation,
            "feature_code": "PPLC",
            "country_code": self.country_code,
            "timezone": self.timezone,
            "population": self.population,
            "country": self.country,
        }
        if self.admin1 is not None:
            result["admin1"] = self.admin1
        return result


def _now(values: tuple[float, int, float, int, int, float, int]) -> dict[str, float | int]:
    """Current conditions, in the order of CURRENT_UNITS: temperature, humidity, apparent
    temperature, is_day, weather code, wind speed, wind direction."""
    return dict(zip(CURRENT_UNITS, values, strict=True))


# Coordinates, regions and time zones as Open-Meteo's geocoding (GeoNames) gives them.
CITIES: tuple[FakeCity, ...] = (
    FakeCity(
        1273294, "Delhi", 28.65195, 77.23149, "India", "IN", "Delhi",
        "Asia/Kolkata", 19800, "IST", 10927986, 227.0,
        _now((31.4, 52, 35.2, 1, 2, 9.7, 284)), "2025-06-01T17:30",
    ),
    FakeCity(
        2643743, "London", 51.50853, -0.12574, "United Kingdom", "GB", "England",
        "Europe/London", 3600, "BST", 8961989, 25.0,
        _now((16.2, 71, 15.1, 1, 3, 14.8, 245)), "2025-06-01T13:00",
    ),
    FakeCity(
        6058560, "London", 42.98339, -81.23304, "Canada", "CA", "Ontario",
        "America/Toronto", -14400, "EDT", 346765, 251.0,
        _now((19.0, 60, 18.7, 1, 1, 11.2, 200)), "2025-06-01T08:00",
    ),
    FakeCity(
        2988507, "Paris", 48.85341, 2.3488, "France", "FR", "Île-de-France",
        "Europe/Paris", 7200, "CEST", 2138551, 42.0,
        _now((18.9, 64, 18.1, 1, 61, 12.6, 230)), "2025-06-01T14:00",
    ),
    FakeCity(
        4717560, "Paris", 33.66094, -95.55551, "United States", "US", "Texas",
        "America/Chicago", -18000, "CDT", 24782, 183.0,
        _now((27.5, 58, 29.0, 1, 95, 20.1, 170)), "2025-06-01T07:00",
    ),
    FakeCity(
        1850147, "Tokyo", 35.6895, 139.69171, "Japan", "JP", "Tokyo",
        "Asia/Tokyo", 32400, "JST", 9733276, 44.0,
        _now((22.3, 80, 24.0, 0, 0, 5.4, 90)), "2025-06-01T21:00",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    query: dict[str, str]


class FakeOpenMeteo(LoopbackServer):
    """Fake Open-Meteo geocoding + forecast API on 127.0.0.1, on a free port.

    Knobs (plain attributes, change them at any time):
    - `forecast_status` / `geocoding_status`: answer that endpoint with this HTTP status and an
      Open-Meteo style error body `{"error": true, "reason": ...}` (None: answer normally).
    - `forecast_delay` / `geocoding_delay`: seconds to wait before answering (a "hang" when
      longer than the client's timeout; `stop()` releases waiting handlers at once).
    - `forecast_body` / `geocoding_body`: raw text to answer with instead (malformed JSON tests).
    `requests` records every request received; `count(path)` counts them.
    """

    name = "FakeOpenMeteo"

    def __init__(self, cities: Sequence[FakeCity] = CITIES) -> None:
        super().__init__()
        self.cities = tuple(cities)
        self.forecast_status: int | None = None
        self.forecast_delay: float = 0.0
        self.forecast_body: str | None = None
        self.geocoding_status: int | None = None
        self.geocoding_delay: float = 0.0
        self.geocoding_body: str | None = None
        self.requests: list[RecordedRequest] = []
        self._stopping = asyncio.Event()

    @property
    def env(self) -> dict[str, str]:
        """The environment that points the weather tool at this fake."""
        return {"TOOLQ_WEATHER_GEOCODING_URL": self.base_url, "TOOLQ_WEATHER_FORECAST_URL": self.base_url}

    def count(self, path: str | None = None) -> int:
        """Requests received, all or for one path ("/v1/search", "/v1/forecast")."""
        return sum(1 for request in self.requests if path is None or request.path == path)

    def fail_forecast(self, status: int = 500) -> None:
        self.forecast_status = status

    def hang_forecast(self, seconds: float = 30.0) -> None:
        self.forecast_delay = seconds

    def routes(self, app: web.Application) -> None:
        app.router.add_get(SEARCH_PATH, self._search)
        app.router.add_get(FORECAST_PATH, self._forecast)

    async def on_start(self) -> None:
        self._stopping.clear()

    async def on_stop(self) -> None:
        self._stopping.set()  # release any hanging handler

    # --- handlers --------------------------------------------------------------------------

    async def _knobs(
        self, request: web.Request, status: int | None, delay: float, body: str | None
    ) -> web.Response | None:
        self.requests.append(RecordedRequest(request.path, dict(request.query)))
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        if status is not None:
            return _error(status, f"Fake Open-Meteo was told to answer HTTP {status}")
        if body is not None:
            return web.Response(text=body, content_type="application/json")
        return None

    async def _search(self, request: web.Request) -> web.Response:
        knob = await self._knobs(request, self.geocoding_status, self.geocoding_delay, self.geocoding_body)
        if knob is not None:
            return knob
        name = request.query.get("name", "").strip()
        try:
            count = int(request.query.get("count", "10"))
        except ValueError:
            return _error(400, "Parameter 'count' must be an integer")
        if not 1 <= count <= 100:
            return _error(400, "Parameter 'count' must be between 1 and 100")
        payload: dict[str, Any] = {"generationtime_ms": 0.4}
        # Like Open-Meteo: fewer than 2 characters match nothing; otherwise whole-name matches
        # (case-insensitive) ranked by population. No match: no "results" key at all.
        matches = sorted(
            (city for city in self.cities if len(name) >= 2 and city.name.lower() == name.lower()),
            key=lambda city: -city.population,
        )[:count]
        if matches:
            payload["results"] = [city.geocoding_result() for city in matches]
        return web.json_response(payload)

    async def _forecast(self, request: web.Request) -> web.Response:
        knob = await self._knobs(request, self.forecast_status, self.forecast_delay, self.forecast_body)
        if knob is not None:
            return knob
        try:
            latitude = float(request.query["latitude"])
            longitude = float(request.query["longitude"])
        except (KeyError, ValueError):
            return _error(400, "Parameter 'latitude' and 'longitude' must be floating point")
        variables = [v for v in request.query.get("current", "").split(",") if v]
        unknown = [v for v in variables if v not in CURRENT_UNITS]
        if unknown:
            return _error(400, f"Cannot initialize WeatherVariable from invalid String value {unknown[0]}")
        city = min(
            self.cities,
            key=lambda c: math.hypot(c.latitude - latitude, c.longitude - longitude),
        )
        auto = request.query.get("timezone") == "auto"
        payload: dict[str, Any] = {
            # Open-Meteo answers with its grid cell's coordinates, close to but not the input.
            "latitude": round(latitude, 2) + 0.004,
            "longitude": round(longitude, 2) - 0.003,
            "generationtime_ms": 0.05,
            "utc_offset_seconds": city.utc_offset_seconds if auto else 0,
            "timezone": city.timezone if auto else "GMT",
            "timezone_abbreviation": city.timezone_abbreviation if auto else "GMT",
            "elevation": city.elevation,
        }
        if variables:
            payload["current_units"] = {"time": "iso8601", "interval": "seconds"} | {
                v: CURRENT_UNITS[v] for v in variables
            }
            payload["current"] = {"time": city.time, "interval": 900} | {
                v: city.current[v] for v in variables
            }
        return web.json_response(payload)


def _error(status: int, reason: str) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps({"error": True, "reason": reason}),
        content_type="application/json",
    )
