"""MCP tasks driven by a requester nobody here wrote: `@modelcontextprotocol/ext-tasks` 0.2.2 (over
the v2 TypeScript SDK client, `@modelcontextprotocol/client` 2.4.0), run by Node.js against the
facade and a worker as real processes on a real redis-server, in both eras:

- 2025-11-25: the SDK client's `initialize` handshake; ext-tasks asks for a task with
  `params.task` and drives tasks/get, tasks/result, tasks/list and tasks/cancel itself;
- 2026-07-28: the SDK client pinned to the stateless era; ext-tasks sends tools/call and tasks/*
  through the host's raw request path (`rawDispatch`, which tasks_client.mjs supplies with fetch)
  and the server decides whether a call becomes a task.

tests/ext_tasks_client/tasks_client.mjs calls `tallied` for 3 s (a task: longer than the 1 s
window in which the stateless era answers inline) and settles it, calls it again for 0 s (an
immediate result), then starts `watched` and cancels its task once the job runs. The tools'
ledger and trail files (tests/tools_for_tests.py) count executions and show whether the job
really stopped, whatever toolq's bookkeeping says. (ext-tasks found that a completed stateless
task's inlined result lacked `resultType`, which it validates: fixed, and pinned here.)
Installed by tests/npm_packages.py from
tests/ext_tasks_client/package.json + package-lock.json (skipped without Node.js 20+ and npm,
failed instead when TOOLQ_REQUIRE_NODE=1).
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
from npm_packages import NPM_CI_TIMEOUT, installed, require_node, run_json
from real_processes import ROOT, running_stack, wait_until
from tools_for_tests import read_ledger, read_trail

pytestmark = [pytest.mark.timeout(NPM_CI_TIMEOUT + 90), pytest.mark.redis_server]

HANDSHAKE, STATELESS = "2025-11-25", "2026-07-28"
RELATED_TASK = "io.modelcontextprotocol/related-task"
CLIENT_TIMEOUT = 40.0
#: Seconds a worker may take to stop a job once its task has been cancelled.
STOP_WITHIN = 3.0


@dataclass(frozen=True)
class Run:
    era: str
    report: dict[str, Any]
    ledger: Path
    trail: Path

    @property
    def call(self) -> str:
        """The ledger name of the run's long `tallied` call (its quick one adds "-quick")."""
        return f"ext-tasks-{self.era}"

    def exchanges(self, rpc_method: str, **fields: Any) -> list[dict[str, Any]]:
        """The requests of the wire record with this JSON-RPC method and these fields."""
        return [
            entry
            for entry in self.report["wire"]
            if entry.get("rpcMethod") == rpc_method and all(entry.get(k) == v for k, v in fields.items())
        ]


@pytest.fixture(scope="session")
def ext_tasks_client() -> tuple[str, Path]:
    """`node` and the cache dir holding tasks_client.mjs, its packages installed."""
    node, _ = require_node()
    return node, installed("ext_tasks_client", scripts=["tasks_client.mjs"])


@pytest.fixture(scope="module")
def facade_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A facade (the default 1 s inline window) and one worker serving tallied and watched."""
    directory = tmp_path_factory.mktemp("ext-tasks")
    python_path = os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))
    with running_stack(directory) as stack:
        _, url = stack.facade()
        stack.worker(
            "ext-tasks-1",
            *("--tools", "tallied,watched", "--pool", "tasks", "--tool-modules", "tools_for_tests"),
            PYTHONPATH=python_path,
        )
        stack.wait_for_workers("ext-tasks-1")
        yield url


def run_client(client: tuple[str, Path], url: str, era: str, tmp_path_factory: pytest.TempPathFactory) -> Run:
    node, directory = client
    files = tmp_path_factory.mktemp(f"ext-tasks-{era}")
    ledger, trail = files / "ledger", files / "watched.trail"
    env = {**os.environ, "LEDGER": str(ledger), "TRAIL": str(trail), "CALL": f"ext-tasks-{era}"}
    command = [node, "tasks_client.mjs", url, era]
    report = asyncio.run(run_json(command, cwd=directory, timeout=CLIENT_TIMEOUT, env=env))
    return Run(era, report, ledger, trail)


@pytest.fixture(scope="module")
def handshake_run(
    ext_tasks_client: tuple[str, Path], facade_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    return run_client(ext_tasks_client, facade_url, HANDSHAKE, tmp_path_factory)


@pytest.fixture(scope="module")
def stateless_run(
    ext_tasks_client: tuple[str, Path], facade_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    return run_client(ext_tasks_client, facade_url, STATELESS, tmp_path_factory)


@pytest.fixture(params=[HANDSHAKE, STATELESS])
def run(request: pytest.FixtureRequest) -> Run:
    fixture = "handshake_run" if request.param == HANDSHAKE else "stateless_run"
    value: Run = request.getfixturevalue(fixture)
    return value


def test_ext_tasks_sees_the_tasks_capability_of_each_era(handshake_run: Run, stateless_run: Run):
    handshake = handshake_run.report
    assert (handshake["protocolEra"], handshake["protocolVersion"]) == ("legacy", HANDSHAKE)
    assert handshake["hadSessionId"] is True
    assert handshake["serverCapabilities"]["tasks"] == {
        "list": {},
        "cancel": {},
        "requests": {"tools": {"call": {}}},
    }
    # What the package made of it: server-side inventory, cancellation, and a TTL the client may ask.
    capabilities = handshake["sessionCapabilities"]
    assert capabilities["inventory"] == "server-list"
    assert capabilities["cancellation"] is True
    assert capabilities["requestedRetention"] is True

    stateless = stateless_run.report
    assert (stateless["protocolEra"], stateless["protocolVersion"]) == ("modern", STATELESS)
    assert stateless["hadSessionId"] is False
    # ext-tasks enables its V2 driver only for exactly `{}` under the extension's name.
    assert stateless["serverCapabilities"]["extensions"] == {"io.modelcontextprotocol/tasks": {}}
    assert stateless["sessionCapabilities"]["execution"] is True
    assert stateless["sessionCapabilities"]["cancellation"] is True


def test_a_long_call_becomes_a_task_that_ext_tasks_polls_and_that_runs_once(run: Run):
    tallied = run.report["tallied"]
    assert tallied["kind"] == "task", tallied
    task_id = tallied["taskId"]

    # The server answered tools/call with a task, not a result.
    (call,) = run.exchanges("tools/call", name="tallied", resultTaskId=task_id)
    assert call["taskStatus"] == "working", call
    if run.era == HANDSHAKE:
        assert call["task"] == {"ttl": 60_000}, call  # asked for, with the TTL the caller chose
    else:
        assert call["resultType"] == "task", call
        assert call["path"] == "raw"
        assert call["clientCapabilities"]["extensions"] == {"io.modelcontextprotocol/tasks": {}}

    # ext-tasks polled the task (each poll routed by the task's id, SEP-2663) until it ended, or
    # until toolq's notifications/tasks/status on the session's GET stream told it so (2025-11-25).
    polls = run.exchanges("tasks/get", taskId=task_id)
    assert polls, run.report["wire"]
    if run.era == STATELESS:
        assert [poll["taskStatus"] for poll in polls][-1] == "completed", polls
        assert {poll["mcpName"] for poll in polls} == {task_id}, polls
    statuses = [event["status"] for event in tallied["events"] if event["type"] == "task"]
    assert statuses[0] == "working" and statuses[-1] == "completed", tallied["events"]
    assert tallied["lastTask"]["status"] == "completed"
    assert tallied["lastTask"]["taskId"] == task_id
    if run.era == HANDSHAKE:
        # The server may keep a task longer than asked (toolq: at least its call's deadline plus a
        # minute), never shorter.
        assert tallied["lastTask"]["retentionMs"] >= 60_000, tallied["lastTask"]
        assert task_id in [listed["taskId"] for listed in run.report["listed"]]

    # The quick call of the same tool came back at once, without a task.
    quick = run.report["quick"]
    assert quick["kind"] == "immediate", quick
    assert quick["outcomeStatus"] == "completed", quick
    assert quick["result"]["structuredContent"]["call"] == f"{run.call}-quick"

    one = {"start": 1, "end": 1}
    assert read_ledger(run.ledger) == {run.call: one, f"{run.call}-quick": one}


def test_the_handshake_task_settles_to_the_tool_result_tied_to_its_task(handshake_run: Run):
    tallied = handshake_run.report["tallied"]
    assert tallied["outcomeStatus"] == "completed", tallied
    result = tallied["result"]
    assert result["isError"] is False
    assert result["structuredContent"]["call"] == handshake_run.call
    assert result["meta"][RELATED_TASK] == {"taskId": tallied["taskId"]}
    (fetched,) = handshake_run.exchanges("tasks/result", taskId=tallied["taskId"])
    assert fetched["hasStructuredContent"] is True


def test_the_stateless_task_inlines_the_tool_result_in_tasks_get(stateless_run: Run):
    task_id = stateless_run.report["tallied"]["taskId"]
    (completed,) = stateless_run.exchanges("tasks/get", taskId=task_id, taskStatus="completed")
    inlined = completed["inlined"]
    assert {"content", "isError", "structuredContent"} <= set(inlined["keys"]), inlined
    assert inlined["structuredContent"]["call"] == stateless_run.call


def test_the_stateless_task_settles_to_the_tool_result(stateless_run: Run):
    tallied = stateless_run.report["tallied"]
    assert tallied["outcomeStatus"] == "completed", tallied
    assert tallied["result"]["structuredContent"]["call"] == stateless_run.call


def test_cancelling_a_task_through_ext_tasks_stops_its_job(run: Run):
    watched = run.report["watched"]
    assert watched["kind"] == "task", watched
    task_id = watched["taskId"]
    assert watched["outcomeStatus"] == "cancelled", watched
    assert watched["afterCancel"]["status"] == "cancelled", watched

    (cancel, *again) = run.exchanges("tasks/cancel", taskId=task_id)
    assert cancel["httpStatus"] == 200 and "error" not in cancel, cancel
    if run.era == STATELESS:
        assert cancel["mcpName"] == task_id
        # A cancel of a task that has ended is acknowledged too (the extension only asks for an
        # error on an unknown task).
        assert watched["secondCancel"] == {"ok": True}, watched
    else:
        assert cancel["taskStatus"] == "cancelled", cancel
        # 2025-11-25: cancelling a task in a terminal status is rejected with -32602.
        assert watched["secondCancel"]["threw"]["code"] == -32602, watched
    assert len(again) == 1, again

    stopped = lambda: "cancelled" in read_trail(run.trail)  # noqa: E731
    wait_until(stopped, STOP_WITHIN, "the worker to cancel the job")
    events = read_trail(run.trail)
    assert list(events) == ["started", "cancelled"], events
    # Stopped by this cancel: not before the client sent it (same clock), and soon after.
    sent = watched["cancelSentAtEpochMs"] / 1000
    assert sent - 0.01 <= events["cancelled"] < sent + STOP_WITHIN, (sent, events)


def test_a_task_handed_off_before_a_facade_restart_is_resumed_and_settled_after_it(
    ext_tasks_client: tuple[str, Path], tmp_path: Path
):
    """ext-tasks starts a task through a facade and hands its reference off (as a host persists
    it); the facade is SIGKILLed and a new one starts on the same address; ext-tasks resumes the
    task from its reference and settles it to the tool's result. The job ran once."""
    node, directory = ext_tasks_client
    ledger = tmp_path / "ledger"
    python_path = os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "LEDGER": str(ledger), "TRAIL": str(tmp_path / "trail"), "CALL": "restart"}
    with running_stack(tmp_path) as stack:
        first, url = stack.facade()
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        stack.worker(
            "restart-1",
            *("--tools", "tallied,watched", "--pool", "tasks", "--tool-modules", "tools_for_tests"),
            PYTHONPATH=python_path,
        )
        stack.wait_for_workers("restart-1")
        command = [node, "tasks_client.mjs", url, STATELESS]
        handed = asyncio.run(
            run_json(
                command,
                cwd=directory,
                timeout=CLIENT_TIMEOUT,
                env={**env, "MODE": "handoff", "TALLIED_SECONDS": "4"},
            )
        )
        assert handed["handoff"]["kind"] == "task", handed
        first.process.kill()
        first.process.wait(5)
        stack.facade(port, name="facade-restarted")
        resumed = asyncio.run(
            run_json(
                command,
                cwd=directory,
                timeout=CLIENT_TIMEOUT,
                env={**env, "MODE": "resume", "REFERENCE": json.dumps(handed["reference"])},
            )
        )
    assert resumed["resumed"]["taskId"] == handed["handoff"]["taskId"], resumed
    assert resumed["resumed"]["outcomeStatus"] == "completed", resumed
    assert resumed["resumed"]["result"]["structuredContent"]["call"] == "restart", resumed
    assert read_ledger(ledger) == {"restart": {"start": 1, "end": 1}}
