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

from workers.weather.http_session import aclose_providers
from workers.weather.observation import Observation, WeatherProvider
from workers.weather.offline_sample import OFFLINE_NOTE, OfflineSampleProvider
from workers.weather.open_meteo import (
    CURRENT_VARIABLES,
    DEFAULT_FORECAST_URL,
    DEFAULT_GEOCODING_URL,
    DEFAULT_TIMEOUT,
    OpenMeteoProvider,
)
from workers.weather.selection import DEFAULT_PROVIDER, PROVIDERS, current_weather, provider_from_env
from workers.weather.wmo_codes import WMO_CODES, describe_weather_code

__all__ = [
    "CURRENT_VARIABLES",
    "DEFAULT_FORECAST_URL",
    "DEFAULT_GEOCODING_URL",
    "DEFAULT_PROVIDER",
    "DEFAULT_TIMEOUT",
    "OFFLINE_NOTE",
    "PROVIDERS",
    "WMO_CODES",
    "Observation",
    "OfflineSampleProvider",
    "OpenMeteoProvider",
    "WeatherProvider",
    "aclose_providers",
    "current_weather",
    "describe_weather_code",
    "provider_from_env",
]
