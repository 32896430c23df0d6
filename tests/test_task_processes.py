"""MCP tasks on real processes (a real redis-server, facade and worker subprocesses): both eras,
a task that outlives the facade that made it, cancellation, and ownership. Executions are
counted through the tools' ledger (tools_for_tests.tallied), never through toolq's bookkeeping."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from real_processes import ROOT, Stack, running_stack, wait_until
from tools_for_tests import read_ledger, read_trail

pytestmark = pytest.mark.redis_server

TASKS = "io.modelcontextprotocol/tasks"
STATELESS = "2026-07-28"
TEST_TOOLS = {"PYTHONPATH": str(ROOT / "tests")}
_ids = itertools.count(1)


def start_pool(stack: Stack, *names: str, tools: str = "tallied,watched") -> None:
    for name in names:
        stack.worker(
            name, "--tools", tools, "--pool", "tasks", "--tool-modules", "tools_for_tests", **TEST_TOOLS
        )
    stack.wait_for_workers(*names)


async def post(
    url: str, message: dict[str, Any], headers: dict[str, str]
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One JSON-RPC POST; an SSE answer is read to its response."""
    sent = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json", **headers}
    async with aiohttp.ClientSession() as session, session.post(url, json=message, headers=sent) as response:
        text = await response.text()
        if response.content_type == "text/event-stream":
            messages = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
            body = next(m for m in messages if "id" in m and m.get("id") == message.get("id"))
        else:
            body = json.loads(text) if text else {}
        return response.status, body, dict(response.headers)


async def stateless(url: str, method: str, params: dict[str, Any], **headers: str) -> dict[str, Any]:
    """A 2026-07-28 request from a client that takes tasks; the JSON-RPC response."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": STATELESS,
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {TASKS: {}}},
        "io.modelcontextprotocol/clientInfo": {"name": "task-tests", "version": "1"},
    }
    message = {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": {**params, "_meta": meta}}
    routing = {"MCP-Protocol-Version": STATELESS, "Mcp-Method": method}
    name = params.get("name") if method == "tools/call" else params.get("taskId")
    if isinstance(name, str):
        routing["Mcp-Name"] = name
    _, body, _ = await post(url, message, {**routing, **headers})
    return body


class HandshakeClient:
    """A raw 2025-11-25 client: initialize, then requests in its session."""

    def __init__(self, url: str, token: str | None = None):
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def open(self) -> HandshakeClient:
        params = {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        }
        _, body, headers = await post(self.url, self._message("initialize", params), self.headers)
        assert "result" in body, body
        self.headers = {
            **self.headers,
            "Mcp-Session-Id": headers["Mcp-Session-Id"],
            "MCP-Protocol-Version": "2025-11-25",
        }
        await post(self.url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, self.headers)
        return self

    async def rpc(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        _, body, _ = await post(self.url, self._message(method, params or {}), self.headers)
        return body

    @staticmethod
    def _message(method: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params}


async def until_ended(url: str, task_id: str, seconds: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = await stateless(url, "tasks/get", {"taskId": task_id})
        assert "result" in body, body
        if body["result"]["status"] in ("completed", "failed", "cancelled"):
            return body["result"]
        await asyncio.sleep(0.2)
    raise AssertionError(f"task {task_id} did not end within {seconds} s")


async def test_a_stateless_task_outlives_the_facade_that_made_it_and_runs_once(tmp_path: Path):
    ledger = tmp_path / "ledger"
    with running_stack(tmp_path) as stack:
        maker, url = stack.facade(name="facade-a")
        _, other_url = stack.facade(name="facade-b")
        await asyncio.to_thread(start_pool, stack, "task-worker")
        arguments = {"ledger": str(ledger), "call": "outlives", "seconds": 3}
        created = await stateless(url, "tools/call", {"name": "tallied", "arguments": arguments})
        assert created["result"]["resultType"] == "task", created
        task_id = created["result"]["taskId"]
        maker.process.kill()  # SIGKILL: the facade that follows the task is gone
        ended = await until_ended(other_url, task_id)
        assert ended["status"] == "completed", ended
        assert ended["result"]["structuredContent"]["call"] == "outlives"
    assert read_ledger(ledger) == {"outlives": {"start": 1, "end": 1}}


async def test_a_quick_call_from_a_task_client_is_answered_inline_by_real_processes(tmp_path: Path):
    ledger = tmp_path / "ledger"
    with running_stack(tmp_path) as stack:
        _, url = stack.facade()
        await asyncio.to_thread(start_pool, stack, "quick-worker")
        arguments = {"ledger": str(ledger), "call": "quick", "seconds": 0}
        answered = await stateless(url, "tools/call", {"name": "tallied", "arguments": arguments})
    assert answered["result"]["resultType"] == "complete", answered
    assert answered["result"]["structuredContent"]["call"] == "quick"
    assert read_ledger(ledger) == {"quick": {"start": 1, "end": 1}}


async def test_a_handshake_task_round_trip_and_its_cancellation_on_real_processes(tmp_path: Path):
    ledger, trail = tmp_path / "ledger", tmp_path / "trail"
    with running_stack(tmp_path) as stack:
        _, url = stack.facade()
        await asyncio.to_thread(start_pool, stack, "handshake-worker")
        client = await HandshakeClient(url).open()
        arguments = {"ledger": str(ledger), "call": "round-trip", "seconds": 1}
        created = await client.rpc(
            "tools/call", {"name": "tallied", "arguments": arguments, "task": {"ttl": 60_000}}
        )
        task_id = created["result"]["task"]["taskId"]
        final = await client.rpc("tasks/result", {"taskId": task_id})
        assert final["result"]["structuredContent"]["call"] == "round-trip", final
        assert final["result"]["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task_id}
        listed = await client.rpc("tasks/list")
        assert task_id in [task["taskId"] for task in listed["result"]["tasks"]]

        watched = await client.rpc(
            "tools/call", {"name": "watched", "arguments": {"marker": str(trail), "seconds": 60}, "task": {}}
        )
        running_id = watched["result"]["task"]["taskId"]
        await asyncio.to_thread(wait_until, lambda: "started" in read_trail(trail), 10, "the job to start")
        cancelled = await client.rpc("tasks/cancel", {"taskId": running_id})
        assert cancelled["result"]["status"] == "cancelled", cancelled
        await asyncio.to_thread(wait_until, lambda: "cancelled" in read_trail(trail), 10, "the job to stop")
        again = await client.rpc("tasks/cancel", {"taskId": running_id})
        assert again["error"]["code"] == -32602  # a task that has ended cannot be cancelled
    assert read_ledger(ledger) == {"round-trip": {"start": 1, "end": 1}}


async def test_another_principal_cannot_get_list_or_cancel_a_task(tmp_path: Path):
    tokens = "alice:alice-secret,bob:bob-secret"
    with running_stack(tmp_path) as stack:
        _, url = stack.facade(TOOLQ_TOKENS=tokens)
        await asyncio.to_thread(start_pool, stack, "owned-worker")
        alice = await HandshakeClient(url, "alice-secret").open()
        bob = await HandshakeClient(url, "bob-secret").open()
        arguments = {"ledger": str(tmp_path / "ledger"), "call": "alice's", "seconds": 2}
        created = await alice.rpc("tools/call", {"name": "tallied", "arguments": arguments, "task": {}})
        task_id = created["result"]["task"]["taskId"]
        assert (await bob.rpc("tasks/get", {"taskId": task_id}))["error"]["code"] == -32602
        assert (await bob.rpc("tasks/cancel", {"taskId": task_id}))["error"]["code"] == -32602
        assert task_id not in [task["taskId"] for task in (await bob.rpc("tasks/list"))["result"]["tasks"]]
        stateless_bob = await stateless(
            url, "tasks/get", {"taskId": task_id}, Authorization="Bearer bob-secret"
        )
        assert stateless_bob["error"]["code"] == -32602
        assert (await alice.rpc("tasks/get", {"taskId": task_id}))["result"]["status"] == "working"
