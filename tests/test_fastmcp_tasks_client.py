"""MCP tasks driven by FastMCP's task client (`fastmcp-tasks` 4.1.4: `call_tool_task`, `ToolTask`,
and the result claim that makes a plain `Client.call_tool` poll a task), on 2026-07-28, against
the facade and a worker as real processes on a real redis-server.

fastmcp-tasks pins its own fastmcp, so the client runs in a venv of its own
(tests/fastmcp_tasks_client/requirements.txt, made by tests/python_venvs.py on first use) as a
subprocess: tests/fastmcp_tasks_client/tasks_client.py. The facade's inline window is 0 s: every
call from a client that declares the tasks extension becomes a task at once.

As released, the client cannot poll a task on a strict server: it sends tasks/get and
tasks/cancel without the `Mcp-Name: <taskId>` header that SEP-2663 makes a client MUST
(specification/draft/tasks.md, "Streamable HTTP: Routing Headers"), and toolq rejects that with
-32020 HeaderMismatch as the 2026-07-28 transport requires for a missing standard header. The
first test pins that; the others run the same client with the header added by an httpx request
hook (what the spec asks of the client, nothing more) and check everything else it does. The
tools' ledger and trail files (tests/tools_for_tests.py) count executions and show whether a
cancelled job really stopped.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from npm_packages import run_json
from python_venvs import PIP_INSTALL_TIMEOUT, venv_python
from real_processes import ROOT, running_stack, wait_until
from tools_for_tests import read_ledger, read_trail

pytestmark = [pytest.mark.timeout(PIP_INSTALL_TIMEOUT + 90), pytest.mark.redis_server]

SCRIPT_DIR = ROOT / "tests" / "fastmcp_tasks_client"
CLIENT_TIMEOUT = 60.0
#: Seconds a worker may take to stop a job once its task has been cancelled.
STOP_WITHIN = 3.0
ONCE = {"start": 1, "end": 1}


@dataclass(frozen=True)
class Run:
    report: dict[str, Any]
    ledger: Path
    trail: Path

    def exchanges(
        self, rpc_method: str, entries: list[dict[str, Any]] | None = None, **fields: Any
    ) -> list[dict[str, Any]]:
        """The requests of the wire record with this JSON-RPC method and these fields."""
        return [
            entry
            for entry in (self.report["wire"] if entries is None else entries)
            if entry.get("rpcMethod") == rpc_method and all(entry.get(k) == v for k, v in fields.items())
        ]


@pytest.fixture(scope="session")
def fastmcp_python() -> Path:
    """The python of the venv holding fastmcp + fastmcp-tasks."""
    return venv_python("fastmcp_tasks_client")


@pytest.fixture(scope="module")
def facade_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A facade that makes every task client's call a task at once, and one worker serving
    tallied and watched."""
    directory = tmp_path_factory.mktemp("fastmcp-tasks")
    python_path = os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))
    with running_stack(directory) as stack:
        _, url = stack.facade(TOOLQ_TASK_INLINE_SECONDS="0")
        stack.worker(
            "fastmcp-tasks-1",
            *("--tools", "tallied,watched", "--pool", "tasks", "--tool-modules", "tools_for_tests"),
            PYTHONPATH=python_path,
        )
        stack.wait_for_workers("fastmcp-tasks-1")
        yield url


def run_client(python: Path, url: str, mode: str, tmp_path_factory: pytest.TempPathFactory) -> Run:
    files = tmp_path_factory.mktemp(f"fastmcp-{mode}")
    ledger, trail = files / "ledger", files / "watched.trail"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(LEDGER=str(ledger), TRAIL=str(trail), PYTHONUNBUFFERED="1")
    command = [str(python), "tasks_client.py", url, mode]
    report = asyncio.run(run_json(command, cwd=SCRIPT_DIR, timeout=CLIENT_TIMEOUT, env=env))
    assert report["fastmcpTasks"] == "4.1.4"
    assert report["protocolVersion"] == "2026-07-28"
    return Run(report, ledger, trail)


@pytest.fixture(scope="module")
def routed(fastmcp_python: Path, facade_url: str, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_client(fastmcp_python, facade_url, "routed", tmp_path_factory)


def test_fastmcp_tasks_as_released_polls_without_mcp_name_and_toolq_rejects_it(
    fastmcp_python: Path, facade_url: str, tmp_path_factory: pytest.TempPathFactory
):
    """If this fails because the status came back, fastmcp-tasks now sends `Mcp-Name` on tasks/*:
    drop the header hook of tasks_client.py and this test."""
    run = run_client(fastmcp_python, facade_url, "as-shipped", tmp_path_factory)
    report = run.report

    # The task was made: call_tool_task got a CreateTaskResult for tools/call.
    created = report["created"]
    assert (created["resultType"], created["status"]) == ("task", "working"), created
    (call,) = run.exchanges("tools/call", name="tallied")
    assert call["clientCapabilities"]["extensions"] == {"io.modelcontextprotocol/tasks": {}}
    assert call["sentHeaders"]["mcp-name"] == "tallied"

    # Its poll lacked the routing header, so toolq refused it as the transport spec says.
    (poll,) = run.exchanges("tasks/get", taskId=created["taskId"])
    assert "mcp-name" not in poll["sentHeaders"], poll
    assert poll["sentHeaders"]["mcp-method"] == "tasks/get"
    assert poll["httpStatus"] == 400, poll
    assert poll["error"]["code"] == -32020, poll
    assert report["statusError"] == {
        "code": -32020,
        "message": "Header mismatch: the Mcp-Name header is required on tasks/get",
    }

    # The job itself ran, once, to its end.
    done = lambda: read_ledger(run.ledger).get("fastmcp-as-shipped", {}).get("end") == 1  # noqa: E731
    wait_until(done, 10, "the as-shipped task's job to end")
    assert read_ledger(run.ledger) == {"fastmcp-as-shipped": ONCE}


def test_a_tool_task_is_created_at_once_then_polled_to_its_result(routed: Run):
    explicit = routed.report["explicit"]
    created = explicit["created"]
    assert (created["resultType"], created["status"]) == ("task", "working"), created
    assert created["ttlMs"] > 0 and created["pollIntervalMs"] > 0, created
    task_id = created["taskId"]
    # The handle came back while the 2 s job was still running.
    assert explicit["statusAtOnce"]["status"] == "working", explicit
    assert explicit["createdAfterS"] < explicit["resultAfterS"] - 1, explicit

    result = explicit["result"]
    assert result["isError"] is False
    assert result["structuredContent"]["call"] == "fastmcp-explicit"
    final = explicit["final"]
    assert final["status"] == "completed", final
    assert final["result"]["structuredContent"] == result["structuredContent"]

    polls = routed.exchanges("tasks/get", taskId=task_id)
    assert len(polls) >= 2, polls
    assert all(poll["httpStatus"] == 200 and poll["addedMcpName"] for poll in polls), polls
    assert polls[0]["result_status"] == "working" and polls[-1]["result_status"] == "completed"
    assert read_ledger(routed.ledger)["fastmcp-explicit"] == ONCE


def test_a_plain_call_tool_goes_through_a_task_transparently(routed: Run):
    transparent = routed.report["transparent"]
    assert transparent["isError"] is False
    assert transparent["structuredContent"]["call"] == "fastmcp-transparent"

    after = routed.report["wire"][transparent["wireFrom"] :]
    (call,) = routed.exchanges("tools/call", after, name="tallied")
    assert call["resultType"] == "task", call
    task_id = call["result_taskId"]
    polls = routed.exchanges("tasks/get", after, taskId=task_id)
    assert polls and polls[-1]["result_status"] == "completed", polls
    assert read_ledger(routed.ledger)["fastmcp-transparent"] == ONCE


def test_cancelling_a_tool_task_stops_its_job(routed: Run):
    cancel = routed.report["cancel"]
    task_id = cancel["created"]["taskId"]
    assert cancel["final"]["status"] == "cancelled", cancel
    assert cancel["final"]["statusMessage"], cancel
    assert cancel["resultError"] == f"Task {task_id} was cancelled", cancel

    (sent,) = routed.exchanges("tasks/cancel", taskId=task_id)
    assert sent["httpStatus"] == 200 and "error" not in sent, sent
    assert sent["resultType"] == "complete", sent

    stopped = lambda: "cancelled" in read_trail(routed.trail)  # noqa: E731
    wait_until(stopped, STOP_WITHIN, "the worker to cancel the job")
    events = read_trail(routed.trail)
    assert list(events) == ["started", "cancelled"], events
    # Stopped by this cancel: not before the client sent it (same clock), and soon after.
    at = cancel["cancelSentAtEpoch"]
    assert at - 0.01 <= events["cancelled"] < at + STOP_WITHIN, (at, events)
