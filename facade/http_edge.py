"""The HTTP edge of /mcp: HTTP methods, media types, body size, statuses, headers and SSE.

Everything about MCP is the protocol core's (facade/protocol); this module turns a POST into an
`Inbound`, hands it to the core with the request's response stream, and turns the `Reply` into
a status code, headers and a body. The seed's own format is told apart here, before MCP. A
handshake-era GET opens its session's notification stream, which facade/listeners.py feeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

from aiohttp import web

from facade.calls import QueuedToolCalls
from facade.listeners import Listeners
from facade.observed import Observed, forget, observe
from facade.protocol import jsonrpc
from facade.protocol.core import McpCore
from facade.protocol.exchange import Inbound, Problem, Reply
from facade.protocol.headers import RoutingHeaders
from facade.protocol.jsonrpc import JsonRpcError
from facade.protocol.versions import Era, era_of
from facade.request_log import RequestLog
from facade.response_stream import SSE_HEADERS, ResponseStream, accepts, sse_event
from facade.security import PRINCIPAL
from facade.seed import answer_seed

__all__ = ["McpEndpoint"]

SESSION_HEADER = "Mcp-Session-Id"
#: A request id a proxy in front set (logged with the request); one is made up otherwise.
REQUEST_ID_HEADER = "X-Request-Id"
VERSION_HEADER = "MCP-Protocol-Version"

STATUS = {
    Problem.MALFORMED: 400,
    Problem.UNKNOWN_METHOD: 404,
    Problem.SESSION_REQUIRED: 400,
    Problem.SESSION_NOT_FOUND: 404,
    Problem.STORE_UNAVAILABLE: 503,
    Problem.OVERLOADED: 503,
    Problem.RATE_LIMITED: 429,
}
#: The HTTP methods /mcp serves in each era (2026-07-28 replaced the GET stream with
#: `subscriptions/listen`).
ALLOWED = {Era.HANDSHAKE: "GET, POST, DELETE", Era.STATELESS: "POST"}


def json_reply(message: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response, encoded once (orjson), without aiohttp's str round trip."""
    body = jsonrpc.encode(message)
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


def new_request_id() -> str:
    return secrets.token_hex(8)


def describe(record: Observed, payload: dict[str, Any]) -> None:
    """What the request's JSON-RPC message says of it: its method, id and (a tool call's) tool."""
    method = payload.get("method")
    record.method = method if isinstance(method, str) else None
    request_id = payload.get("id")
    record.jsonrpc_id = str(request_id) if isinstance(request_id, str | int) else None
    params = payload.get("params")
    if method == "tools/call" and isinstance(params, dict) and isinstance(params.get("name"), str):
        record.tool = params["name"]


def settle(record: Observed, message: dict[str, Any] | list[Any]) -> None:
    """How the request ended, in OpenTelemetry's error.type: the JSON-RPC error code, or
    "tool_error" for a tool result with isError."""
    if not isinstance(message, dict):
        return
    error = message.get("error")
    if isinstance(error, dict):
        record.error_type = str(error.get("code"))
        if record.tool is not None and record.outcome is None:
            record.outcome = "invalid_params"
    elif isinstance(message.get("result"), dict) and message["result"].get("isError"):
        record.error_type = "tool_error"


def rpc_error(status: int, code: int, message: str) -> web.Response:
    return json_reply(jsonrpc.error_response(None, code, message), status=status)


class McpEndpoint:
    def __init__(
        self,
        core: McpCore,
        calls: QueuedToolCalls,
        *,
        max_body_bytes: int,
        keepalive_seconds: float,
        listeners: Listeners,
        requests: RequestLog | None = None,
    ):
        self.core = core
        self.calls = calls
        self.listeners = listeners
        self.max_body_bytes = max_body_bytes
        self.keepalive_seconds = keepalive_seconds
        #: What becomes of each request once answered: metrics, a log line, a trace span.
        self.requests = requests or RequestLog()

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        era = era_of(request.headers.get(VERSION_HEADER))
        if request.method == "POST":
            return await self.post(request)
        if request.method == "GET" and era is Era.HANDSHAKE:
            return await self.session_stream(request)
        if request.method == "DELETE" and era is Era.HANDSHAKE:
            session_id = request.headers.get(SESSION_HEADER)
            reply = await self.core.end_session(session_id, request.get(PRINCIPAL))
            if reply.problem is None:
                if session_id is not None:
                    await self.listeners.end_session(session_id)
                return web.Response(status=200)
            return json_reply(reply.message, status=STATUS[reply.problem])
        return web.Response(status=405, headers={"Allow": ALLOWED[era]})

    async def session_stream(self, request: web.Request) -> web.StreamResponse:
        """GET: the session's stream of server notifications (SSE), open until the session ends,
        the client leaves or the facade stops."""
        if not accepts(request, "text/event-stream"):
            return rpc_error(406, jsonrpc.INVALID_REQUEST, "Not Acceptable: the stream is text/event-stream")
        session_id, principal = request.headers.get(SESSION_HEADER), request.get(PRINCIPAL)
        found = await self.core.session(session_id, principal)
        if isinstance(found, Reply):
            assert found.problem is not None
            return json_reply(found.message, status=STATUS[found.problem])

        live = found.id

        async def still_open() -> bool:
            again = await self.core.session(live, principal)
            return not (isinstance(again, Reply) and again.problem is Problem.SESSION_NOT_FOUND)

        stream = ResponseStream(request, keepalive_seconds=self.keepalive_seconds)
        response = await stream.open()
        stream.start_keepalive()
        try:
            await self.listeners.session_stream(live, stream, still_open=still_open)
        finally:
            await stream.stop_keepalive()
        with contextlib.suppress(ConnectionError):  # the client left as the stream ended
            await response.write_eof()
        return response

    async def post(self, request: web.Request) -> web.StreamResponse:
        record = Observed(
            request_id=(request.headers.get(REQUEST_ID_HEADER) or new_request_id())[:128],
            era=era_of(request.headers.get(VERSION_HEADER)).value,
            principal=request.get(PRINCIPAL),
            protocol_version=request.headers.get(VERSION_HEADER),
        )
        token = observe(record)
        try:
            return await self._post(request, record)
        finally:
            forget(token)
            # After the answer is written (the handler's task goes on to write it first): the
            # metrics, span and log line are nobody's wait.
            asyncio.get_running_loop().call_soon(self.requests.done, record)

    async def _post(self, request: web.Request, record: Observed) -> web.StreamResponse:
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
            return json_reply(exc.response(), status=400)

        if isinstance(payload, dict) and "jsonrpc" not in payload and "tool" in payload:
            record.era, record.method = "seed", "tools/call"
            record.tool = payload["tool"] if isinstance(payload["tool"], str) else None
            self.requests.begin(record, None, request.headers.get("traceparent"))
            status, answer = await answer_seed(payload, self.calls)
            record.error_type = None if status == 200 else str(status)
            retry = {"Retry-After": str(answer["retry_after"])} if "retry_after" in answer else None
            # The seed's answers keep its bytes exactly (the standard library's spacing).
            return web.json_response(answer, status=status, headers=retry)

        inbound = Inbound(
            payload=payload,
            headers=RoutingHeaders.from_pairs(request.headers.items()),
            session_id=request.headers.get(SESSION_HEADER),
            principal=request.get(PRINCIPAL),
        )
        if isinstance(payload, dict):
            describe(record, payload)
            params = payload.get("params")
            meta = params.get("_meta") if isinstance(params, dict) else None
            self.requests.begin(record, meta, request.headers.get("traceparent"))
        stream = ResponseStream(request, keepalive_seconds=self.keepalive_seconds)
        stream.start_keepalive()
        try:
            reply = await self.core.handle(inbound, stream)
        finally:
            await stream.stop_keepalive()
        if reply.message is not None:
            settle(record, reply.message)
        return await self.respond(request, reply, stream)

    @staticmethod
    async def respond(http: web.Request, reply: Reply, stream: ResponseStream) -> web.StreamResponse:
        if reply.message is None:
            return web.Response(status=202)
        opened = stream.opened
        if opened is not None:
            with contextlib.suppress(ConnectionError):  # the client left as the stream ended
                await stream.finish(reply.message)
            return opened
        status = STATUS[reply.problem] if reply.problem is not None else 200
        headers = {SESSION_HEADER: reply.session_id} if reply.session_id else {}
        if reply.retry_after is not None:
            headers["Retry-After"] = str(reply.retry_after)
        if accepts(http, "application/json"):
            return json_reply(reply.message, status=status, headers=headers)
        # A client that takes only SSE gets its answer as a one-event stream.
        response = web.StreamResponse(status=status, headers={**SSE_HEADERS, **headers})
        await response.prepare(http)
        await response.write(sse_event(reply.message))
        await response.write_eof()
        return response
