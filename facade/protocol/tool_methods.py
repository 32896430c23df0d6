"""`tools/list` and `tools/call`, the same in both eras (each era adds its own framing)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from facade.errors import Refused, UnknownTool
from facade.protocol.jsonrpc import INVALID_PARAMS, OVERLOADED, RATE_LIMITED, JsonRpcError, Request
from facade.protocol.notifications import CallNotifier
from facade.protocol.results import call_tool_result, tools_page
from facade.protocol.tasks import TaskRecord, TaskRequest
from facade.protocol.tool_calls import ToolCalls

__all__ = ["ToolMethods", "call_arguments"]


def call_arguments(request: Request) -> tuple[str, dict[str, Any]]:
    """The tool name and arguments of a `tools/call`; -32602 if they are not a name and an object."""
    name = request.params.get("name")
    arguments = request.params.get("arguments")
    if not isinstance(name, str) or not name:
        raise JsonRpcError(INVALID_PARAMS, 'Invalid params: "name" must be a non-empty string', id=request.id)
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise JsonRpcError(INVALID_PARAMS, 'Invalid params: "arguments" must be an object', id=request.id)
    return name, arguments


class ToolMethods:
    def __init__(self, tools: ToolCalls, *, page_size: int):
        self.tools = tools
        self.page_size = page_size

    async def list(self, request: Request) -> dict[str, Any]:
        """A page of tools; raises StoreUnavailable, or JsonRpcError for a cursor not ours."""
        tools = await self.tools.list_tools()
        try:
            return tools_page(tools, request.params.get("cursor"), self.page_size)
        except ValueError as exc:
            raise JsonRpcError(INVALID_PARAMS, f"Invalid params: {exc}", id=request.id) from exc

    async def call(
        self,
        request: Request,
        notifier: CallNotifier,
        traceparent: str | None = None,
        principal: str | None = None,
    ) -> dict[str, Any]:
        """The call's CallToolResult; an unknown tool is -32602, a call turned away before it was
        queued -31001 (overloaded) or -31002 (rate limited), every other failure a result."""
        name, arguments = call_arguments(request)
        with _call_errors(request):
            outcome = await self.tools.call(name, arguments, notifier.options(traceparent, principal))
        return call_tool_result(outcome)

    async def call_as_task(
        self,
        request: Request,
        notifier: CallNotifier,
        task: TaskRequest,
        traceparent: str | None = None,
        principal: str | None = None,
    ) -> dict[str, Any] | TaskRecord:
        """`call`, for a call that may become a task: its CallToolResult, or the task."""
        name, arguments = call_arguments(request)
        with _call_errors(request):
            ended = await self.tools.call_as_task(
                name, arguments, notifier.options(traceparent, principal), task
            )
        return ended if isinstance(ended, TaskRecord) else call_tool_result(ended)


@contextmanager
def _call_errors(request: Request) -> Iterator[None]:
    """An unknown tool as -32602; a call turned away before it was queued as -31001 or -31002."""
    try:
        yield
    except UnknownTool as exc:
        raise JsonRpcError(INVALID_PARAMS, f"Unknown tool: {exc.name}", id=request.id) from exc
    except Refused as exc:
        code = OVERLOADED if exc.reason == "overloaded" else RATE_LIMITED
        message = f"{exc.message}; retry after {exc.retry_after} s"
        raise JsonRpcError(code, message, data={"retryAfterSeconds": exc.retry_after}, id=request.id) from exc
