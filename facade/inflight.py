"""Handshake-era requests in flight in this process, and cancellations that cross processes.

A client's `notifications/cancelled` may reach a facade replica other than the one serving the
request; that replica passes it on to the others through Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from facade.errors import StoreUnavailable
from facade.protocol.jsonrpc import RequestId
from facade.queue_client import QueueClient
from workers import contract

__all__ = ["InflightRegistry"]

log = logging.getLogger("toolq.inflight")


class InflightRegistry:
    """The protocol core's `InflightRequests`: tasks by (session, request id)."""

    def __init__(self, queue: QueueClient):
        self._queue = queue
        self._tasks: dict[tuple[str, RequestId], asyncio.Future[Any]] = {}
        self._background: set[asyncio.Task[None]] = set()
        queue.on_broadcast(contract.CANCEL_CHANNEL, self._on_broadcast)

    @contextlib.contextmanager
    def tracking(self, session_id: str, request_id: RequestId, task: asyncio.Future[Any]) -> Iterator[None]:
        key = (session_id, request_id)
        self._tasks[key] = task
        try:
            yield
        finally:
            if self._tasks.get(key) is task:
                del self._tasks[key]

    def cancel(self, session_id: str, request_id: RequestId) -> None:
        if self._cancel_here(session_id, request_id):
            return
        payload = contract.dumps({"session": session_id, "request": request_id})
        task = asyncio.create_task(self._broadcast(payload))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def cancel_session(self, session_id: str) -> None:
        for (session, _), task in list(self._tasks.items()):
            if session == session_id:
                task.cancel()

    def _cancel_here(self, session_id: str, request_id: Any) -> bool:
        task = self._tasks.get((session_id, request_id))
        if task is None:
            return False
        task.cancel()
        return True

    async def _broadcast(self, payload: bytes) -> None:
        try:
            await self._queue.broadcast(contract.CANCEL_CHANNEL, payload)
        except StoreUnavailable as exc:
            log.warning("could not pass a cancellation to the other facades: %s", exc)

    def _on_broadcast(self, payload: bytes) -> None:
        try:
            message = contract.loads(payload)
            self._cancel_here(message["session"], message["request"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed cancellation broadcast")
