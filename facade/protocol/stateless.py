"""The stateless era (2026-07-28): no handshake, no session; each request stands alone.

A request passes a ladder of checks, in this order, each with its own error: a single JSON-RPC
request (-32600), the envelope in `params._meta` (-32602), headers that mirror the body
(-32020), a served protocol version (-32022, listing every version served in both eras), then
the method (-32601). Every result says `resultType: "complete"` and names the server in its
`_meta`. Cancellation is the client closing the response: the edge cancels the handling task.
"""

from __future__ import annotations

import logging
from typing import Any

from facade.errors import StoreUnavailable
from facade.protocol.envelope import SERVER_INFO, Envelope, read_envelope
from facade.protocol.exchange import ACCEPTED, Inbound, Problem, Reply, refusal
from facade.protocol.headers import check_mirrored_parameters, check_routing_headers
from facade.protocol.jsonrpc import (
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    MISSING_CLIENT_CAPABILITY,
    PARSE_ERROR,
    UNSUPPORTED_PROTOCOL_VERSION,
    JsonRpcError,
    Notification,
    Request,
    error_response,
    parse,
    result_response,
)
from facade.protocol.notifications import CallNotifier, RequestStream
from facade.protocol.server_info import ServerIdentity, discover_result
from facade.protocol.subscriptions import Subscriptions, listen
from facade.protocol.task_methods import TaskMethods
from facade.protocol.tasks import TASKS_EXTENSION, TaskRecord, TaskRequest, stateless_task, task_owner
from facade.protocol.tool_methods import ToolMethods, call_arguments
from facade.protocol.versions import STATELESS_VERSIONS, SUPPORTED_VERSIONS

__all__ = ["REMOVED_METHODS", "StatelessEra"]

log = logging.getLogger("toolq.protocol")

#: Handshake-era methods that 2026-07-28 removed: -32601 like any method not served.
REMOVED_METHODS = frozenset(
    {"initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"}
)
#: Error codes that mean the request itself is wrong (the transport answers 400).
_CLIENT_ERRORS = frozenset(
    {
        PARSE_ERROR,
        INVALID_REQUEST,
        INVALID_PARAMS,
        HEADER_MISMATCH,
        MISSING_CLIENT_CAPABILITY,
        UNSUPPORTED_PROTOCOL_VERSION,
    }
)


def unsupported_version(requested: Any, request_id: Any) -> JsonRpcError:
    return JsonRpcError(
        UNSUPPORTED_PROTOCOL_VERSION,
        f"Unsupported protocol version {requested!r}: this server speaks {', '.join(SUPPORTED_VERSIONS)} "
        "(2025-* through initialize)",
        data={"supported": list(SUPPORTED_VERSIONS), "requested": requested},
        id=request_id,
    )


def _rejected(error: JsonRpcError) -> Reply:
    problem: Problem | None = None
    if error.code == METHOD_NOT_FOUND:
        problem = Problem.UNKNOWN_METHOD
    elif error.code in _CLIENT_ERRORS:
        problem = Problem.MALFORMED
    return Reply(error.response(), problem)


#: The tasks extension's methods (tasks/result and tasks/list are not part of it).
TASK_METHODS = frozenset({"tasks/get", "tasks/update", "tasks/cancel"})


def _needs_tasks(what: str, request_id: Any) -> JsonRpcError:
    required: dict[str, Any] = {"extensions": {TASKS_EXTENSION: {}}}
    return JsonRpcError(
        MISSING_CLIENT_CAPABILITY,
        f"{what}: declare the extension {TASKS_EXTENSION} in the request's client capabilities",
        data={"requiredCapabilities": required},
        id=request_id,
    )


def _without_execution(tool: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in tool.items() if key != "execution"} if "execution" in tool else tool


class StatelessEra:
    def __init__(
        self,
        methods: ToolMethods,
        identity: ServerIdentity,
        *,
        discover_ttl_ms: int,
        list_ttl_ms: int,
        cache_scope: str,
        tasks: TaskMethods,
        task_inline_seconds: float = 1.0,
        subscriptions: Subscriptions | None = None,
    ):
        self.methods = methods
        #: Holds `subscriptions/listen` streams; without it the method is not served.
        self.subscriptions = subscriptions
        self.tasks = tasks
        self.task_inline_seconds = task_inline_seconds
        self.identity = identity
        self.discover_ttl_ms = discover_ttl_ms
        self.list_ttl_ms = list_ttl_ms
        self.cache_scope = cache_scope
        self._server_meta = {SERVER_INFO: identity.info()}

    async def handle(self, inbound: Inbound, stream: RequestStream) -> Reply:
        payload = inbound.payload
        if not isinstance(payload, dict):
            return _rejected(
                JsonRpcError(INVALID_REQUEST, "Invalid Request: the body must be one JSON-RPC request object")
            )
        try:
            message = parse(payload)
        except JsonRpcError as exc:
            return _rejected(exc)
        if isinstance(message, Notification):
            # No client notification means anything over HTTP in this era (cancelling is closing
            # the response); one at a served version is acknowledged and dropped.
            if inbound.headers.protocol_version not in STATELESS_VERSIONS:
                return _rejected(unsupported_version(inbound.headers.protocol_version, None))
            return ACCEPTED
        if not isinstance(message, Request):
            return _rejected(
                JsonRpcError(
                    INVALID_REQUEST, "Invalid Request: clients do not send responses in protocol 2026-07-28"
                )
            )
        try:
            envelope = read_envelope(message.params, message.id)
            check_routing_headers(
                inbound.headers, message.method, message.params, envelope.protocol_version, message.id
            )
            if envelope.protocol_version not in STATELESS_VERSIONS:
                raise unsupported_version(envelope.protocol_version, message.id)
            result = await self._answer(message, envelope, inbound, stream)
        except JsonRpcError as exc:
            return refusal(exc.response()) or _rejected(exc)
        except StoreUnavailable as exc:
            return Reply(
                error_response(message.id, INTERNAL_ERROR, f"toolq cannot serve this right now: {exc}"),
                Problem.STORE_UNAVAILABLE,
            )
        except Exception as exc:
            # A bug, not bad input: answer in JSON-RPC and keep serving.
            log.exception("%s failed", message.method)
            return Reply(error_response(message.id, INTERNAL_ERROR, f"Internal error: {type(exc).__name__}"))
        return Reply(result_response(message.id, result))

    async def _answer(
        self, request: Request, envelope: Envelope, inbound: Inbound, stream: RequestStream
    ) -> dict[str, Any]:
        if request.method == "subscriptions/listen" and self.subscriptions is not None:
            closed = await listen(self.subscriptions, request, envelope, inbound.principal, stream)
            return self._complete(closed)
        if request.method == "tools/call":
            name, arguments = call_arguments(request)
            terms = await self.methods.tools.terms(name)
            if terms.mirrored:
                check_mirrored_parameters(terms.mirrored, arguments, inbound.headers, request.id)
            missing = terms.missing_capabilities(envelope.client_capabilities)
            if missing:
                raise JsonRpcError(
                    MISSING_CLIENT_CAPABILITY,
                    f"Tool {name!r} needs client capabilities this request does not declare: "
                    f"{', '.join(missing)}",
                    data={"requiredCapabilities": missing},
                    id=request.id,
                )
            notifier = CallNotifier(stream, envelope.progress_token, envelope.log_level)
            takes_tasks = envelope.declares_extension(TASKS_EXTENSION)
            if terms.task_mode == "always" and not takes_tasks:
                raise _needs_tasks(f"Tool {name!r} runs only as a task", request.id)
            if takes_tasks and terms.task_mode != "never":
                inline = 0.0 if terms.task_mode == "always" else self.task_inline_seconds
                owner = task_owner(inbound.principal, None)
                started = await self.methods.call_as_task(
                    request,
                    notifier,
                    TaskRequest(owner=owner, inline_seconds=inline, era="stateless"),
                    envelope.traceparent,
                    inbound.principal,
                )
                if isinstance(started, TaskRecord):
                    task = stateless_task(started, detailed=False)
                    return {"resultType": "task", **task, "_meta": self._server_meta}
                return self._complete(started)
            result = await self.methods.call(request, notifier, envelope.traceparent, inbound.principal)
            return self._complete(result)
        if request.method == "tools/list":
            page = await self.methods.list(request)
            # `execution.taskSupport` is the handshake era's: this era's Tool has no such field.
            page["tools"] = [_without_execution(tool) for tool in page["tools"]]
            return self._complete(page, ttlMs=self.list_ttl_ms, cacheScope=self.cache_scope)
        if request.method in TASK_METHODS:
            if not envelope.declares_extension(TASKS_EXTENSION):
                raise _needs_tasks(f"{request.method} is part of the tasks extension", request.id)
            owner = task_owner(inbound.principal, None)
            if request.method == "tasks/get":
                return self._complete(stateless_task(await self.tasks.get(request, owner), detailed=True))
            if request.method == "tasks/update":
                await self.tasks.get(request, owner)  # no toolq tool asks for input: nothing to update
                return self._complete({})
            await self.tasks.cancel(request, owner)  # a task that has ended stays as it ended
            return self._complete({})
        if request.method == "server/discover":
            return discover_result(self.identity, ttl_ms=self.discover_ttl_ms, cache_scope=self.cache_scope)
        hint = " (removed in 2026-07-28)" if request.method in REMOVED_METHODS else ""
        raise JsonRpcError(METHOD_NOT_FOUND, f"Method not found: {request.method}{hint}", id=request.id)

    def _complete(self, result: dict[str, Any], **extra: Any) -> dict[str, Any]:
        result["resultType"] = "complete"
        result.update(extra)
        meta = result.get("_meta")
        result["_meta"] = {**meta, **self._server_meta} if meta else self._server_meta
        return result
