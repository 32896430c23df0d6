"""The protocol core: every MCP message of either era comes in here and a `Reply` goes out.

Pure: no HTTP server and no Redis inside. The tools, the sessions and the requests in flight
are services handed in, so the whole protocol runs in unit tests against in-memory fakes.
"""

from __future__ import annotations

from facade.protocol.exchange import Inbound, Reply
from facade.protocol.handshake import HandshakeEra, InflightRequests, Session, SessionStore
from facade.protocol.notifications import RequestStream
from facade.protocol.server_info import ServerIdentity
from facade.protocol.stateless import StatelessEra
from facade.protocol.subscriptions import Subscriptions
from facade.protocol.task_methods import TaskMethods
from facade.protocol.tasks import TaskStore
from facade.protocol.tool_calls import ToolCalls
from facade.protocol.tool_methods import ToolMethods
from facade.protocol.versions import Era, era_of

__all__ = ["McpCore"]


class McpCore:
    def __init__(
        self,
        tools: ToolCalls,
        sessions: SessionStore,
        inflight: InflightRequests,
        identity: ServerIdentity,
        tasks: TaskStore,
        *,
        page_size: int = 100,
        discover_ttl_ms: int = 300_000,
        list_ttl_ms: int = 0,
        cache_scope: str = "public",
        task_inline_seconds: float = 1.0,
        subscriptions: Subscriptions | None = None,
    ):
        methods = ToolMethods(tools, page_size=page_size)
        task_methods = TaskMethods(tasks, page_size=page_size)
        self.identity = identity
        self.handshake = HandshakeEra(methods, sessions, inflight, identity, task_methods)
        self.stateless = StatelessEra(
            methods,
            identity,
            discover_ttl_ms=discover_ttl_ms,
            list_ttl_ms=list_ttl_ms,
            cache_scope=cache_scope,
            tasks=task_methods,
            task_inline_seconds=task_inline_seconds,
            subscriptions=subscriptions,
        )

    async def handle(self, inbound: Inbound, stream: RequestStream) -> Reply:
        """Answer one POSTed message (or 2025-03-26 batch), in the era its headers name."""
        if era_of(inbound.headers.protocol_version) is Era.STATELESS:
            return await self.stateless.handle(inbound, stream)
        return await self.handshake.handle(inbound, stream)

    async def end_session(self, session_id: str | None, principal: str | None = None) -> Reply:
        """A handshake-era client ends its session (HTTP DELETE)."""
        return await self.handshake.end_session(session_id, principal)

    async def session(self, session_id: str | None, principal: str | None = None) -> Session | Reply:
        """A handshake-era session that opens its GET stream: the session, or the Reply refusing
        it (no session: 400; unknown, ended or another principal's: 404)."""
        return await self.handshake.session(session_id, principal)
