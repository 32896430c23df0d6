"""MCP methods (handshake era: 2025-03-26, 2025-06-18, 2025-11-25), with no HTTP inside.

The HTTP edge parses the message and owns sessions and streams; this module turns a request
into a JSON-RPC response, calling tools through facade.calls.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from redis.exceptions import RedisError

from facade.calls import ToolCalls, UnknownTool
from facade.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    Request,
    error_response,
    result_response,
)
from facade.queue_client import ProgressCallback

#: Newest first: an unknown requested version is answered with the first.
HANDSHAKE_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")
#: Versions a request header may name and still belong to the handshake era (2024-11-05
#: clients speak the older HTTP+SSE transport, but the header alone does not make them stateless).
HANDSHAKE_ERA_HEADER_VERSIONS = (*HANDSHAKE_VERSIONS, "2024-11-05")

SERVER_NAME = "toolq"
INSTRUCTIONS = (
    "Tools served by toolq run on a queue of worker processes. Calls are independent: "
    "several may run at once."
)


def negotiate(requested: Any) -> str:
    return requested if requested in HANDSHAKE_VERSIONS else HANDSHAKE_VERSIONS[0]


def initialize_result(protocol_version: str, server_version: str) -> dict[str, Any]:
    return {
        "protocolVersion": protocol_version,
        "capabilities": {"tools": {"listChanged": False}},
        "serverInfo": {"name": SERVER_NAME, "title": "toolq", "version": server_version},
        "instructions": INSTRUCTIONS,
    }


def encode_cursor(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def decode_cursor(cursor: Any) -> str:
    """The tool name a page starts after; ValueError if the cursor is not one of ours."""
    if not isinstance(cursor, str) or not cursor:
        raise ValueError("cursor must be a non-empty string")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("cursor is not valid") from exc
    if not isinstance(decoded, dict) or not isinstance(decoded.get("after"), str):
        raise ValueError("cursor is not valid")
    after: str = decoded["after"]
    return after


def progress_token(params: dict[str, Any]) -> str | int | None:
    meta = params.get("_meta")
    token = meta.get("progressToken") if isinstance(meta, dict) else None
    return token if isinstance(token, str | int) and not isinstance(token, bool) else None


class McpProtocol:
    def __init__(self, calls: ToolCalls, *, page_size: int, server_version: str):
        self.calls = calls
        self.page_size = page_size
        self.server_version = server_version

    async def handle(
        self, request: Request, *, on_progress: ProgressCallback | None = None
    ) -> dict[str, Any]:
        """Answer one request of an established session (initialize is the edge's)."""
        if request.method == "ping":
            return result_response(request.id, {})
        if request.method == "tools/list":
            return await self._tools_list(request)
        if request.method == "tools/call":
            return await self._tools_call(request, on_progress)
        return error_response(request.id, METHOD_NOT_FOUND, f"Method not found: {request.method}")

    async def _tools_list(self, request: Request) -> dict[str, Any]:
        try:
            tools = await self.calls.list_tools()
        except (RedisError, OSError) as exc:
            return error_response(
                request.id, INTERNAL_ERROR, f"toolq cannot reach its tool registry (Redis) right now: {exc}"
            )
        start = 0
        if request.params.get("cursor") is not None:
            try:
                after = decode_cursor(request.params["cursor"])
            except ValueError as exc:
                return error_response(request.id, INVALID_PARAMS, f"Invalid params: {exc}")
            start = next((i for i, tool in enumerate(tools) if tool["name"] > after), len(tools))
        page = tools[start : start + self.page_size]
        result: dict[str, Any] = {"tools": page}
        if start + self.page_size < len(tools):
            result["nextCursor"] = encode_cursor(page[-1]["name"])
        return result_response(request.id, result)

    async def _tools_call(self, request: Request, on_progress: ProgressCallback | None) -> dict[str, Any]:
        name = request.params.get("name")
        arguments = request.params.get("arguments")
        if not isinstance(name, str) or not name:
            return error_response(
                request.id, INVALID_PARAMS, 'Invalid params: "name" must be a non-empty string'
            )
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            return error_response(request.id, INVALID_PARAMS, 'Invalid params: "arguments" must be an object')
        try:
            outcome = await self.calls.call(name, arguments, on_progress=on_progress)
        except UnknownTool as exc:
            return error_response(request.id, INVALID_PARAMS, f"Unknown tool: {exc.name}")
        return result_response(request.id, outcome.tool_result())
