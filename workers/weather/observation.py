"""What a weather provider reports (`Observation`) and what a provider is (`WeatherProvider`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
