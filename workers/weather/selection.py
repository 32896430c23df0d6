"""Choosing and configuring the provider from the environment, at call time."""

from __future__ import annotations

import os

from workers.definition import ToolError
from workers.weather.observation import Observation, WeatherProvider
from workers.weather.offline_sample import OfflineSampleProvider
from workers.weather.open_meteo import (
    DEFAULT_FORECAST_URL,
    DEFAULT_GEOCODING_URL,
    DEFAULT_TIMEOUT,
    OpenMeteoProvider,
)

DEFAULT_PROVIDER = "open-meteo"
PROVIDERS = ("open-meteo", "offline")


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
