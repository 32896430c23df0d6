"""The Claude client (client/) with the real anthropic SDK against a local stand-in of the
Messages API (tests/fake_anthropic.py), and the real mcp client against a real facade:

- `toolq`: the facade and workers as real processes on a real redis-server (one stack for the
  module), the weather tool asking a fake Open-Meteo;
- `facade_url`: the facade app in-process on fakeredis with an in-process worker, for what
  does not need the queue of real processes;
- no facade at all, for what fails before one is needed.

The main command and the missing-key case run as real subprocesses (`python -m client`);
the rest call `client.claude_client.run` in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import sys
import threading
import typing
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tools_for_tests
from anthropic.resources.messages.messages import DEPRECATED_MODELS
from anthropic.types import Model
from fake_anthropic import FakeAnthropic, RecordedRequest, Reply, text, tool_use
from fake_open_meteo import FakeOpenMeteo
from real_processes import ROOT, Stack, free_port, port_open, running_stack, wait_until

from client.claude_client import main, run
from client.errors import ExitCode
from client.mcp_tools import FacadeConnection
from client.settings import DEFAULT_MODEL, parse_settings

KEY = "sk-ant-test-key"
TOKEN = "s3cret-token"
PROMPT = "Tell me the weather of Delhi and add 15 and 27"


@dataclass(frozen=True)
class Result:
    exit_code: int
    out: str
    err: str


# --- hermetic environment ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ANTHROPIC_* or TOOLQ_* from the machine, and a HOME without an anthropic profile."""
    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "TOOLQ_")):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
async def claude() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(api_key=KEY) as fake:
        yield fake


def client_env(claude: FakeAnthropic | None, **extra: str) -> dict[str, str]:
    env = {
        "ANTHROPIC_API_KEY": KEY,
        "ANTHROPIC_BASE_URL": claude.base_url if claude else "http://127.0.0.1:9",
        "TOOLQ_CLIENT_MAX_RETRIES": "0",
    }
    return {**env, **extra}


async def ask(url: str, claude: FakeAnthropic | None, *flags: str, **env: str) -> Result:
    """Run the client in-process, as `toolq-client [flags] PROMPT` would."""
    settings = parse_settings([*flags, PROMPT], {**client_env(claude, TOOLQ_URL=url), **env})
    out, err = io.StringIO(), io.StringIO()
    exit_code = await run(settings, out=out, err=err)
    return Result(exit_code, out.getvalue(), err.getvalue())


async def ask_cli(*args: str, env: dict[str, str]) -> Result:
    """Run `python -m client ARGS` as a real process (asynchronously: the stand-in lives in this
    test's event loop)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "client",
        *args,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/mcp"


# --- a real stack: redis-server, facade and workers as processes ------------------------------


@dataclass(frozen=True)
class RealToolq:
    url: str
    weather_api: FakeOpenMeteo
    stack: Stack


@contextlib.contextmanager
def served_in_a_thread(server: FakeOpenMeteo) -> Iterator[None]:
    """Keep an aiohttp fake alive for the whole module, in its own event loop (each test has its
    own loop; the worker processes only need the fake's URL)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def call(coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(10)

    call(server.start())
    try:
        yield
    finally:
        call(server.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="module")
def toolq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealToolq]:
    weather_api = FakeOpenMeteo()
    with (
        served_in_a_thread(weather_api),
        running_stack(
            tmp_path_factory.mktemp("stack"),
            **weather_api.env,
        ) as stack,
    ):
        _, url = stack.facade()
        stack.worker("weather-1", "--tools", "weather")
        stack.worker("add-1", "--tools", "add")
        stack.wait_for_workers("weather-1", "add-1")
        yield RealToolq(url, weather_api, stack)


# --- an in-process facade on fakeredis ---------------------------------------------------------


@pytest.fixture
async def facade_url(make_facade: Callable[..., Any], start_worker: Callable[..., Any]) -> str:
    """The facade app on a real port of 127.0.0.1, its queue on fakeredis, an in-process worker."""
    await start_worker(["add"])
    facade = await make_facade()
    return str(facade.client.make_url("/mcp"))


def answer_from_tool_results(request: RecordedRequest) -> Reply:
    """Claude's second turn: built from the tool results it received, so the final answer can
    only be right if both results went through the queue and came back in one message."""
    results = {block["tool_use_id"]: block for block in request.tool_results()}
    asked = [block for block in request.messages[-2]["content"] if block["type"] == "tool_use"]
    weather, total = (json.loads(results[block["id"]]["content"][0]["text"]) for block in asked)
    return Reply(
        [
            text(
                f"It is {weather['temperature']} °C in {weather['city']} "
                f"({weather['condition'].lower()}), and 15 + 27 = {total['sum']}."
            )
        ]
    )


def script_weather_and_add(claude: FakeAnthropic) -> None:
    claude.reply(
        text("I'll look up the weather and do the sum."),
        tool_use("weather", {"city": "Delhi"}),
        tool_use("add", {"a": 15, "b": 27}),
        stop_reason="tool_use",
    )
    claude.reply_with(answer_from_tool_results)


# --- the main command, end to end ------------------------------------------------------------


@pytest.mark.redis_server
async def test_the_command_prints_both_tool_results_then_the_answer(toolq: RealToolq, claude: FakeAnthropic):
    script_weather_and_add(claude)

    result = await ask_cli(PROMPT, env=client_env(claude, TOOLQ_URL=toolq.url))

    assert (result.exit_code, result.err) == (0, ""), result
    lines = result.out.splitlines()
    assert lines[0] == "I'll look up the weather and do the sum."
    assert lines[2:5] == [
        "Tool Used: weather",
        'Arguments: {"city": "Delhi"}',
        lines[4],
    ]
    weather = json.loads(lines[4].removeprefix("Result: "))
    assert (weather["city"], weather["country"], weather["temperature"]) == ("Delhi", "India", 31.4)
    assert lines[6:9] == [
        "Tool Used: add",
        'Arguments: {"a": 15, "b": 27}',
        'Result: {"a": 15, "b": 27, "sum": 42}',
    ]
    assert lines[10:] == ["It is 31.4 °C in Delhi (partly cloudy), and 15 + 27 = 42."]

    first, second = claude.requests
    assert first.tool_names == ["add", "weather"]  # discovered from the facade, not hard-coded
    assert first.body["model"] == DEFAULT_MODEL
    assert first.headers["Authorization"] == f"Bearer {KEY}"
    assert first.body["messages"] == [{"role": "user", "content": PROMPT}]
    # One user message answers both tool_use blocks, in their order, neither an error.
    asked = [block["id"] for block in second.messages[-2]["content"] if block["type"] == "tool_use"]
    assert [block["tool_use_id"] for block in second.tool_results()] == asked
    assert [block.get("is_error", False) for block in second.tool_results()] == [False, False]
    assert len(second.messages) == 3
    assert toolq.weather_api.count("/v1/forecast") >= 1


@pytest.mark.redis_server
async def test_stream_prints_the_same_conversation_from_a_streamed_reply(
    toolq: RealToolq, claude: FakeAnthropic
):
    script_weather_and_add(claude)

    result = await ask(toolq.url, claude, "--stream")

    assert (result.exit_code, result.err) == (0, ""), result
    assert all(request.body["stream"] is True for request in claude.requests)
    assert result.out.startswith("I'll look up the weather and do the sum.\n\nTool Used: weather\n")
    assert 'Result: {"a": 15, "b": 27, "sum": 42}\n\nIt is 31.4 °C in Delhi' in result.out
    assert result.out.endswith("15 + 27 = 42.\n")


@pytest.mark.redis_server
async def test_the_tool_calls_of_one_turn_run_concurrently(toolq: RealToolq, claude: FakeAnthropic):
    toolq.weather_api.forecast_delay = 0.6
    claude.reply(
        tool_use("weather", {"city": "Delhi"}), tool_use("weather", {"city": "Tokyo"}), stop_reason="tool_use"
    )
    claude.reply(text("Both looked up."))
    try:
        result = await ask(toolq.url, claude)
    finally:
        toolq.weather_api.forecast_delay = 0.0

    assert result.exit_code == 0, result
    first, second = claude.requests
    elapsed = second.received_at - first.received_at
    assert 0.6 <= elapsed < 1.1, f"two 0.6 s calls took {elapsed:.2f} s: not run side by side"
    cities = [json.loads(block["content"][0]["text"])["city"] for block in second.tool_results()]
    assert cities == ["Delhi", "Tokyo"]


@pytest.mark.redis_server
async def test_a_tool_failure_reaches_claude_as_is_error_and_the_loop_goes_on(
    toolq: RealToolq, claude: FakeAnthropic
):
    claude.reply(tool_use("weather", {"city": "Atlantis"}), stop_reason="tool_use")
    claude.reply(text("I could not find Atlantis."))

    result = await ask(toolq.url, claude)

    assert (result.exit_code, result.err) == (0, ""), result
    assert 'Tool Used: weather\nArguments: {"city": "Atlantis"}\nTool Error: No place named \'Atlantis\'' in (
        result.out
    )
    assert result.out.endswith("\n\nI could not find Atlantis.\n")
    (failure,) = claude.requests[1].tool_results()
    assert failure["is_error"] is True
    assert "Atlantis" in failure["content"][0]["text"]


@pytest.mark.redis_server
async def test_a_facade_that_dies_during_a_call_is_exit_3(toolq: RealToolq, claude: FakeAnthropic):
    port = free_port()
    doomed = toolq.stack.start("facade-doomed", ["-m", "facade", "--host", "127.0.0.1", "--port", str(port)])
    await asyncio.to_thread(wait_until, lambda: port_open(port), 20, "the second facade to listen")
    url = f"http://127.0.0.1:{port}/mcp"
    claude.reply(tool_use("weather", {"city": "Paris"}), stop_reason="tool_use")
    forecasts = toolq.weather_api.count("/v1/forecast")
    toolq.weather_api.forecast_delay = 2.0
    try:
        asking = asyncio.create_task(ask(url, claude))
        called = lambda: toolq.weather_api.count("/v1/forecast") > forecasts  # noqa: E731
        await asyncio.to_thread(wait_until, called, 10, "the call to reach the weather API")
        doomed.kill()
        result = await asking
    finally:
        toolq.weather_api.forecast_delay = 0.0

    assert result.exit_code == ExitCode.FACADE_UNREACHABLE, result
    assert result.err.startswith(f"toolq-client: error: the connection to the toolq facade at {url} failed")
    assert len(claude.requests) == 1


# --- the loop, against the in-process facade ---------------------------------------------------


async def test_an_unknown_tool_is_an_is_error_result_for_claude(facade_url: str, claude: FakeAnthropic):
    claude.reply(tool_use("divide", {"a": 1, "b": 0}), stop_reason="tool_use")
    claude.reply(text("No divide tool."))

    result = await ask(facade_url, claude)

    assert result.exit_code == 0, result
    (failure,) = claude.requests[1].tool_results()
    assert failure["is_error"] is True
    assert failure["content"][0]["text"] == "Unknown tool 'divide'; this server has: add."


async def test_max_turns_reached_stops_with_exit_6(facade_url: str, claude: FakeAnthropic):
    for _ in range(3):
        claude.reply(tool_use("add", {"a": 1, "b": 1}), stop_reason="tool_use")

    result = await ask(facade_url, claude, "--max-turns", "2")

    assert result.exit_code == ExitCode.MAX_TURNS == 6
    assert len(claude.requests) == 2
    assert result.out.count("Tool Used: add") == 1  # the last turn's request is not run
    assert result.err == (
        "toolq-client: error: stopped after 2 turns while Claude still wanted to call add: "
        "raise --max-turns (or TOOLQ_CLIENT_MAX_TURNS).\n"
    )


async def test_a_paused_turn_is_sent_back_to_continue(facade_url: str, claude: FakeAnthropic):
    claude.reply(text("Let me think."), stop_reason="pause_turn")
    claude.reply(text("Done thinking."))

    result = await ask(facade_url, claude)

    assert result.exit_code == 0, result
    resumed = claude.requests[1].messages
    assert resumed[-1] == {"role": "assistant", "content": [{"type": "text", "text": "Let me think."}]}
    assert result.out == "Let me think.\n\nDone thinking.\n"


@pytest.mark.parametrize(
    ("stop_reason", "exit_code", "note"),
    [
        (
            "max_tokens",
            ExitCode.INCOMPLETE,
            "error: Claude's reply was cut off at 4096 tokens: raise --max-tokens",
        ),
        ("refusal", ExitCode.INCOMPLETE, "error: Claude declined to answer this request"),
        ("stop_sequence", ExitCode.OK, "Claude stopped at the stop sequence"),
    ],
)
async def test_other_stop_reasons_end_the_loop_with_a_note(
    facade_url: str, claude: FakeAnthropic, stop_reason: str, exit_code: ExitCode, note: str
):
    claude.reply(text("Partial"), stop_reason=stop_reason)

    result = await ask(facade_url, claude)

    assert (result.exit_code, result.out) == (exit_code, "Partial\n")
    assert note in result.err
    assert len(claude.requests) == 1


async def test_json_prints_a_machine_readable_transcript(facade_url: str, claude: FakeAnthropic):
    claude.reply(text("Adding."), tool_use("add", {"a": 15, "b": 27}), stop_reason="tool_use")
    claude.reply(text("15 + 27 = 42."))

    result = await ask(facade_url, claude, "--json")

    assert (result.exit_code, result.err) == (0, ""), result
    transcript = json.loads(result.out)
    assert transcript["tools"] == ["add"]
    assert (transcript["answer"], transcript["status"], transcript["exit_code"]) == ("15 + 27 = 42.", "ok", 0)
    first, last = transcript["turns"]
    (call,) = first["tool_calls"]
    assert (call["name"], call["arguments"], call["is_error"]) == ("add", {"a": 15, "b": 27}, False)
    assert call["result"] == {"a": 15, "b": 27, "sum": 42}
    assert (first["stop_reason"], last["stop_reason"], last["tool_calls"]) == ("tool_use", "end_turn", [])


# --- tool-list changes -------------------------------------------------------------------------


async def test_a_tool_that_comes_during_a_turn_is_offered_to_claude_at_the_next(
    facade_url: str, start_worker: Callable[..., Any], claude: FakeAnthropic
):
    await start_worker([tools_for_tests.patient])
    claude.reply(tool_use("patient", {"seconds": 1.0}), stop_reason="tool_use")
    claude.reply(tool_use("doubled", {"n": 21}), stop_reason="tool_use")
    claude.reply(text("Both done."))

    asking = asyncio.create_task(ask(facade_url, claude, "--json"))
    async with asyncio.timeout(10):
        await claude.received(1)
    await start_worker([tools_for_tests.doubled])  # while `patient` runs: the facade tells the client
    result = await asking

    assert (result.exit_code, result.err) == (0, ""), result
    first, second, third = claude.requests
    assert "doubled" not in first.tool_names
    assert {"add", "patient", "doubled"} <= set(second.tool_names)
    (called,) = third.tool_results()
    assert called.get("is_error", False) is False, called
    assert "doubled" in json.loads(result.out)["tools"]


async def test_the_tools_are_listed_again_only_when_the_facade_says_they_changed(
    facade_url: str, start_worker: Callable[..., Any]
):
    connection = FacadeConnection(facade_url, None)
    async with connection.open() as tools:
        answered = len(connection.statuses)
        assert [await tools.relisted() for _ in range(3)] == [None, None, None]
        assert len(connection.statuses) == answered  # no request while nothing changed

        await start_worker([tools_for_tests.doubled])
        relisted = None
        async with asyncio.timeout(3):
            while relisted is None:
                await asyncio.sleep(0.05)
                relisted = await tools.relisted()
        assert "doubled" in [tool["name"] for tool in relisted]
        assert "doubled" in tools.names
        assert await tools.relisted() is None  # told once, listed once


# --- failures a user must understand -----------------------------------------------------------


async def test_no_api_key_says_to_set_anthropic_api_key():
    env = client_env(None, TOOLQ_URL=closed_port_url())
    del env["ANTHROPIC_API_KEY"]

    result = await ask_cli(PROMPT, env=env)

    assert (result.exit_code, result.out) == (ExitCode.CONFIG_ERROR, "")
    assert result.err.startswith("toolq-client: error: no Anthropic API key: set ANTHROPIC_API_KEY")
    assert "Traceback" not in result.err


def test_json_output_reports_a_configuration_error_as_json_too(capsys: pytest.CaptureFixture[str]):
    assert main(["--json", PROMPT]) == ExitCode.CONFIG_ERROR

    out, err = capsys.readouterr()
    assert json.loads(out) == {
        "status": "config_error",
        "exit_code": 2,
        "message": err.removeprefix("toolq-client: error: ").rstrip("\n"),
    }
    assert "set ANTHROPIC_API_KEY" in err


async def test_an_unreachable_facade_names_its_url_and_how_to_start_it(claude: FakeAnthropic):
    url = closed_port_url()

    result = await ask_cli(PROMPT, env=client_env(claude, TOOLQ_URL=url))

    assert (result.exit_code, result.out) == (ExitCode.FACADE_UNREACHABLE, "")
    assert f"cannot reach the toolq facade at {url}" in result.err
    assert "./toolq up" in result.err
    assert "Traceback" not in result.err
    assert claude.requests == []


async def test_ctrl_c_ends_the_command_quietly_with_exit_130(
    make_facade: Callable[..., Any], start_worker: Callable[..., Any], claude: FakeAnthropic
):
    await start_worker([tools_for_tests.patient])
    url = str((await make_facade()).client.make_url("/mcp"))
    claude.reply(tool_use("patient", {"seconds": 20}), stop_reason="tool_use")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "client",
        PROMPT,
        cwd=ROOT,
        env={**os.environ, **client_env(claude, TOOLQ_URL=url)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        await claude.received(1)
    await asyncio.sleep(0.5)  # the call to `patient` is on its way
    process.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(process.communicate(), 30)

    assert (process.returncode, out, err) == (
        ExitCode.INTERRUPTED,
        b"",
        b"toolq-client: error: interrupted\n",
    )


async def test_a_facade_that_rejects_the_token_says_to_set_toolq_token(
    make_facade: Callable[..., Any], start_worker: Callable[..., Any], claude: FakeAnthropic
):
    await start_worker(["add"])
    url = str((await make_facade(tokens=(TOKEN,))).client.make_url("/mcp"))
    claude.reply(text("Hello."))

    missing = await ask(url, claude)
    wrong = await ask(url, claude, "--token", "not-it")
    right = await ask(url, claude, TOOLQ_TOKEN=TOKEN)

    assert missing.exit_code == wrong.exit_code == ExitCode.FACADE_AUTH_REJECTED
    assert f"the toolq facade at {url} rejected the request (HTTP 401): set TOOLQ_TOKEN" in missing.err
    assert "is not one of the facade's TOOLQ_TOKENS" in wrong.err
    assert (right.exit_code, right.out) == (0, "Hello.\n")


async def test_a_rejected_api_key_is_exit_5(facade_url: str, claude: FakeAnthropic):
    result = await ask(facade_url, claude, ANTHROPIC_API_KEY="sk-ant-wrong")

    assert result.exit_code == ExitCode.ANTHROPIC_ERROR == 5
    assert result.err == (
        "toolq-client: error: Anthropic rejected the API key (HTTP 401): invalid x-api-key. "
        "Check ANTHROPIC_API_KEY.\n"
    )


async def test_a_rate_limit_is_retried_after_the_time_the_api_asks(facade_url: str, claude: FakeAnthropic):
    claude.fail(
        429, "rate_limit_error", "Number of requests has exceeded your rate limit", {"retry-after": "0.4"}
    )
    claude.reply(text("Made it."))

    result = await ask(facade_url, claude, "--max-retries", "2")

    assert (result.exit_code, result.out) == (0, "Made it.\n")
    first, second = claude.requests
    assert second.received_at - first.received_at >= 0.4
    assert second.headers["x-stainless-retry-count"] == "1"
    assert result.err == (
        "toolq-client: the Anthropic API answered HTTP 429 (rate limited); "
        "retry 1 of 2 in 0.4 s, as the API asks\n"
    )


async def test_a_rate_limit_that_outlasts_the_retries_is_exit_5(facade_url: str, claude: FakeAnthropic):
    for _ in range(2):
        claude.fail(429, "rate_limit_error", "Slow down", {"retry-after-ms": "10"})

    result = await ask(facade_url, claude, TOOLQ_CLIENT_MAX_RETRIES="1")

    assert result.exit_code == ExitCode.ANTHROPIC_ERROR
    assert len(claude.requests) == 2
    assert result.err.endswith(
        "toolq-client: error: rate limited by the Anthropic API (HTTP 429) after 1 retry: Slow down. "
        "Wait a little and try again, or raise --max-retries.\n"
    )


async def test_an_overloaded_api_is_exit_5(facade_url: str, claude: FakeAnthropic):
    claude.fail(529, "overloaded_error", "Overloaded")

    result = await ask(facade_url, claude)

    assert result.exit_code == ExitCode.ANTHROPIC_ERROR
    assert "the Anthropic API is overloaded (HTTP 529) (retries are off): Overloaded." in result.err


async def test_an_error_event_inside_a_stream_is_explained(facade_url: str, claude: FakeAnthropic):
    claude.fail_mid_stream("overloaded_error", "Overloaded")

    result = await ask(facade_url, claude, "--stream")

    assert result.exit_code == ExitCode.ANTHROPIC_ERROR
    assert "the Anthropic API is overloaded (HTTP 529)" in result.err


async def test_an_unreachable_anthropic_api_is_exit_5(facade_url: str):
    base_url = f"http://127.0.0.1:{free_port()}"

    result = await ask(facade_url, None, ANTHROPIC_BASE_URL=base_url)

    assert result.exit_code == ExitCode.ANTHROPIC_ERROR
    assert f"cannot reach the Anthropic API at {base_url}" in result.err
    assert "check the network and ANTHROPIC_BASE_URL" in result.err


# --- settings ------------------------------------------------------------------------------------


def test_the_default_model_is_a_current_model_of_the_sdk():
    known = typing.get_args(typing.get_args(Model)[0])
    assert DEFAULT_MODEL in known
    assert DEFAULT_MODEL not in DEPRECATED_MODELS
    assert DEFAULT_MODEL.startswith("claude-sonnet-")


def test_flags_win_over_the_environment_which_wins_over_defaults():
    environ = {
        "ANTHROPIC_API_KEY": KEY,
        "ANTHROPIC_MODEL": "claude-opus-5-5",
        "TOOLQ_URL": "http://toolq.internal:8000/mcp",
        "TOOLQ_TOKEN": TOKEN,
        "TOOLQ_CLIENT_MAX_TURNS": "3",
    }
    settings = parse_settings(["--model", "claude-haiku-5-5", "weather", "in", "Paris?"], environ)
    assert (settings.prompt, settings.model, settings.url) == (
        "weather in Paris?",
        "claude-haiku-5-5",
        "http://toolq.internal:8000/mcp",
    )
    assert (settings.token, settings.max_turns, settings.max_tokens) == (TOKEN, 3, 4096)
    assert TOKEN not in repr(settings) and KEY not in repr(settings)


def test_an_invalid_setting_names_the_variable():
    with pytest.raises(Exception, match="TOOLQ_CLIENT_MAX_TURNS must be a whole number, got 'many'"):
        parse_settings(["hi"], {"ANTHROPIC_API_KEY": KEY, "TOOLQ_CLIENT_MAX_TURNS": "many"})
