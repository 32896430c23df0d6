"""The handshake era (2025-03-26 .. 2025-11-25): `initialize`, sessions, and the requests of one.

A session is a record in a shared store, so any facade process serves any session; a request
in flight is known to the process serving it, which is where `notifications/cancelled` (from
whichever process receives it) must arrive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from facade.errors import StoreUnavailable
from facade.protocol.envelope import progress_token, traceparent
from facade.protocol.exchange import ACCEPTED, Inbound, Problem, Reply, refusal
from facade.protocol.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    REQUEST_CANCELLED,
    SESSION_NOT_FOUND,
    JsonRpcError,
    Message,
    Notification,
    Request,
    RequestId,
    Response,
    error_response,
    parse,
    result_response,
)
from facade.protocol.notifications import CallNotifier, RequestStream, cancelled_request_id
from facade.protocol.results import call_tool_result
from facade.protocol.server_info import ServerIdentity, initialize_result
from facade.protocol.task_methods import TaskMethods
from facade.protocol.tasks import (
    RELATED_TASK,
    TaskRecord,
    TaskRequest,
    handshake_task,
    task_error,
    task_owner,
)
from facade.protocol.tool_calls import LOG_LEVELS, ToolOutcome
from facade.protocol.tool_methods import ToolMethods, call_arguments
from facade.protocol.versions import BATCH_VERSIONS, negotiate

__all__ = ["DEFAULT_LOG_LEVEL", "HandshakeEra", "InflightRequests", "Session", "SessionStore"]

log = logging.getLogger("toolq.protocol")

SESSION_HEADER = "Mcp-Session-Id"
#: The log level of a session that never sent `logging/setLevel`.
DEFAULT_LOG_LEVEL = "info"


@dataclass(frozen=True)
class Session:
    id: str
    protocol_version: str
    client_info: dict[str, Any] = field(default_factory=dict)
    #: What the client declared in `initialize`.
    client_capabilities: dict[str, Any] = field(default_factory=dict)
    #: Set by `logging/setLevel`; None until then.
    log_level: str | None = None
    #: The principal that opened it (its token's name): no other may use or end it.
    principal: str | None = None


class SessionStore(Protocol):
    """Where sessions live; every method raises StoreUnavailable when the store is unreachable."""

    async def create(
        self,
        protocol_version: str,
        client_info: dict[str, Any],
        client_capabilities: dict[str, Any],
        principal: str | None,
    ) -> Session: ...

    async def get(self, session_id: str) -> Session | None: ...

    async def set_log_level(self, session: Session, level: str) -> None: ...

    async def delete(self, session_id: str) -> bool: ...


class InflightRequests(Protocol):
    """The requests in flight, by session and request id, so that a cancellation finds them."""

    def tracking(
        self, session_id: str, request_id: RequestId, task: asyncio.Future[Any]
    ) -> AbstractContextManager[None]: ...

    def cancel(self, session_id: str, request_id: RequestId) -> None:
        """Cancel the request, here or in whichever facade process serves it."""
        ...

    def cancel_session(self, session_id: str) -> None: ...


def _request_id(payload: Any) -> RequestId | None:
    value = payload.get("id") if isinstance(payload, dict) else None
    return value if isinstance(value, str | int) and not isinstance(value, bool) else None


class HandshakeEra:
    def __init__(
        self,
        methods: ToolMethods,
        sessions: SessionStore,
        inflight: InflightRequests,
        identity: ServerIdentity,
        tasks: TaskMethods,
    ):
        self.methods = methods
        self.sessions = sessions
        self.inflight = inflight
        self.identity = identity
        self.tasks = tasks

    async def handle(self, inbound: Inbound, stream: RequestStream) -> Reply:
        if isinstance(inbound.payload, list):
            return await self._batch(inbound, stream)
        try:
            message = parse(inbound.payload)
        except JsonRpcError as exc:
            return Reply(exc.response(), Problem.MALFORMED)
        if isinstance(message, Request) and message.method == "initialize":
            return await self._initialize(message, inbound.principal)
        found = await self._session(inbound.session_id, _request_id(inbound.payload), inbound.principal)
        if isinstance(found, Reply):
            return found
        if isinstance(message, Request):
            response = await self._request(found, message, stream)
            return refusal(response) or Reply(response)
        self._accept(found, message)
        return ACCEPTED

    async def end_session(self, session_id: str | None, principal: str | None = None) -> Reply:
        """DELETE: forget the session and stop its requests; a plain success has no message."""
        found = await self._session(session_id, None, principal)
        if isinstance(found, Reply):
            return found
        try:
            deleted = await self.sessions.delete(found.id)
        except StoreUnavailable as exc:
            return _store_unavailable(None, exc)
        if not deleted:
            return Reply(
                error_response(None, SESSION_NOT_FOUND, "Session not found"), Problem.SESSION_NOT_FOUND
            )
        self.inflight.cancel_session(found.id)
        return ACCEPTED

    async def session(self, session_id: str | None, principal: str | None = None) -> Session | Reply:
        """The live session of this principal (for its GET stream), or the Reply refusing it."""
        return await self._session(session_id, None, principal)

    # --- parts ----------------------------------------------------------------------------------

    async def _initialize(self, request: Request, principal: str | None) -> Reply:
        version = negotiate(request.params.get("protocolVersion"))
        client_info = request.params.get("clientInfo")
        capabilities = request.params.get("capabilities")
        try:
            session = await self.sessions.create(
                version,
                client_info if isinstance(client_info, dict) else {},
                capabilities if isinstance(capabilities, dict) else {},
                principal,
            )
        except StoreUnavailable as exc:
            return _store_unavailable(request.id, exc)
        result = initialize_result(version, self.identity)
        return Reply(result_response(request.id, result), session_id=session.id)

    async def _session(
        self, session_id: str | None, request_id: RequestId | None, principal: str | None
    ) -> Session | Reply:
        """The live session of this principal; a session of another principal is as good as
        unknown (404), so an id that leaked is of no use with another token."""
        if not session_id:
            return Reply(
                error_response(
                    request_id,
                    INVALID_REQUEST,
                    f"Bad Request: the {SESSION_HEADER} header is required (initialize first)",
                ),
                Problem.SESSION_REQUIRED,
            )
        try:
            session = await self.sessions.get(session_id)
        except StoreUnavailable as exc:
            return _store_unavailable(request_id, exc)
        if session is None or session.principal != principal:
            return Reply(
                error_response(request_id, SESSION_NOT_FOUND, "Session not found: initialize a new session"),
                Problem.SESSION_NOT_FOUND,
            )
        return session

    def _accept(self, session: Session, message: Notification | Response) -> None:
        if isinstance(message, Notification) and message.method == "notifications/cancelled":
            request_id = cancelled_request_id(message.params)
            if request_id is not None:
                self.inflight.cancel(session.id, request_id)

    async def _request(self, session: Session, request: Request, stream: RequestStream) -> dict[str, Any]:
        """Answer a request, as a task that `notifications/cancelled` can stop (-32800)."""
        task = asyncio.ensure_future(self._answer(session, request, stream))
        with self.inflight.tracking(session.id, request.id, task):
            try:
                return await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the client went away: nothing more to send
                return error_response(request.id, REQUEST_CANCELLED, "Request cancelled")
            except Exception as exc:
                # A bug, not bad input: answer in JSON-RPC and keep serving.
                log.exception("%s failed", request.method)
                return error_response(request.id, INTERNAL_ERROR, f"Internal error: {type(exc).__name__}")

    async def _answer(self, session: Session, request: Request, stream: RequestStream) -> dict[str, Any]:
        try:
            result: dict[str, Any]
            if request.method == "tools/call":
                result = await self._call(session, request, stream)
            elif request.method == "tools/list":
                result = await self.methods.list(request)
            elif request.method == "ping":
                result = {}
            elif request.method == "logging/setLevel":
                result = await self._set_level(session, request)
            elif request.method in TASK_METHODS:
                result = await self._task_method(session, request)
            else:
                return error_response(request.id, METHOD_NOT_FOUND, f"Method not found: {request.method}")
        except JsonRpcError as exc:
            return exc.response()
        except StoreUnavailable as exc:
            return error_response(request.id, INTERNAL_ERROR, f"toolq cannot serve this right now: {exc}")
        return result_response(request.id, result)

    async def _call(self, session: Session, request: Request, stream: RequestStream) -> dict[str, Any]:
        name, _ = call_arguments(request)
        terms = await self.methods.tools.terms(name)
        missing = terms.missing_capabilities(session.client_capabilities)
        if missing:
            return call_tool_result(
                ToolOutcome(
                    ok=False,
                    message=f"Tool {name!r} needs client capabilities this client did not declare in "
                    f"initialize: {', '.join(missing)}.",
                )
            )
        task = _task_parameter(request)
        if task is None and terms.task_mode == "always":
            raise JsonRpcError(
                METHOD_NOT_FOUND,
                f"Tool {name!r} runs only as a task: call it with params.task",
                id=request.id,
            )
        if task is not None and terms.task_mode == "never":
            raise JsonRpcError(METHOD_NOT_FOUND, f"Tool {name!r} does not run as a task", id=request.id)
        if task is not None:
            # A task's caller hears nothing until it asks: no progress or log stream.
            started = await self.methods.call_as_task(
                request,
                CallNotifier(stream, None, None),
                TaskRequest(
                    owner=task_owner(session.principal, session.id),
                    ttl_ms=task.get("ttl"),
                    era="handshake",
                    session_id=session.id,
                ),
                traceparent(request.params),
                session.principal,
            )
            if isinstance(started, TaskRecord):
                return {"task": handshake_task(started)}
            return started
        notifier = CallNotifier(
            stream, progress_token(request.params), session.log_level or DEFAULT_LOG_LEVEL
        )
        return await self.methods.call(request, notifier, traceparent(request.params), session.principal)

    async def _task_method(self, session: Session, request: Request) -> dict[str, Any]:
        owner = task_owner(session.principal, session.id)
        if request.method == "tasks/get":
            return handshake_task(await self.tasks.get(request, owner))
        if request.method == "tasks/result":
            record = await self.tasks.wait(request, owner)
            related = {RELATED_TASK: {"taskId": record.task_id}}
            if record.status == "completed" and record.outcome is not None:
                result = call_tool_result(record.outcome)
                result["_meta"] = {**result.get("_meta", {}), **related}
                return result
            if record.status == "failed":
                error = task_error(record)
                raise JsonRpcError(error["code"], error["message"], data=error.get("data"), id=request.id)
            raise JsonRpcError(REQUEST_CANCELLED, "The task was cancelled", data=related, id=request.id)
        if request.method == "tasks/list":
            records, cursor = await self.tasks.list(request, owner)
            page: dict[str, Any] = {"tasks": [handshake_task(record) for record in records]}
            if cursor is not None:
                page["nextCursor"] = cursor
            return page
        record, had_ended = await self.tasks.cancel(request, owner)
        if had_ended:
            raise JsonRpcError(
                INVALID_PARAMS,
                f"Invalid params: task {record.task_id!r} has ended ({record.status}): not cancellable",
                id=request.id,
            )
        return handshake_task(record)

    async def _set_level(self, session: Session, request: Request) -> dict[str, Any]:
        level = request.params.get("level")
        if level not in LOG_LEVELS:
            raise JsonRpcError(
                INVALID_PARAMS,
                f'Invalid params: "level" must be one of {", ".join(LOG_LEVELS)}, not {level!r}',
                id=request.id,
            )
        await self.sessions.set_log_level(session, level)
        return {}

    async def _batch(self, inbound: Inbound, stream: RequestStream) -> Reply:
        """A JSON-RPC batch, which only 2025-03-26 allowed: answered as one array of responses."""
        found = await self._session(inbound.session_id, None, inbound.principal)
        if isinstance(found, Reply):
            return found
        if found.protocol_version not in BATCH_VERSIONS:
            return _malformed(
                f"Invalid Request: JSON-RPC batches are not part of protocol {found.protocol_version} "
                "(they were removed in 2025-06-18); send one message per POST"
            )
        if not inbound.payload:
            return _malformed("Invalid Request: an empty batch")
        answers: list[Awaitable[dict[str, Any]] | dict[str, Any]] = []
        for item in inbound.payload:
            try:
                message: Message = parse(item)
            except JsonRpcError as exc:
                answers.append(exc.response())
                continue
            if isinstance(message, Request):
                if message.method == "initialize":
                    answers.append(
                        error_response(
                            message.id, INVALID_REQUEST, "Invalid Request: initialize cannot be batched"
                        )
                    )
                else:
                    answers.append(self._request(found, message, stream))
            else:
                self._accept(found, message)
        if not answers:
            return ACCEPTED
        pending = [answer for answer in answers if not isinstance(answer, dict)]
        done = iter(await asyncio.gather(*pending))
        return Reply([answer if isinstance(answer, dict) else next(done) for answer in answers])


TASK_METHODS = frozenset({"tasks/get", "tasks/result", "tasks/list", "tasks/cancel"})


def _task_parameter(request: Request) -> dict[str, Any] | None:
    """`params.task` of a tools/call ({ttl?}); -32602 if it is there but not that."""
    task = request.params.get("task")
    if task is None:
        return None
    ttl = task.get("ttl") if isinstance(task, dict) else None
    if not isinstance(task, dict) or (
        ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0)
    ):
        raise JsonRpcError(
            INVALID_PARAMS,
            'Invalid params: "task" must be an object with an optional "ttl" in ms',
            id=request.id,
        )
    return task


def _malformed(message: str) -> Reply:
    return Reply(error_response(None, INVALID_REQUEST, message), Problem.MALFORMED)


def _store_unavailable(request_id: RequestId | None, exc: StoreUnavailable) -> Reply:
    return Reply(
        error_response(request_id, INTERNAL_ERROR, f"toolq cannot serve this right now: {exc}"),
        Problem.STORE_UNAVAILABLE,
    )
