"""The HTTP edge of /mcp: methods, headers, status codes, sessions and SSE.

Everything about HTTP stays here; protocol.py answers the messages and calls.py runs tools.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from facade import jsonrpc
from facade.calls import ToolCalls
from facade.jsonrpc import JsonRpcError, Notification, Request, Response
from facade.protocol import (
    HANDSHAKE_ERA_HEADER_VERSIONS,
    HANDSHAKE_VERSIONS,
    McpProtocol,
    initialize_result,
    negotiate,
    progress_token,
)
from facade.seed import answer_seed
from facade.sessions import SessionStore
from workers import contract

log = logging.getLogger("toolq.http")

SESSION_HEADER = "Mcp-Session-Id"
VERSION_HEADER = "MCP-Protocol-Version"
SESSION_NOT_FOUND = -32001
REQUEST_CANCELLED = -32800
#: GET (a server-to-client stream) is not offered: toolq sends nothing unprompted.
ALLOWED_METHODS = "POST, DELETE"


def rpc_error(status: int, code: int, message: str, id: Any = None, **headers: str) -> web.Response:
    return web.json_response(jsonrpc.error_response(id, code, message), status=status, headers=headers)


def accepts(request: web.Request, media_type: str) -> bool:
    accept = request.headers.get("Accept")
    if not accept:
        return True
    major = media_type.split("/", maxsplit=1)[0]
    for part in accept.split(","):
        value = part.split(";")[0].strip().lower()
        if value in (media_type, "*/*", f"{major}/*"):
            return True
    return False


def sse_event(message: dict[str, Any]) -> bytes:
    return b"event: message\ndata: " + json.dumps(message, separators=(",", ":")).encode() + b"\n\n"


async def answer(
    http: web.Request, message: dict[str, Any], headers: dict[str, str] | None = None
) -> web.StreamResponse:
    """One JSON-RPC response: JSON, or a one-event SSE stream for a client that takes only SSE."""
    if accepts(http, "application/json"):
        return web.json_response(message, headers=headers)
    stream = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **(headers or {})}
    )
    await stream.prepare(http)
    await stream.write(sse_event(message))
    await stream.write_eof()
    return stream


def _log_broadcast_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("could not pass a cancellation to the other facades: %s", task.exception())


class McpEndpoint:
    """Handlers for /mcp. In-flight requests are tracked per session for cancellation."""

    def __init__(self, protocol: McpProtocol, sessions: SessionStore, calls: ToolCalls, max_body_bytes: int):
        self.protocol = protocol
        self.max_body_bytes = max_body_bytes
        self.sessions = sessions
        self.calls = calls
        self._inflight: dict[tuple[str, Any], asyncio.Task[dict[str, Any]]] = {}

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            return await self.post(request)
        if request.method == "DELETE":
            return await self.delete(request)
        return web.Response(status=405, headers={"Allow": ALLOWED_METHODS})

    # --- POST ---------------------------------------------------------------------------------

    async def post(self, request: web.Request) -> web.StreamResponse:
        content_type = request.headers.get("Content-Type", "application/json").split(";")[0].strip().lower()
        if content_type != "application/json":
            return rpc_error(415, jsonrpc.INVALID_REQUEST, "Unsupported Media Type: send application/json")
        if not accepts(request, "application/json") and not accepts(request, "text/event-stream"):
            return rpc_error(
                406, jsonrpc.INVALID_REQUEST, "Not Acceptable: accept application/json and text/event-stream"
            )
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return rpc_error(
                413, jsonrpc.INVALID_REQUEST, f"Request body larger than {self.max_body_bytes} bytes"
            )
        try:
            payload = jsonrpc.decode(body)
        except JsonRpcError as exc:
            return web.json_response(exc.response(), status=400)

        if isinstance(payload, dict) and "jsonrpc" not in payload and "tool" in payload:
            status, answer = await answer_seed(payload, self.calls)
            return web.json_response(answer, status=status)

        version = request.headers.get(VERSION_HEADER)
        if version is not None and version not in HANDSHAKE_ERA_HEADER_VERSIONS:
            return rpc_error(
                400,
                jsonrpc.INVALID_REQUEST,
                f"Bad Request: unsupported {VERSION_HEADER} {version!r}; "
                f"this server speaks {', '.join(HANDSHAKE_VERSIONS)} (initialize first)",
                id=payload.get("id") if isinstance(payload, dict) else None,
            )
        try:
            message = jsonrpc.parse(payload)
        except JsonRpcError as exc:
            return web.json_response(exc.response(), status=400)

        if isinstance(message, Request) and message.method == "initialize":
            return await self.initialize(request, message)

        session_id = request.headers.get(SESSION_HEADER)
        if not session_id:
            return rpc_error(
                400,
                jsonrpc.INVALID_REQUEST,
                f"Bad Request: the {SESSION_HEADER} header is required (initialize first)",
                id=getattr(message, "id", None),
            )
        try:
            session = await self.sessions.get(session_id)
        except (RedisError, OSError) as exc:
            return rpc_error(503, jsonrpc.INTERNAL_ERROR, f"Session store unavailable: {exc}")
        if session is None:
            return rpc_error(
                404,
                SESSION_NOT_FOUND,
                "Session not found: initialize a new session",
                id=getattr(message, "id", None),
            )

        if isinstance(message, Notification | Response):
            if isinstance(message, Notification) and message.method == "notifications/cancelled":
                self.cancel(session.id, message.params.get("requestId"))
            return web.Response(status=202)
        return await self.request(request, message, session.id)

    async def initialize(self, http: web.Request, message: Request) -> web.StreamResponse:
        version = negotiate(message.params.get("protocolVersion"))
        client_info = message.params.get("clientInfo")
        try:
            session = await self.sessions.create(
                version, client_info if isinstance(client_info, dict) else {}
            )
        except (RedisError, OSError) as exc:
            return rpc_error(503, jsonrpc.INTERNAL_ERROR, f"Session store unavailable: {exc}", id=message.id)
        result = initialize_result(version, self.protocol.server_version)
        return await answer(http, jsonrpc.result_response(message.id, result), {SESSION_HEADER: session.id})

    async def request(self, http: web.Request, message: Request, session_id: str) -> web.StreamResponse:
        token = progress_token(message.params) if message.method == "tools/call" else None
        stream: web.StreamResponse | None = None
        last_progress = float("-inf")

        async def on_progress(event: contract.ProgressEvent) -> None:
            # Progress can only travel on this request's SSE stream: open it at the first report.
            nonlocal stream, last_progress
            if event["progress"] <= last_progress:
                return
            last_progress = event["progress"]
            if stream is None:
                stream = web.StreamResponse(
                    headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
                )
                await stream.prepare(http)
            params: dict[str, Any] = {"progressToken": token, "progress": event["progress"]}
            if "total" in event:
                params["total"] = event["total"]
            if "message" in event:
                params["message"] = event["message"]
            await stream.write(sse_event(jsonrpc.notification("notifications/progress", params)))

        wants_progress = token is not None and accepts(http, "text/event-stream")
        inner = asyncio.ensure_future(
            self.protocol.handle(message, on_progress=on_progress if wants_progress else None)
        )
        key = (session_id, message.id)
        self._inflight[key] = inner
        try:
            response = await inner
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the client went away: nothing more to send
            response = jsonrpc.error_response(message.id, REQUEST_CANCELLED, "Request cancelled")
        except Exception as exc:
            # A bug, not bad input: answer in JSON-RPC and keep serving.
            log.exception("%s failed", message.method)
            response = jsonrpc.error_response(
                message.id, jsonrpc.INTERNAL_ERROR, f"Internal error: {type(exc).__name__}"
            )
        finally:
            if self._inflight.get(key) is inner:
                del self._inflight[key]
        if stream is None:
            return await answer(http, response)
        await stream.write(sse_event(response))
        await stream.write_eof()
        return stream

    def cancel(self, session_id: str, request_id: Any) -> None:
        """Cancel a request of this session; another replica may be the one serving it."""
        if not isinstance(request_id, str | int) or isinstance(request_id, bool):
            return  # not an id any request of ours can have
        if not self.cancel_here(session_id, request_id):
            payload = contract.dumps({"session": session_id, "request": request_id})
            task = asyncio.create_task(self.calls.queue.broadcast(contract.CANCEL_CHANNEL, payload))
            task.add_done_callback(_log_broadcast_failure)

    def cancel_here(self, session_id: str, request_id: Any) -> bool:
        task = self._inflight.get((session_id, request_id))
        if task is None:
            return False
        task.cancel()
        return True

    def on_cancel_broadcast(self, payload: bytes) -> None:
        try:
            message = contract.loads(payload)
            self.cancel_here(message["session"], message["request"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed cancellation broadcast")

    # --- DELETE -------------------------------------------------------------------------------

    async def delete(self, request: web.Request) -> web.Response:
        session_id = request.headers.get(SESSION_HEADER)
        if not session_id:
            return rpc_error(
                400, jsonrpc.INVALID_REQUEST, f"Bad Request: the {SESSION_HEADER} header is required"
            )
        try:
            deleted = await self.sessions.delete(session_id)
        except (RedisError, OSError) as exc:
            return rpc_error(503, jsonrpc.INTERNAL_ERROR, f"Session store unavailable: {exc}")
        if not deleted:
            return rpc_error(404, SESSION_NOT_FOUND, "Session not found")
        for key, task in list(self._inflight.items()):
            if key[0] == session_id:
                task.cancel()
        return web.Response(status=200)
