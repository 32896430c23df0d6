"""The offline provider: deterministic sample conditions derived from the city name."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from workers.weather.observation import Observation
from workers.weather.wmo_codes import describe_weather_code

OFFLINE_NOTE = (
    "Sample data from toolq's offline weather provider, derived from the city name: "
    "these are not real weather observations."
)

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
