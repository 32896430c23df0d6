from dataclasses import asdict
from typing import Annotated

from pydantic import BaseModel, Field

from workers.definition import tool
from workers.weather import current_weather


class Weather(BaseModel):
    city: str = Field(description="The place the city name resolved to.")
    temperature: float = Field(description="Air temperature 2 m above ground, in °C.")
    condition: str = Field(description='The weather in words, e.g. "Partly cloudy".')
    temperature_unit: str = Field(default="°C", description="Unit of the temperatures.")
    apparent_temperature: float | None = Field(default=None, description="Feels-like temperature, in °C.")
    wind_speed: float | None = Field(default=None, description="Wind speed 10 m up, in km/h.")
    wind_direction: int | None = Field(
        default=None, description="Direction the wind blows from, in degrees (0 = north)."
    )
    humidity: int | None = Field(default=None, description="Relative humidity, in %.")
    weather_code: int = Field(description="WMO weather code that `condition` describes.")
    is_day: bool | None = Field(default=None, description="Whether it is daytime there.")
    observed_at: str = Field(description="Time of the observation (ISO 8601, local time of `timezone`).")
    latitude: float | None = None
    longitude: float | None = None
    country: str | None = None
    admin1: str | None = Field(default=None, description="Region: state, province, etc.")
    timezone: str | None = Field(default=None, description="IANA time zone of the place.")
    source: str = Field(description='"open-meteo" for live data, "offline-sample" for samples.')
    note: str | None = Field(default=None, description="Caveats about the data, if any.")


@tool(
    idempotent=True,
    timeout=15,
    title="Current weather",
    annotations={"readOnlyHint": True, "openWorldHint": True},
)
async def weather(
    city: Annotated[
        str,
        Field(
            min_length=1,
            max_length=100,
            pattern=r"\S",
            description=(
                "City name, optionally followed by a comma and the country or region to pick "
                "between places of the same name, e.g. 'Delhi', 'Paris, France', "
                "'Portland, Oregon'."
            ),
        ),
    ],
) -> Weather:
    """Get the current weather in a city: temperature (°C), conditions in words, wind, humidity.

    The city is resolved by name (the most prominent match); add the country or region after a
    comma when the name is ambiguous. Data comes from Open-Meteo unless the server runs the
    offline sample provider, in which case `source` is "offline-sample" and `note` says so.
    """
    return Weather(**asdict(await current_weather(city)))
