"""A raw MCP-over-HTTP test client: every header and status code stays visible to the test."""

from __future__ import annotations

import itertools
import json
from typing import Any

from aiohttp.test_utils import TestClient

ACCEPT = "application/json, text/event-stream"


class McpHttp:
    def __init__(self, client: TestClient[Any, Any]):
        self.client = client
        self.session_id: str | None = None
        self.protocol_version = "2025-11-25"
        self._ids = itertools.count(1)

    async def initialize(self, version: str = "2025-11-25") -> dict[str, Any]:
        status, body, headers = await self.post(
            {
                "jsonrpc": "2.0",
                "id": next(self._ids),
                "method": "initialize",
                "params": {
                    "protocolVersion": version,
                    "capabilities": {},
                    "clientInfo": {"name": "toolq-tests", "version": "1"},
                },
            },
            session=False,
        )
        assert status == 200, body
        self.session_id = headers["Mcp-Session-Id"]
        self.protocol_version = body["result"]["protocolVersion"]
        status, _, _ = await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert status == 202
        return body["result"]  # type: ignore[no-any-return]

    def headers(self, session: bool = True, **extra: str) -> dict[str, str]:
        headers = {"Accept": ACCEPT, "Content-Type": "application/json"}
        if session and self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
            headers["MCP-Protocol-Version"] = self.protocol_version
        headers.update(extra)
        return headers

    async def post(
        self, payload: Any, *, session: bool = True, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        data = payload if isinstance(payload, bytes | str) else json.dumps(payload)
        merged = self.headers(session)
        merged.update(headers or {})
        response = await self.client.post("/mcp", data=data, headers=merged)
        text = await response.text()
        body: Any = None
        if text and response.content_type == "application/json":
            body = json.loads(text)
        elif text:
            body = text
        return response.status, body, dict(response.headers)

    async def rpc(self, method: str, params: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        """A request that must get HTTP 200: returns the JSON-RPC response object."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": next(self._ids), "method": method}
        if params is not None:
            message["params"] = params
        status, body, _ = await self.post(message, **kw)
        assert status == 200, (status, body)
        assert body["id"] == message["id"]
        return body  # type: ignore[no-any-return]

    async def call(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """tools/call that must succeed at the JSON-RPC level: returns the CallToolResult."""
        body = await self.rpc("tools/call", {"name": name, "arguments": arguments or {}})
        assert "result" in body, body
        return body["result"]  # type: ignore[no-any-return]


STATELESS_VERSION = "2026-07-28"


class StatelessMcpHttp:
    """A raw 2026-07-28 client: no handshake; the envelope and mirroring headers on every POST."""

    def __init__(self, client: TestClient[Any, Any]):
        self.client = client
        self._ids = itertools.count(1)

    def envelope(self, **extra: Any) -> dict[str, Any]:
        return {
            "io.modelcontextprotocol/protocolVersion": STATELESS_VERSION,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "toolq-tests", "version": "1"},
            **extra,
        }

    def message(self, method: str, params: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
        return {
            "jsonrpc": "2.0",
            "id": next(self._ids),
            "method": method,
            "params": {**(params or {}), "_meta": self.envelope(**meta)},
        }

    def headers(self, message: dict[str, Any], **extra: str) -> dict[str, str]:
        headers = {
            "Accept": ACCEPT,
            "Content-Type": "application/json",
            "MCP-Protocol-Version": STATELESS_VERSION,
            "Mcp-Method": str(message.get("method")),
        }
        params = message.get("params") or {}
        if message.get("method") == "tools/call" and isinstance(params.get("name"), str):
            headers["Mcp-Name"] = params["name"]
        if str(message.get("method")).startswith("tasks/") and isinstance(params.get("taskId"), str):
            headers["Mcp-Name"] = params["taskId"]
        headers.update(extra)
        return headers

    async def post(self, message: Any, **headers: str) -> tuple[int, Any, dict[str, str]]:
        merged = self.headers(message if isinstance(message, dict) else {}, **headers)
        data = message if isinstance(message, bytes | str) else json.dumps(message)
        response = await self.client.post("/mcp", data=data, headers=merged)
        text = await response.text()
        body: Any = text or None
        if text and response.content_type == "application/json":
            body = json.loads(text)
        return response.status, body, dict(response.headers)

    async def rpc(self, method: str, params: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
        """A request that must get HTTP 200 as JSON: returns the JSON-RPC response object."""
        status, body, _ = await self.post(self.message(method, params, **meta))
        assert status == 200, (status, body)
        return body  # type: ignore[no-any-return]

    async def call(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.rpc("tools/call", {"name": name, "arguments": arguments or {}})
        assert "result" in body, body
        return body["result"]  # type: ignore[no-any-return]


def sse_messages(text: str) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an SSE body, in order."""
    return [json.loads(line[len("data: ") :]) for line in text.splitlines() if line.startswith("data: ")]
