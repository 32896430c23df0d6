"""The `weather` tool against a fake Open-Meteo on 127.0.0.1 (real HTTP, never the internet)."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator

import pytest
from fake_open_meteo import FORECAST_PATH, SEARCH_PATH, FakeOpenMeteo
from pydantic import ValidationError

from workers.definition import ToolError
from workers.tools.weather import weather
from workers.weather import CURRENT_VARIABLES, aclose_providers, describe_weather_code, http_session


@pytest.fixture(autouse=True)
async def _close_shared_session() -> AsyncIterator[None]:
    yield
    await aclose_providers()


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeOpenMeteo]:
    async with FakeOpenMeteo() as server:
        monkeypatch.setenv("TOOLQ_WEATHER_PROVIDER", "open-meteo")
        monkeypatch.setenv("TOOLQ_WEATHER_GEOCODING_URL", server.base_url)
        monkeypatch.setenv("TOOLQ_WEATHER_FORECAST_URL", server.base_url)
        monkeypatch.setenv("TOOLQ_WEATHER_TIMEOUT", "5")
        yield server
        await aclose_providers()  # before the server goes, so no keep-alive is cut under it


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_delhi_resolves_with_every_field(fake: FakeOpenMeteo) -> None:
    result = (await weather.invoke({"city": "Delhi"}))["structured"]

    assert result["city"] == "Delhi"
    assert result["country"] == "India"
    assert result["admin1"] == "Delhi"
    assert result["latitude"] == 28.65195
    assert result["longitude"] == 77.23149
    assert result["timezone"] == "Asia/Kolkata"
    assert result["temperature"] == 31.4
    assert result["temperature_unit"] == "°C"
    assert result["apparent_temperature"] == 35.2
    assert result["humidity"] == 52
    assert result["wind_speed"] == 9.7
    assert result["wind_direction"] == 284
    assert result["weather_code"] == 2
    assert result["condition"] == "Partly cloudy"
    assert result["is_day"] is True
    assert result["observed_at"] == "2025-06-01T17:30"
    assert result["source"] == "open-meteo"
    assert result["note"] is None

    search, forecast = fake.requests
    assert search.path == SEARCH_PATH
    assert search.query == {"name": "Delhi", "count": "1", "language": "en", "format": "json"}
    assert forecast.path == FORECAST_PATH
    assert float(forecast.query["latitude"]) == 28.65195
    assert float(forecast.query["longitude"]) == 77.23149
    assert forecast.query["current"].split(",") == list(CURRENT_VARIABLES)
    assert forecast.query["timezone"] == "auto"


async def test_condition_words_follow_the_code(fake: FakeOpenMeteo) -> None:
    tokyo = (await weather.invoke({"city": "tokyo"}))["structured"]
    assert (tokyo["city"], tokyo["weather_code"], tokyo["condition"]) == ("Tokyo", 0, "Clear sky")
    assert tokyo["is_day"] is False
    london = (await weather.invoke({"city": "London"}))["structured"]
    assert (london["country"], london["condition"]) == ("United Kingdom", "Overcast")


def test_wmo_code_words() -> None:
    assert describe_weather_code(0) == "Clear sky"
    assert describe_weather_code(2) == "Partly cloudy"
    assert describe_weather_code(45) == "Fog"
    assert "freezing drizzle" in describe_weather_code(56).lower()
    assert "snow grains" in describe_weather_code(77).lower()
    assert "hail" in describe_weather_code(99).lower()
    assert describe_weather_code(42) == "Unknown (code 42)"


async def test_country_after_a_comma_picks_between_places(fake: FakeOpenMeteo) -> None:
    france = (await weather.invoke({"city": "Paris, France"}))["structured"]
    assert (france["city"], france["country"], france["admin1"]) == (
        "Paris",
        "France",
        "Île-de-France",
    )
    assert france["condition"] == "Slight rain"
    assert fake.requests[0].query["name"] == "Paris"

    texas = (await weather.invoke({"city": "Paris, Texas"}))["structured"]
    assert (texas["country"], texas["admin1"], texas["timezone"]) == (
        "United States",
        "Texas",
        "America/Chicago",
    )
    assert texas["condition"] == "Thunderstorm"

    canada = (await weather.invoke({"city": "london,CA"}))["structured"]
    assert (canada["country"], canada["admin1"]) == ("Canada", "Ontario")


async def test_unknown_qualifier_falls_back_to_the_top_match(fake: FakeOpenMeteo) -> None:
    result = (await weather.invoke({"city": "Paris, Narnia"}))["structured"]
    assert result["country"] == "France"


async def test_unknown_city_says_how_to_fix_it(fake: FakeOpenMeteo) -> None:
    with pytest.raises(ToolError) as caught:
        (await weather.invoke({"city": "Atlantis"}))["structured"]
    message = str(caught.value)
    assert "No place named 'Atlantis' was found" in message
    assert "e.g. 'Paris, France'" in message
    assert fake.count(FORECAST_PATH) == 0


async def test_forecast_http_500_is_a_tool_error(fake: FakeOpenMeteo) -> None:
    fake.fail_forecast(500)
    with pytest.raises(ToolError, match="HTTP 500") as caught:
        (await weather.invoke({"city": "Delhi"}))["structured"]
    assert "try again" in str(caught.value)
    assert fake.count(FORECAST_PATH) == 1


async def test_geocoding_http_429_is_a_tool_error(fake: FakeOpenMeteo) -> None:
    fake.geocoding_status = 429
    with pytest.raises(ToolError, match="HTTP 429"):
        (await weather.invoke({"city": "Delhi"}))["structured"]


async def test_hanging_forecast_times_out(fake: FakeOpenMeteo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLQ_WEATHER_TIMEOUT", "0.3")
    fake.hang_forecast(30)
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"did not answer within 0\.3 s"):
        (await weather.invoke({"city": "Delhi"}))["structured"]
    assert time.monotonic() - started < 3
    assert fake.count(FORECAST_PATH) == 1


async def test_connection_refused_is_a_tool_error(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("TOOLQ_WEATHER_PROVIDER", "open-meteo")
    monkeypatch.setenv("TOOLQ_WEATHER_GEOCODING_URL", closed)
    monkeypatch.setenv("TOOLQ_WEATHER_FORECAST_URL", closed)
    monkeypatch.setenv("TOOLQ_WEATHER_TIMEOUT", "5")
    with pytest.raises(ToolError, match="Could not connect to the weather service"):
        (await weather.invoke({"city": "Delhi"}))["structured"]


@pytest.mark.parametrize(
    "body", ["<html>Bad gateway</html>", '{"latitude": 1.0}', '{"current": "sunny"}', "[]"]
)
async def test_malformed_forecast_is_a_tool_error(fake: FakeOpenMeteo, body: str) -> None:
    fake.forecast_body = body
    with pytest.raises(ToolError, match=r"weather service \(forecast\) sent"):
        (await weather.invoke({"city": "Delhi"}))["structured"]


async def test_malformed_geocoding_is_a_tool_error(fake: FakeOpenMeteo) -> None:
    fake.geocoding_body = '{"results": [{"name": "Delhi"}]}'
    with pytest.raises(ToolError, match=r"weather service \(geocoding\) sent .*unexpected shape"):
        (await weather.invoke({"city": "Delhi"}))["structured"]


async def test_offline_provider_is_sample_data_and_stays_offline(
    fake: FakeOpenMeteo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOOLQ_WEATHER_PROVIDER", "offline")
    first = (await weather.invoke({"city": "Delhi"}))["structured"]
    again = (await weather.invoke({"city": "  delhi "}))["structured"]
    other = (await weather.invoke({"city": "Tokyo"}))["structured"]

    assert first["source"] == "offline-sample"
    assert "sample data" in first["note"].lower()
    assert "not real" in first["note"]
    assert first["condition"] == describe_weather_code(first["weather_code"])
    deterministic = ("temperature", "weather_code", "humidity", "wind_speed", "wind_direction")
    assert [first[key] for key in deterministic] == [again[key] for key in deterministic]
    assert [first[key] for key in deterministic] != [other[key] for key in deterministic]
    assert fake.count() == 0
    assert http_session.open_session() is None


async def test_unknown_provider_lists_valid_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLQ_WEATHER_PROVIDER", "accuweather")
    with pytest.raises(ToolError, match="'open-meteo' or 'offline'"):
        (await weather.invoke({"city": "Delhi"}))["structured"]


async def test_one_session_is_shared_and_closed(fake: FakeOpenMeteo) -> None:
    (await weather.invoke({"city": "Delhi"}))["structured"]
    session = http_session.open_session()
    assert session is not None
    (await weather.invoke({"city": "Tokyo"}))["structured"]
    assert http_session.open_session() is session
    await aclose_providers()
    assert session.closed
    assert http_session.open_session() is None
    await aclose_providers()  # idempotent


@pytest.mark.parametrize("city", ["", "   ", "x" * 101])
def test_input_schema_rejects_bad_city(city: str) -> None:
    with pytest.raises(ValidationError):
        weather.validate_arguments({"city": city})


def test_schemas_and_spec() -> None:
    assert weather.input_schema["required"] == ["city"]
    assert weather.input_schema["properties"]["city"]["minLength"] == 1
    assert weather.input_schema["properties"]["city"]["maxLength"] == 100
    output = weather.output_schema
    assert output["type"] == "object"
    assert {"city", "temperature", "condition"} <= set(output["required"])
    spec = weather.spec()
    assert spec["title"] == "Current weather"
    assert spec["annotations"]["readOnlyHint"] is True
    assert spec["annotations"]["openWorldHint"] is True
    assert spec["annotations"]["idempotentHint"] is True
    assert spec["x-toolq"] == {"timeout": 15, "idempotent": True, "task": "optional"}
    assert spec["description"].startswith("Get the current weather in a city")
