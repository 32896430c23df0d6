"""The official MCP TypeScript SDK clients, run by Node.js against the facade and a worker as
real processes on a real redis-server:

- `@modelcontextprotocol/sdk` 1.32 (tests/typescript_client/client.mjs): `Client` over
  `StreamableHTTPClientTransport`, handshake era only;
- `@modelcontextprotocol/client` 2.x (client_v2.mjs), pinned to 2026-07-28 or in "auto" mode
  (it probes with `server/discover`; toolq answers, so it stays in the stateless era).

Each lists the tools, calls add and weather, gets progress and log messages from the test tool
`narrated`, and cancels a call of `watched`, whose trail file shows whether the job really
stopped on the worker. Both clients share tests/typescript_client/package.json, installed by
tests/npm_packages.py (skipped without Node.js 20+ and npm, failed instead when
TOOLQ_REQUIRE_NODE=1).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tools_for_tests as test_tools
from npm_packages import NPM_CI_TIMEOUT, installed, require_node, run_json
from real_processes import ROOT, running_stack, wait_until

CLIENT_TIMEOUT = 30.0
#: When the clients abort the slow call, in ms after sending it.
CANCEL_AFTER_MS = 1000
#: Seconds a worker may take to stop a job once its client has cancelled the call.
STOP_WITHIN = 3.0
#: client.mjs keeps its session open this long after cancelling (ms).
HOLD_AFTER_CANCEL_MS = 1000

pytestmark = [pytest.mark.timeout(NPM_CI_TIMEOUT + 60), pytest.mark.redis_server]


@pytest.fixture(scope="session")
def typescript_clients() -> tuple[str, Path]:
    """`node` and the cache dir holding client.mjs and client_v2.mjs, their SDKs installed."""
    node, _ = require_node()
    return node, installed("typescript_client", scripts=["client.mjs", "client_v2.mjs"])


@pytest.fixture(scope="module")
def facade_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A facade and one worker process serving every tool plus tests/tools_for_tests.py."""
    directory = tmp_path_factory.mktemp("typescript-clients")
    python_path = os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))
    # No call limit a 30 s `watched` could reach: only its client's cancel may stop it.
    with running_stack(directory, TOOLQ_WEATHER_PROVIDER="offline", TOOLQ_MAX_CALL_SECONDS="60") as stack:
        _, url = stack.facade()
        stack.worker("typescript-1", "--tool-modules", "tools_for_tests", PYTHONPATH=python_path)
        stack.wait_for_workers("typescript-1")
        yield url


def client_env(trail: Path) -> dict[str, str]:
    """What both scripts call for progress and for the call they cancel."""
    return {
        **os.environ,
        "PROGRESS_TOOL": "narrated",
        "PROGRESS_ARGS": json.dumps({"count": 3}),
        "SLOW_TOOL": "watched",
        "SLOW_ARGS": json.dumps({"marker": str(trail), "seconds": 30}),
        "CANCEL_AFTER_MS": str(CANCEL_AFTER_MS),
        # client.mjs: the session stays open this long after the cancel (see the test using it).
        "HOLD_AFTER_CANCEL_MS": str(HOLD_AFTER_CANCEL_MS),
    }


async def assert_the_job_stopped(trail: Path) -> None:
    """`watched` was cancelled on its worker within STOP_WITHIN s of its client's abort."""
    stopped = lambda: "cancelled" in test_tools.read_trail(trail)  # noqa: E731
    await asyncio.to_thread(wait_until, stopped, STOP_WITHIN, "the worker to cancel the job")
    events = test_tools.read_trail(trail)
    assert list(events) == ["started", "cancelled"], events
    assert events["cancelled"] - events["started"] < CANCEL_AFTER_MS / 1000 + STOP_WITHIN, events


def assert_add_and_weather(report: dict[str, Any]) -> None:
    assert {"add", "weather"} <= set(report["tools"]), report["tools"]

    add = report["add"]["result"]
    assert add["isError"] is False
    assert add["structuredContent"] == {"a": 15, "b": 27, "sum": 42}

    weather = report["weather"]["result"]
    assert weather["isError"] is False
    assert weather["structuredContent"]["city"] == "Delhi"
    assert weather["structuredContent"]["source"] == "offline-sample"


def assert_errors(report: dict[str, Any]) -> None:
    unknown = report["unknownTool"]
    assert "result" not in unknown, unknown
    assert unknown["error"]["code"] == -32602
    assert "no_such_tool" in unknown["error"]["message"]

    bad = report["badArguments"]["result"]
    assert bad["isError"] is True
    assert "structuredContent" not in bad
    message = " ".join(block.get("text", "") for block in bad["content"])
    assert "Invalid arguments for tool 'add'" in message, message
    assert "'b'" in message, message  # missing
    assert "'x'" in message, message  # not a number


def without_times(notifications: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """client_v2.mjs stamps each notification it got with `atMs`."""
    return [{key: value for key, value in n.items() if key != "atMs"} for n in notifications]


PROGRESS = [{"progress": step, "total": 3, "message": f"step {step}"} for step in (1, 2, 3)]
INFO_LOGS = [{"level": "info", "data": f"narrated step {step} of 3"} for step in (1, 2, 3)]


@dataclass(frozen=True)
class Run:
    report: dict[str, Any]
    trail: Path


@pytest.fixture(scope="module")
def v1_run(
    typescript_clients: tuple[str, Path], facade_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    """One run of client.mjs (the 1.32 SDK), which both of its tests read."""
    node, directory = typescript_clients
    trail = tmp_path_factory.mktemp("typescript-v1") / "watched.trail"
    command = [node, "client.mjs", facade_url]
    return Run(
        asyncio.run(run_json(command, cwd=directory, timeout=CLIENT_TIMEOUT, env=client_env(trail))), trail
    )


def test_the_typescript_sdk_client_lists_calls_and_terminates(v1_run: Run):
    report = v1_run.report

    assert report["serverInfo"]["name"] == "toolq"
    assert report["capabilities"]["tools"] == {"listChanged": True}
    assert report["protocolVersion"] == "2025-11-25"
    assert report["hadSessionId"] is True
    assert_add_and_weather(report)
    assert_errors(report)

    assert report["sessionIdAfterTerminate"] is None
    assert {"method": "DELETE", "status": 200} in report["http"], report["http"]
    assert report["reusedSessionStatus"] == 404


async def test_the_typescript_sdk_client_gets_progress_and_info_logs_and_its_cancel_stops_the_job(
    v1_run: Run,
):
    report, trail = v1_run.report, v1_run.trail

    progress = report["progress"]
    assert progress["result"]["structuredContent"] == {"done": True}
    assert progress["notifications"] == PROGRESS
    # The handshake era's default filter is info: the tool's debug message stays on the worker.
    assert progress["logMessages"] == INFO_LOGS

    cancel = report["cancel"]
    assert "result" not in cancel, cancel
    assert "cancelled after" in cancel["error"]["message"], cancel
    posted = {"method": "POST", "status": 202, "rpcMethod": "notifications/cancelled"}
    assert posted in cancel["exchanges"], cancel["exchanges"]
    await assert_the_job_stopped(trail)
    # The notification alone stopped it: ending the session (DELETE) would stop it too, so the
    # job must have stopped after the abort and before the client began to close.
    cancelled = test_tools.read_trail(trail)["cancelled"]
    closing = report["closingAtEpochMs"]
    assert cancel["abortedAtEpochMs"] / 1000 <= cancelled < closing / 1000, (cancel, closing)
    assert report["afterCancel"]["result"]["structuredContent"] == {"a": 1, "b": 2, "sum": 3}


@pytest.mark.parametrize("mode", ["2026-07-28", "auto"])
async def test_the_v2_typescript_client_works_in_the_stateless_era_and_its_cancel_stops_the_job(
    typescript_clients: tuple[str, Path], facade_url: str, tmp_path: Path, mode: str
):
    node, directory = typescript_clients
    trail = tmp_path / "watched.trail"

    report = await run_json(
        [node, "client_v2.mjs", facade_url, mode],
        cwd=directory,
        timeout=CLIENT_TIMEOUT,
        env=client_env(trail),
    )

    assert (report["protocolEra"], report["protocolVersion"]) == ("modern", "2026-07-28")
    assert report["serverInfo"]["name"] == "toolq"
    assert report["hadSessionId"] is False
    assert "2026-07-28" in report["discover"]["supportedVersions"]
    assert not [e for e in report["http"] if e.get("rpcMethod") == "initialize"], report["http"]
    assert_add_and_weather(report)
    assert_errors(report)

    progress = report["progress"]
    assert progress["result"]["structuredContent"] == {"done": True}
    assert without_times(progress["notifications"]) == PROGRESS
    # The call opted in at debug (the logLevel key of its envelope): the debug message came too.
    debug = {"level": "debug", "data": "narrated counting to 3"}
    assert without_times(progress["logMessages"]) == [debug, *INFO_LOGS]

    # The SDK cancels by aborting the call's POST; it reports that as a REQUEST_TIMEOUT SdkError.
    cancel = report["cancel"]
    assert cancel["threw"]["code"] == "REQUEST_TIMEOUT", cancel
    (call,) = [e for e in cancel["exchanges"] if e.get("rpcMethod") == "tools/call"]
    assert call["mcpName"] == "watched"
    assert "abortedAtMs" in call, call
    await assert_the_job_stopped(trail)
    assert report["afterCancel"]["result"]["structuredContent"] == {"a": 1, "b": 2, "sum": 3}
