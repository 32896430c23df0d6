"""MCP tasks in both eras: the task as a value, where tasks are kept, and their wire shapes.

A tool call may become a task: the caller gets a task handle at once (or after a short window
in which a quick call is answered inline) and asks for the outcome later, from any facade
replica. The handshake era (2025-11-25) asks for one with `params.task`; the stateless era
(2026-07-28) lets the server decide, for a request that declares the extension
`io.modelcontextprotocol/tasks` (SEP-2663). The two eras name the same fields differently
(`ttl` / `ttlMs`, `pollInterval` / `pollIntervalMs`) and the stateless era inlines the outcome
in `tasks/get`.

A task belongs to its owner: the principal (token name) that made it, or, with authentication
off, the handshake session that made it; in the stateless era without authentication, anyone
who knows its id (ids are unguessable).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from facade.protocol.jsonrpc import INTERNAL_ERROR
from facade.protocol.results import call_tool_result
from facade.protocol.tool_calls import ToolOutcome

__all__ = [
    "RELATED_TASK",
    "TASKS_EXTENSION",
    "TERMINAL_STATUSES",
    "TaskRecord",
    "TaskRequest",
    "TaskStore",
    "handshake_task",
    "stateless_task",
    "task_error",
    "task_owner",
]

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
#: The `_meta` key tying a message to its task (2025-11-25).
RELATED_TASK = "io.modelcontextprotocol/related-task"
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


def task_owner(principal: str | None, session_id: str | None) -> str | None:
    """Who a task belongs to: the principal; without one, the session (handshake era); in the
    stateless era without authentication, nobody in particular (None)."""
    if principal is not None:
        return f"principal:{principal}"
    return f"session:{session_id}" if session_id is not None else None


@dataclass(frozen=True)
class TaskRequest:
    """How a call may become a task."""

    owner: str | None
    #: The lifetime the client asked for (handshake era), or None for the server's default.
    ttl_ms: int | None = None
    #: A call that ends within this many seconds is answered inline, without a task; 0: a task
    #: at once.
    inline_seconds: float = 0.0
    #: "handshake" or "stateless": how to tell the client when the task changes.
    era: str = "stateless"
    #: The handshake session that made it: where its status notifications go.
    session_id: str | None = None


@dataclass(frozen=True)
class TaskRecord:
    task_id: str
    status: str
    created_ms: int
    updated_ms: int
    ttl_ms: int
    poll_interval_ms: int
    status_message: str | None = None
    #: How the call ended, once it did (completed, and cancelled by the tool's own outcome).
    outcome: ToolOutcome | None = None
    #: The JSON-RPC error of a failed task.
    error: dict[str, Any] | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class TaskStore(Protocol):
    """Where tasks live (shared by every facade replica); every method raises StoreUnavailable
    when the store is unreachable. A task that is not the owner's is as good as unknown (None)."""

    async def get(self, task_id: str, owner: str | None) -> TaskRecord | None: ...

    async def list(
        self, owner: str | None, cursor: str | None, limit: int
    ) -> tuple[list[TaskRecord], str | None]:
        """A page of the owner's tasks, newest first, and the next page's cursor; ValueError
        for a cursor that is not ours."""
        ...

    async def cancel(self, task_id: str, owner: str | None) -> tuple[TaskRecord, bool] | None:
        """Cancel the task (and stop its job) unless it has ended: the task now, and whether it
        had ended already."""
        ...

    async def wait(self, task_id: str, owner: str | None) -> TaskRecord | None:
        """The task once it has ended (blocks while it runs)."""
        ...


def iso_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _common(record: TaskRecord) -> dict[str, Any]:
    task: dict[str, Any] = {
        "taskId": record.task_id,
        "status": record.status,
        "createdAt": iso_time(record.created_ms),
        "lastUpdatedAt": iso_time(record.updated_ms),
    }
    if record.status_message:
        task["statusMessage"] = record.status_message
    return task


def handshake_task(record: TaskRecord) -> dict[str, Any]:
    """A 2025-11-25 `Task`."""
    return {**_common(record), "ttl": record.ttl_ms, "pollInterval": record.poll_interval_ms}


def stateless_task(record: TaskRecord, *, detailed: bool) -> dict[str, Any]:
    """A 2026-07-28 `Task`; `detailed` inlines the result of a completed task and the error of
    a failed one (a `DetailedTask`, for tasks/get and notifications/tasks)."""
    task = {**_common(record), "ttlMs": record.ttl_ms, "pollIntervalMs": record.poll_interval_ms}
    if detailed and record.status == "completed" and record.outcome is not None:
        # The inlined result is the call's own 2026-07-28 result: it says resultType too.
        task["result"] = {**call_tool_result(record.outcome), "resultType": "complete"}
    if detailed and record.status == "failed":
        task["error"] = task_error(record)
    return task


def task_error(record: TaskRecord) -> dict[str, Any]:
    """The JSON-RPC error of a failed task: a call that could not be served (-32603)."""
    if record.error is not None:
        return record.error
    message = record.outcome.message if record.outcome is not None else None
    return {"code": INTERNAL_ERROR, "message": message or "The task failed."}
