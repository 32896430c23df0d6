"""The notification streams open on this facade process, and what reaches them from any replica.

Two kinds of stream stay open here: a handshake-era session's `GET /mcp` stream and a
stateless-era `subscriptions/listen` stream. Both hear `notifications/tools/list_changed` when
the tool list changes, which each replica sees in its own registry view
(facade/tool_list_changes.py). What is sent to one session (`to_session`) or about one task
(`to_task_watchers`) may be for a stream another replica holds: it travels to every replica on
the facades' NOTIFY_CHANNEL, which names sessions and tasks by digests of their ids, never the
ids themselves.

A session has one GET stream at a time across all replicas (opening one ends the older one,
wherever it is), so each message reaches the session once, as the 2025-11-25 transport asks.
Bounded: a stream that falls `max_backlog` messages behind is ended (its client listens again).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from facade.errors import StoreUnavailable
from facade.protocol.jsonrpc import INTERNAL_ERROR, JsonRpcError, RequestId
from facade.protocol.subscriptions import Subscription, acknowledged, task_status, tools_list_changed
from facade.queue_client import QueueClient
from facade.tool_list_changes import ToolListChanges
from workers import contract

__all__ = ["Listeners", "NotificationSink", "TaskWatchPredicate", "anyone_may_watch"]

log = logging.getLogger("toolq.listeners")

#: `may_watch_task(task_id, principal)`: whether that principal may hear about that task.
TaskWatchPredicate = Callable[[str, str | None], Awaitable[bool]]
#: How often an open GET stream checks that its session still exists (which also keeps an idle
#: session alive while its client listens).
SESSION_RECHECK_SECONDS = 30.0
#: Notifications a stream may fall behind before it is ended.
MAX_BACKLOG = 256

#: Why a stream ended: the facade stops, its session ended (or a newer stream replaced it), or it
#: fell too far behind.
_Ending = Literal["server", "session_ended", "overflow"]


class NotificationSink(Protocol):
    """Where a stream's messages go: the SSE response of its request."""

    async def send(self, message: dict[str, Any]) -> None: ...


async def anyone_may_watch(task_id: str, principal: str | None) -> bool:
    """The default `may_watch_task`: whoever knows a task's (unguessable) id may watch it."""
    return True


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(eq=False)
class _Stream:
    sink: NotificationSink
    #: It hears tool-list changes.
    tools: bool
    #: A listen stream's subscription id (its messages are tagged with it); None for GET.
    subscription_id: RequestId | None = None
    #: A GET stream's session, as a digest of its id.
    session: str | None = None
    #: The tasks a listen stream watches: digest of the id -> the id.
    tasks: dict[str, str] = field(default_factory=dict)
    outbox: deque[dict[str, Any]] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    ending: _Ending | None = None

    def push(self, message: dict[str, Any], limit: int) -> None:
        if self.ending is not None:
            return
        if len(self.outbox) >= limit:
            self.end("overflow")
            return
        self.outbox.append(message)
        self.wake.set()

    def end(self, why: _Ending) -> None:
        if self.ending is None:
            self.ending = why
            if why != "server":
                self.outbox.clear()  # a graceful end still sends what was pending
            self.wake.set()


class Listeners:
    """The open streams of this process; the `Subscriptions` service of the protocol core.

    Build it before the queue client starts (it listens on NOTIFY_CHANNEL), `close()` it when
    the facade stops (every stream ends gracefully).
    """

    def __init__(
        self,
        queue: QueueClient,
        tool_list: ToolListChanges,
        *,
        may_watch_task: TaskWatchPredicate | None = None,
        max_backlog: int = MAX_BACKLOG,
        session_recheck_seconds: float = SESSION_RECHECK_SECONDS,
    ) -> None:
        #: Asked for each task id a subscription lists; ids it refuses are left out of the
        #: acknowledgement. May be replaced after construction (before serving).
        self.may_watch_task: TaskWatchPredicate = may_watch_task or anyone_may_watch
        self._queue = queue
        self._tool_list = tool_list
        self._max_backlog = max_backlog
        self._recheck_seconds = session_recheck_seconds
        self._streams: set[_Stream] = set()
        self._sessions: dict[str, _Stream] = {}
        self._tasks: dict[str, set[_Stream]] = {}
        self._drained = asyncio.Event()
        self._drained.set()
        self._closed = False
        queue.on_broadcast(contract.NOTIFY_CHANNEL, self._on_broadcast)
        tool_list.on_change(self._tools_changed)

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    # --- the streams ------------------------------------------------------------------------

    async def listen(
        self, subscription: Subscription, principal: str | None, stream: NotificationSink
    ) -> None:
        """Serve a stateless-era subscription: acknowledge it, then send what it asked for until
        the facade stops (return) or the client leaves (cancelled)."""
        agreed: dict[str, Any] = {}
        tasks: dict[str, str] = {}
        if subscription.tools_list_changed:
            agreed["toolsListChanged"] = True
        if subscription.asked_tasks:
            for task_id in subscription.task_ids:
                if await self.may_watch_task(task_id, principal):
                    tasks[_digest(task_id)] = task_id
            agreed["taskIds"] = list(tasks.values())
        watched = _Stream(
            stream, tools=subscription.tools_list_changed, subscription_id=subscription.id, tasks=tasks
        )
        watched.push(acknowledged(subscription.id, agreed), self._max_backlog)
        if await self._serve(watched) == "overflow":
            raise JsonRpcError(
                INTERNAL_ERROR,
                f"this subscription fell more than {self._max_backlog} notifications behind and was "
                "ended; listen again and fetch what you depend on",
                id=subscription.id,
            )

    async def session_stream(
        self,
        session_id: str,
        stream: NotificationSink,
        *,
        still_open: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """Serve a handshake-era session's GET stream until the session ends (DELETE through any
        replica, or `still_open()` says it is gone), a newer GET stream of the session replaces
        it, or the facade stops; cancelled when the client leaves."""
        digest = _digest(session_id)
        # Any older stream of the session, on whichever replica, ends: one stream per session.
        await self._broadcast({"kind": "session_end", "session": digest})
        await self._serve(_Stream(stream, tools=True, session=digest), still_open)

    async def end_session(self, session_id: str) -> None:
        """The session ended (DELETE): its GET stream ends, wherever it is."""
        digest = _digest(session_id)
        self._end_session_here(digest)
        await self._broadcast({"kind": "session_end", "session": digest})

    async def close(self, timeout: float = 2.0) -> None:  # noqa: ASYNC109 - a bound on the drain
        """End every stream gracefully (a listen stream gets its closing result), wait up to
        `timeout` for them to finish, and stop looking at the tool list."""
        self._closed = True
        for stream in list(self._streams):
            stream.end("server")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._drained.wait()
        await self._tool_list.close()

    # --- what other parts send --------------------------------------------------------------

    async def to_session(self, session_id: str, notification: dict[str, Any]) -> None:
        """Send one JSON-RPC notification to a handshake-era session's GET stream, on whichever
        replica holds it. Best effort, like every server-to-client notification: nothing happens
        when the session has no open stream; a notification that is not JSON, or Redis trouble,
        is logged, never raised."""
        digest = _digest(session_id)
        payload = self._encode({"kind": "session", "session": digest, "message": notification})
        if payload is None:
            return
        if self._to_session_here(digest, notification):
            return  # one stream per session: it is here, nowhere else
        await self._publish(payload, "session")

    async def to_task_watchers(self, task_id: str, params: dict[str, Any]) -> None:
        """Send `notifications/tasks` with `params` (the task as `tasks/get` shows it) to every
        stateless-era subscription, on any replica, that watches this task. Best effort, as
        `to_session`; a notification larger than contract.INLINE_RESULT_BYTES (as JSON) reaches
        only this replica's subscriptions (their clients poll `tasks/get` for the rest)."""
        digest = _digest(task_id)
        body = {key: value for key, value in params.items() if key != "taskId"}
        payload = self._encode({"kind": "task", "task": digest, "params": body})
        if payload is None:
            return
        self._to_task_here(digest, body)
        await self._publish(payload, "task")

    # --- inside -----------------------------------------------------------------------------

    async def _serve(
        self, stream: _Stream, still_open: Callable[[], Awaitable[bool]] | None = None
    ) -> _Ending:
        """Send the stream's messages as they come, until it ends; the reason it ended."""
        if self._closed:
            return "server"  # the facade is stopping: nothing more opens
        try:
            if stream.tools:
                # Counted at once, and returns once the tool list is known: every change from
                # here on is told.
                await self._tool_list.watch()
            self._register(stream)
            while True:
                while stream.outbox:
                    await stream.sink.send(stream.outbox.popleft())
                if stream.ending is not None:
                    return stream.ending
                stream.wake.clear()
                try:
                    async with asyncio.timeout(self._recheck_seconds if still_open else None):
                        await stream.wake.wait()
                except TimeoutError:
                    if still_open is not None and not await still_open():
                        stream.end("session_ended")
        except ConnectionError as exc:
            # The client went away before its disconnect cancelled us: nothing more to send.
            raise asyncio.CancelledError from exc
        finally:
            self._unregister(stream)
            if stream.tools:
                self._tool_list.unwatch()

    def _register(self, stream: _Stream) -> None:
        if self._closed:
            stream.end("server")
        self._streams.add(stream)
        self._drained.clear()
        if stream.session is not None:
            older = self._sessions.get(stream.session)
            if older is not None:
                older.end("session_ended")
            self._sessions[stream.session] = stream
        for digest in stream.tasks:
            self._tasks.setdefault(digest, set()).add(stream)

    def _unregister(self, stream: _Stream) -> None:
        self._streams.discard(stream)
        if stream.session is not None and self._sessions.get(stream.session) is stream:
            del self._sessions[stream.session]
        for digest in stream.tasks:
            watchers = self._tasks.get(digest)
            if watchers is not None:
                watchers.discard(stream)
                if not watchers:
                    del self._tasks[digest]
        if not self._streams:
            self._drained.set()

    def _tools_changed(self) -> None:
        for stream in list(self._streams):
            if stream.tools:
                stream.push(tools_list_changed(stream.subscription_id), self._max_backlog)

    def _to_session_here(self, digest: str, notification: dict[str, Any]) -> bool:
        stream = self._sessions.get(digest)
        if stream is None:
            return False
        stream.push(notification, self._max_backlog)
        return True

    def _end_session_here(self, digest: str) -> None:
        stream = self._sessions.get(digest)
        if stream is not None:
            stream.end("session_ended")

    def _to_task_here(self, digest: str, params: dict[str, Any]) -> None:
        for stream in list(self._tasks.get(digest, ())):
            assert stream.subscription_id is not None  # only listen streams watch tasks
            message = task_status(stream.tasks[digest], params, stream.subscription_id)
            stream.push(message, self._max_backlog)

    def _encode(self, message: dict[str, Any]) -> bytes | None:
        """The broadcast of `message`; None (logged) for one that is not JSON (NaN included)."""
        try:
            return contract.dumps({**message, "from": self._queue.facade_id})
        except (TypeError, ValueError) as exc:
            log.warning("dropped a %s notification that is not JSON: %s", message["kind"], exc)
            return None

    async def _broadcast(self, message: dict[str, Any]) -> None:
        payload = self._encode(message)
        if payload is not None:
            await self._publish(payload, message["kind"])

    async def _publish(self, payload: bytes, kind: str) -> None:
        if len(payload) > contract.INLINE_RESULT_BYTES:
            log.warning(
                "a %s notification of %d bytes is too large to pass to the other facades; only this "
                "one's streams got it",
                kind,
                len(payload),
            )
            return
        try:
            await self._queue.broadcast(contract.NOTIFY_CHANNEL, payload)
        except StoreUnavailable as exc:
            log.warning("could not pass a notification to the other facades: %s", exc)

    def _on_broadcast(self, payload: bytes) -> None:
        try:
            message = contract.loads(payload)
            if message.get("from") == self._queue.facade_id:
                return  # our own, already delivered here
            kind = message["kind"]
            if kind == "session" and isinstance(message["message"], dict):
                self._to_session_here(str(message["session"]), message["message"])
            elif kind == "session_end":
                self._end_session_here(str(message["session"]))
            elif kind == "task" and isinstance(message["params"], dict):
                self._to_task_here(str(message["task"]), message["params"])
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("ignoring a malformed notification broadcast")
