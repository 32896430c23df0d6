"""The `tasks/*` methods, the same lookups in both eras (each era shapes its own answers)."""

from __future__ import annotations

from typing import Any

from facade.protocol.jsonrpc import INVALID_PARAMS, JsonRpcError, Request
from facade.protocol.results import decode_cursor, encode_cursor
from facade.protocol.tasks import TaskRecord, TaskStore

__all__ = ["TaskMethods", "task_id_of"]


def task_id_of(request: Request) -> str:
    """`params.taskId`; -32602 unless it is a non-empty string."""
    task_id = request.params.get("taskId")
    if not isinstance(task_id, str) or not task_id:
        raise JsonRpcError(
            INVALID_PARAMS, 'Invalid params: "taskId" must be a non-empty string', id=request.id
        )
    return task_id


def _not_found(request: Request, task_id: str) -> JsonRpcError:
    return JsonRpcError(INVALID_PARAMS, f"Invalid params: no task {task_id!r}", id=request.id)


class TaskMethods:
    def __init__(self, store: TaskStore, *, page_size: int):
        self.store = store
        self.page_size = page_size

    async def get(self, request: Request, owner: str | None) -> TaskRecord:
        task_id = task_id_of(request)
        record = await self.store.get(task_id, owner)
        if record is None:
            raise _not_found(request, task_id)
        return record

    async def wait(self, request: Request, owner: str | None) -> TaskRecord:
        """The task once it has ended (tasks/result blocks until then)."""
        task_id = task_id_of(request)
        record = await self.store.wait(task_id, owner)
        if record is None:
            raise _not_found(request, task_id)
        return record

    async def cancel(self, request: Request, owner: str | None) -> tuple[TaskRecord, bool]:
        """The task after cancelling it, and whether it had ended before."""
        task_id = task_id_of(request)
        cancelled = await self.store.cancel(task_id, owner)
        if cancelled is None:
            raise _not_found(request, task_id)
        return cancelled

    async def list(self, request: Request, owner: str | None) -> tuple[list[TaskRecord], str | None]:
        """A page of the owner's tasks and the next page's cursor."""
        cursor: Any = request.params.get("cursor")
        try:
            after = decode_cursor(cursor) if cursor is not None else None
            records, next_after = await self.store.list(owner, after, self.page_size)
        except ValueError as exc:
            raise JsonRpcError(INVALID_PARAMS, f"Invalid params: {exc}", id=request.id) from exc
        return records, encode_cursor(next_after) if next_after is not None else None
