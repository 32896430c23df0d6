"""MCP over Streamable HTTP for the benchmark, in either era, on the one raw client (raw_http).

Handshake era (2025-11-25): `initialize` once per system, then every request carries the
session's `Mcp-Session-Id` and `MCP-Protocol-Version`. Stateless era (2026-07-28): no session;
every request carries `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` and the envelope in
`params._meta`, and every result must say `resultType: "complete"`. Sessions are opened before
any timer starts, and every caller has its own keep-alive connection.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import urlsplit

from benchmarks.raw_http import Connection, HttpError, header

HANDSHAKE_VERSION = "2025-11-25"
STATELESS_VERSION = "2026-07-28"
HANDSHAKE, STATELESS = "handshake", "stateless"
TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
CLIENT_INFO = {"name": "toolq-benchmark", "version": "1"}


class CallFailed(Exception):
    """A call that did not come back as the right, complete result."""


class McpEndpoint:
    """One MCP server's URL in one era: opens the session (handshake era) and makes the
    connections its callers use. `takes_tasks`: a stateless client that declares the tasks
    extension (a call still running after the server's window would come back as a task)."""

    def __init__(self, url: str, era: str, *, takes_tasks: bool = False):
        if era not in (HANDSHAKE, STATELESS):
            raise ValueError(f"era must be {HANDSHAKE!r} or {STATELESS!r}, not {era!r}")
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        self.era = era
        #: Request ids, unique across every caller of the endpoint: a handshake-era session is
        #: one JSON-RPC conversation, whose server matches answers to requests by id.
        self.ids = itertools.count(1)
        self.headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        self.meta: dict[str, Any] = {}
        if era == STATELESS:
            self.headers["MCP-Protocol-Version"] = STATELESS_VERSION
            capabilities = {"extensions": {TASKS_EXTENSION: {}}} if takes_tasks else {}
            self.meta = {
                "io.modelcontextprotocol/protocolVersion": STATELESS_VERSION,
                "io.modelcontextprotocol/clientCapabilities": capabilities,
                "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
            }

    def connection(self) -> Connection:
        return Connection(self.host, self.port, self.path, self.headers)

    async def open(self) -> None:
        """Handshake era: initialize a session that every later connection uses. Stateless era:
        `server/discover`, which must list 2026-07-28."""
        conn = self.connection()
        try:
            if self.era == STATELESS:
                result = await McpCaller(self, conn).rpc("server/discover", {})
                if STATELESS_VERSION not in (result.get("supportedVersions") or []):
                    raise CallFailed(f"server/discover does not list {STATELESS_VERSION}: {result}")
                return
            params = {"protocolVersion": HANDSHAKE_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO}
            status, head, body = await conn.post(_message(0, "initialize", params))
            session = header(head, "Mcp-Session-Id")
            if status != 200 or session is None:
                raise CallFailed(f"initialize -> HTTP {status}: {body[:300]!r}")
            version = _json_body(head, body)["result"]["protocolVersion"]
            self.headers.update({"Mcp-Session-Id": session, "MCP-Protocol-Version": version})
            conn = self.connection()
            status, _, _ = await conn.post(
                json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode()
            )
            if status != 202:
                raise CallFailed(f"notifications/initialized -> HTTP {status}")
        finally:
            await conn.close()


class McpCaller:
    """One caller: one connection, one request at a time."""

    def __init__(self, endpoint: McpEndpoint, connection: Connection | None = None):
        self.endpoint = endpoint
        self.conn = connection or endpoint.connection()
        self._routed: dict[tuple[str, str | None], bytes] = {}

    async def close(self) -> None:
        await self.conn.close()

    def _routing(self, method: str, name: str | None) -> bytes:
        """The stateless era's routing headers of (method, name), built once."""
        head = self._routed.get((method, name))
        if head is None:
            head = f"Mcp-Method: {method}\r\n".encode()
            if name is not None:
                head += f"Mcp-Name: {name}\r\n".encode()
            self._routed[(method, name)] = head
        return head

    async def rpc(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        extra = b""
        if self.endpoint.era == STATELESS:
            extra = self._routing(method, params.get("name") if method == "tools/call" else None)
            params = {**params, "_meta": self.endpoint.meta}
        try:
            status, head, body = await self.conn.post(
                _message(next(self.endpoint.ids), method, params), extra
            )
        except (HttpError, OSError) as exc:
            raise CallFailed(f"{method}: {exc}") from None
        if status != 200:
            raise CallFailed(f"{method} -> HTTP {status}: {body[:300]!r}")
        message = _json_body(head, body)
        if "result" not in message:
            raise CallFailed(f"{method} -> {message}")
        result: dict[str, Any] = message["result"]
        if self.endpoint.era == STATELESS and result.get("resultType") != "complete":
            raise CallFailed(f"{method} -> no resultType 'complete': {result}")
        return result

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """`tools/call`; its structuredContent, or CallFailed for an error result."""
        result = await self.rpc("tools/call", {"name": tool, "arguments": arguments})
        if result.get("isError"):
            raise CallFailed(f"{tool} -> {result}")
        structured: dict[str, Any] = result.get("structuredContent") or {}
        return structured

    async def timed_add(self, i: int) -> float | None:
        """Milliseconds for one `add`, checked, or None if it failed."""
        started = time.perf_counter()
        try:
            structured = await self.call("add", {"a": i, "b": 42 - i})
        except CallFailed:
            return None
        if structured.get("sum") != 42:
            return None
        return (time.perf_counter() - started) * 1000


def _message(request_id: int, method: str, params: dict[str, Any]) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}).encode()


def _json_body(head: bytes, body: bytes) -> dict[str, Any]:
    """A JSON response, or the last message of a server-sent event stream."""
    if (header(head, "Content-Type") or "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in body.splitlines() if line.startswith(b"data:")]
        if not data:
            raise CallFailed(f"an event stream without data: {body[:300]!r}")
        body = data[-1]
    message: dict[str, Any] = json.loads(body)
    return message
