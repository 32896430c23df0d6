"""FastMCP's task client (`fastmcp_tasks`: `call_tool_task`, `ToolTask`, and the transparent
`Client.call_tool` path) against an MCP server on 2026-07-28:

    python tasks_client.py URL MODE      (MODE: "routed" | "as-shipped")

Runs in its own venv (tests/fastmcp_tasks_client/requirements.txt, a consistent fastmcp +
fastmcp-tasks pair), never in toolq's: fastmcp-tasks pins fastmcp-slim to its own version.

"as-shipped": the client exactly as released. It creates a task with `call_tool_task` and asks
    for its status once; fastmcp-tasks 4.1.4 sends tasks/get without the `Mcp-Name` header
    SEP-2663 requires (tasks.md, "Streamable HTTP: Routing Headers"), and the report says what
    the server answered.
"routed": the same client with one fix in its HTTP layer, an httpx request hook that copies
    `params.taskId` into `Mcp-Name` on tasks/* as that section requires. It drives a task with
    `ToolTask` (status, result, wait), one through the transparent `call_tool`, and cancels a
    third once its job has started.

Environment: LEDGER and TRAIL (files for the test tools `tallied` and `watched`). Prints ONE JSON
object on stdout; an unexpected failure exits 1 with a traceback and the partial report on
stderr. Every HTTP request the client sent is in `wire`, with the JSON answer it got.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import fastmcp_tasks
import httpx2
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from fastmcp.exceptions import ToolError
from fastmcp_tasks import ToolTask, call_tool_task
from mcp.shared.exceptions import MCPError

TASK_METHODS = ("tasks/get", "tasks/update", "tasks/cancel")
STARTED_WITHIN = 10.0


class Wire:
    """Every request the client sends, with the answer it gets; optionally adds Mcp-Name."""

    def __init__(self, route_tasks: bool):
        self.route_tasks = route_tasks
        self.entries: list[dict[str, Any]] = []

    async def on_request(self, request: httpx2.Request) -> None:
        try:
            body = json.loads(request.content) if request.content else None
        except ValueError:
            body = None
        method = body.get("method") if isinstance(body, dict) else None
        params = (body.get("params") or {}) if isinstance(body, dict) else {}
        sent = {name: value for name, value in request.headers.items() if name.lower().startswith("mcp-")}
        entry: dict[str, Any] = {"httpMethod": request.method, "rpcMethod": method, "sentHeaders": sent}
        if isinstance(params.get("taskId"), str):
            entry["taskId"] = params["taskId"]
        if method == "tools/call":
            entry["name"] = params.get("name")
            capabilities = (params.get("_meta") or {}).get("io.modelcontextprotocol/clientCapabilities")
            entry["clientCapabilities"] = capabilities
        if self.route_tasks and method in TASK_METHODS and "mcp-name" not in request.headers:
            request.headers["Mcp-Name"] = params["taskId"]
            entry["addedMcpName"] = True
        request.extensions["toolq-wire"] = entry
        self.entries.append(entry)

    async def on_response(self, response: httpx2.Response) -> None:
        entry = response.request.extensions.get("toolq-wire")
        if entry is None:
            return
        entry["httpStatus"] = response.status_code
        content_type = response.headers.get("content-type", "")
        entry["contentType"] = content_type
        if not content_type.startswith("application/json"):
            return  # an SSE stream is the SDK's to read
        await response.aread()
        try:
            answer = json.loads(response.content)
        except ValueError:
            return
        if not isinstance(answer, dict):
            return
        if "error" in answer:
            entry["error"] = answer["error"]
        result = answer.get("result")
        if isinstance(result, dict):
            entry["resultType"] = result.get("resultType")
            for key in ("taskId", "status"):
                if key in result:
                    entry[f"result_{key}"] = result[key]

    def client_factory(self, **kwargs: Any) -> httpx2.AsyncClient:
        hooks = {"request": [self.on_request], "response": [self.on_response]}
        return httpx2.AsyncClient(event_hooks=hooks, **kwargs)


def task_fields(task: Any) -> dict[str, Any]:
    """A `ClientCreateTaskResult` or `ClientGetTaskResult` as plain JSON."""
    fields = {
        "taskId": task.task_id,
        "status": task.status,
        "statusMessage": task.status_message,
        "ttlMs": task.ttl_ms,
        "pollIntervalMs": task.poll_interval_ms,
        "resultType": task.result_type,
    }
    if getattr(task, "result", None) is not None:
        fields["result"] = task.result
    if getattr(task, "error", None) is not None:
        fields["error"] = task.error
    return fields


def tool_result(result: Any) -> dict[str, Any]:
    return {
        "isError": result.is_error,
        "structuredContent": result.structured_content,
        "text": [getattr(block, "text", None) for block in result.content],
    }


def trail_events(trail: Path) -> list[str]:
    if not trail.exists():
        return []
    return [line.split()[0] for line in trail.read_text().split("\n")[:-1]]


async def until_started(trail: Path) -> None:
    deadline = time.monotonic() + STARTED_WITHIN
    while "started" not in trail_events(trail):
        if time.monotonic() > deadline:
            raise AssertionError(f"watched did not start within {STARTED_WITHIN} s")
        await asyncio.sleep(0.05)


async def as_shipped(client: Client, ledger: str, report: dict[str, Any]) -> None:
    arguments = {"ledger": ledger, "call": "fastmcp-as-shipped", "seconds": 1}
    task = await call_tool_task(client, "tallied", arguments)
    report["created"] = task_fields(task.create_result)
    try:
        report["status"] = task_fields(await task.status())
    except MCPError as error:
        report["statusError"] = {"code": error.code, "message": error.error.message}


async def routed(client: Client, ledger: str, trail: Path, report: dict[str, Any]) -> None:
    # 1. call_tool_task: a ToolTask handle at once, then status, result and a final wait.
    arguments = {"ledger": ledger, "call": "fastmcp-explicit", "seconds": 2}
    started = time.monotonic()
    task = await call_tool_task(client, "tallied", arguments)
    created_after = time.monotonic() - started
    explicit: dict[str, Any] = {"created": task_fields(task.create_result), "createdAfterS": created_after}
    explicit["statusAtOnce"] = task_fields(await task.status())
    result = await task.result()
    explicit["resultAfterS"] = time.monotonic() - started
    explicit["result"] = tool_result(result)
    explicit["final"] = task_fields(await task.wait(timeout=10))
    report["explicit"] = explicit

    # 2. Client.call_tool: the tasks extension's result claim polls the task under the hood.
    before = len(report["wire"])
    arguments = {"ledger": ledger, "call": "fastmcp-transparent", "seconds": 1}
    transparent = await client.call_tool("tallied", arguments)
    report["transparent"] = {**tool_result(transparent), "wireFrom": before}

    # 3. A long call, cancelled once its job runs on the worker.
    watched: ToolTask = await call_tool_task(client, "watched", {"marker": str(trail), "seconds": 30})
    cancel: dict[str, Any] = {"created": task_fields(watched.create_result)}
    await until_started(trail)
    cancel["cancelSentAtEpoch"] = time.time()
    await watched.cancel()
    cancel["final"] = task_fields(await watched.wait(timeout=10))
    try:
        await watched.result()
        cancel["result"] = "returned"
    except ToolError as error:
        cancel["resultError"] = str(error)
    report["cancel"] = cancel


async def main(url: str, mode: str) -> dict[str, Any]:
    ledger, trail = os.environ["LEDGER"], Path(os.environ["TRAIL"])
    wire = Wire(route_tasks=mode == "routed")
    report: dict[str, Any] = {"mode": mode, "fastmcpTasks": fastmcp_tasks.__version__, "wire": wire.entries}
    transport = StreamableHttpTransport(url, httpx_client_factory=wire.client_factory)
    try:
        async with Client(transport, mode="2026-07-28") as client:
            report["protocolVersion"] = client.protocol_version
            if mode == "routed":
                await routed(client, ledger, trail, report)
            else:
                await as_shipped(client, ledger, report)
    except BaseException:
        sys.stderr.write(f"{traceback.format_exc()}\npartial report: {json.dumps(report, default=str)}\n")
        raise
    return report


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] not in ("routed", "as-shipped"):
        sys.stderr.write('usage: python tasks_client.py URL MODE   (MODE: "routed" | "as-shipped")\n')
        sys.exit(2)
    try:
        done = asyncio.run(main(sys.argv[1], sys.argv[2]))
    except BaseException:
        sys.exit(1)
    sys.stdout.write(json.dumps(done, default=str) + "\n")
