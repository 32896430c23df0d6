"""In-memory stand-ins for the services the protocol core uses: tools, sessions, requests in
flight and a response stream. With them the whole protocol runs with no HTTP and no Redis."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from facade.errors import StoreUnavailable, UnknownTool
from facade.protocol.core import McpCore
from facade.protocol.exchange import Inbound, Reply
from facade.protocol.handshake import Session
from facade.protocol.headers import RoutingHeaders, mirrored_parameters
from facade.protocol.jsonrpc import RequestId
from facade.protocol.server_info import ServerIdentity
from facade.protocol.tasks import TaskRecord, TaskRequest
from facade.protocol.tool_calls import CallOptions, ToolEvent, ToolOutcome, ToolTerms

ECHO = {
    "name": "echo",
    "description": "Echo the text.",
    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
    "outputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
}


@dataclass
class FakeTools:
    """Serves `echo` (and whatever else `specs` lists); every call answers `{"text": ...}`."""

    specs: list[dict[str, Any]] = field(default_factory=lambda: [ECHO])
    #: Events every call reports before it answers.
    events: list[ToolEvent] = field(default_factory=list)
    capabilities: dict[str, dict[str, Any]] = field(default_factory=dict)
    down: bool = False
    #: When set, calls wait for it before answering (to cancel them in flight).
    hold: asyncio.Event | None = None
    calls: list[tuple[str, dict[str, Any], CallOptions]] = field(default_factory=list)
    #: Set when a call has started.
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: int = 0
    #: Each tool's task mode ("optional" when not named).
    task_modes: dict[str, str] = field(default_factory=dict)
    tasks: MemoryTasks = field(default_factory=lambda: MemoryTasks())  # noqa: PLW0108 - defined below

    async def list_tools(self) -> list[dict[str, Any]]:
        if self.down:
            raise StoreUnavailable("the fake store is down")
        return sorted(self.specs, key=lambda spec: spec["name"])

    async def terms(self, name: str) -> ToolTerms:
        spec = next((s for s in self.specs if s["name"] == name), None)
        if spec is None:
            return ToolTerms()
        return ToolTerms(
            mirrored=mirrored_parameters(spec["inputSchema"]),
            client_capabilities=self.capabilities.get(name, {}),
            task_mode=self.task_modes.get(name, "optional"),
        )

    async def call_as_task(
        self, name: str, arguments: dict[str, Any], options: CallOptions, request: TaskRequest
    ) -> ToolOutcome | TaskRecord:
        running = asyncio.ensure_future(self.call(name, arguments, options))
        if request.inline_seconds > 0:
            await asyncio.wait({running}, timeout=request.inline_seconds)
            if running.done():
                return running.result()
        return self.tasks.start(request, running)

    async def call(self, name: str, arguments: dict[str, Any], options: CallOptions) -> ToolOutcome:
        if all(spec["name"] != name for spec in self.specs):
            raise UnknownTool(name)
        self.calls.append((name, arguments, options))
        self.started.set()
        for event in self.events:
            if options.listener is not None:
                await options.listener(event)
        if self.hold is not None:
            try:
                await self.hold.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return ToolOutcome(ok=True, structured={"text": arguments.get("text", "")}, worker="fake-worker")


class MemoryTasks:
    """Tasks in memory; each one ends when the call behind it does."""

    def __init__(self) -> None:
        self.records: dict[str, tuple[TaskRecord, str | None]] = {}
        self.calls: dict[str, asyncio.Future[ToolOutcome]] = {}
        self._clock = iter(range(1_000, 10**9, 1_000))

    def start(self, request: TaskRequest, running: asyncio.Future[ToolOutcome]) -> TaskRecord:
        now = next(self._clock)
        record = TaskRecord(secrets.token_urlsafe(8), "working", now, now, request.ttl_ms or 60_000, 500)
        self.records[record.task_id] = (record, request.owner)
        self.calls[record.task_id] = running
        running.add_done_callback(lambda done: self._ended(record.task_id, done))
        return record

    def _ended(self, task_id: str, done: asyncio.Future[ToolOutcome]) -> None:
        record, owner = self.records[task_id]
        if record.terminal or done.cancelled():
            return
        ended = replace(record, status="completed", outcome=done.result(), updated_ms=next(self._clock))
        self.records[task_id] = (ended, owner)

    async def get(self, task_id: str, owner: str | None) -> TaskRecord | None:
        found = self.records.get(task_id)
        return found[0] if found is not None and found[1] == owner else None

    async def list(
        self, owner: str | None, cursor: str | None, limit: int
    ) -> tuple[list[TaskRecord], str | None]:
        mine = [record for record, who in self.records.values() if who == owner]
        start = int(cursor or 0)
        more = start + limit < len(mine)
        return mine[start : start + limit], str(start + limit) if more else None

    async def cancel(self, task_id: str, owner: str | None) -> tuple[TaskRecord, bool] | None:
        record = await self.get(task_id, owner)
        if record is None:
            return None
        if record.terminal:
            return record, True
        cancelled = replace(record, status="cancelled", updated_ms=next(self._clock))
        self.records[task_id] = (cancelled, owner)
        self.calls[task_id].cancel()
        return cancelled, False

    async def wait(self, task_id: str, owner: str | None) -> TaskRecord | None:
        record = await self.get(task_id, owner)
        if record is not None and not record.terminal:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({self.calls[task_id]})
            await asyncio.sleep(0)
        return await self.get(task_id, owner)


class MemorySessions:
    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.down = False

    async def create(
        self,
        protocol_version: str,
        client_info: dict[str, Any],
        client_capabilities: dict[str, Any],
        principal: str | None,
    ) -> Session:
        self._check()
        session = Session(
            secrets.token_urlsafe(16), protocol_version, client_info, client_capabilities, principal=principal
        )
        self.sessions[session.id] = session
        return session

    async def get(self, session_id: str) -> Session | None:
        self._check()
        return self.sessions.get(session_id)

    async def set_log_level(self, session: Session, level: str) -> None:
        self._check()
        self.sessions[session.id] = replace(session, log_level=level)

    async def delete(self, session_id: str) -> bool:
        self._check()
        return self.sessions.pop(session_id, None) is not None

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("the fake store is down")


class MemoryInflight:
    def __init__(self) -> None:
        self.tasks: dict[tuple[str, RequestId], asyncio.Future[Any]] = {}

    @contextlib.contextmanager
    def tracking(self, session_id: str, request_id: RequestId, task: asyncio.Future[Any]) -> Iterator[None]:
        self.tasks[(session_id, request_id)] = task
        try:
            yield
        finally:
            self.tasks.pop((session_id, request_id), None)

    def cancel(self, session_id: str, request_id: RequestId) -> None:
        task = self.tasks.get((session_id, request_id))
        if task is not None:
            task.cancel()

    def cancel_session(self, session_id: str) -> None:
        for (session, _), task in list(self.tasks.items()):
            if session == session_id:
                task.cancel()


@dataclass
class RecordingStream:
    """A response stream that keeps what was sent ahead of the response."""

    can_stream: bool = True
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def methods(self) -> list[str]:
        return [message["method"] for message in self.sent]


STATELESS_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "core-tests", "version": "1"},
}


class CoreHarness:
    """A core on fakes, and the two ways a client talks to it."""

    def __init__(self, tools: FakeTools | None = None, **core_options: Any):
        self.tools = tools or FakeTools()
        self.sessions = MemorySessions()
        self.inflight = MemoryInflight()
        self.core = McpCore(
            self.tools,
            self.sessions,
            self.inflight,
            ServerIdentity(version="9.9.9"),
            self.tools.tasks,
            **core_options,
        )
        self._ids = iter(range(1, 10_000))

    def request(
        self, method: str, params: dict[str, Any] | None = None, id: RequestId | None = None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "jsonrpc": "2.0",
            "id": next(self._ids) if id is None else id,
            "method": method,
        }
        if params is not None:
            message["params"] = params
        return message

    async def stateless(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        meta: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        stream: RecordingStream | None = None,
        principal: str | None = None,
    ) -> Reply:
        """A 2026-07-28 request with the envelope and the headers a conforming client sends."""
        body_params = dict(params or {})
        body_params["_meta"] = {**STATELESS_META, **(meta or {})}
        sent = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
        if method == "tools/call" and isinstance(body_params.get("name"), str):
            sent["Mcp-Name"] = body_params["name"]
        if method.startswith("tasks/") and isinstance(body_params.get("taskId"), str):
            sent["Mcp-Name"] = body_params["taskId"]
        sent.update(headers or {})
        inbound = Inbound(
            self.request(method, body_params), RoutingHeaders.from_pairs(sent.items()), principal=principal
        )
        return await self.core.handle(inbound, stream or RecordingStream())

    async def post(
        self,
        payload: Any,
        *,
        session_id: str | None = None,
        headers: dict[str, str] | None = None,
        stream: RecordingStream | None = None,
        principal: str | None = None,
    ) -> Reply:
        inbound = Inbound(
            payload,
            RoutingHeaders.from_pairs((headers or {}).items()),
            session_id=session_id,
            principal=principal,
        )
        return await self.core.handle(inbound, stream or RecordingStream())

    async def initialize(
        self, version: str = "2025-11-25", capabilities: dict[str, Any] | None = None
    ) -> str:
        params = {"protocolVersion": version, "capabilities": capabilities or {}, "clientInfo": {"name": "t"}}
        reply = await self.post(self.request("initialize", params))
        assert reply.session_id is not None, reply
        return reply.session_id
