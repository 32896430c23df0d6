"""The seed's own wire format on /mcp, kept for the scripts written against it:

    POST /mcp {"tool": "add", "params": {"a": 15, "b": 27}}
    -> 200 {"tool": "add", "result": {"a": 15, "b": 27, "sum": 42}}
    unknown tool -> 400 {"error": "Unknown tool"}

It is told apart from JSON-RPC by the absence of "jsonrpc".
"""

from __future__ import annotations

from typing import Any

from facade.calls import QueuedToolCalls
from facade.errors import Refused, UnknownTool

#: Status codes for the ways a call can fail, by ToolOutcome.kind.
FAILURE_STATUS = {
    "invalid_arguments": 400,
    "tool_error": 422,
    "unavailable": 503,
    "timeout": 504,
}


async def answer_seed(payload: dict[str, Any], calls: QueuedToolCalls) -> tuple[int, dict[str, Any]]:
    tool = payload.get("tool")
    params = payload.get("params", {})
    if not isinstance(tool, str) or not tool:
        return 400, {"error": "Unknown tool"}
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return 400, {"tool": tool, "error": '"params" must be an object'}
    try:
        outcome = await calls.call(tool, params)
    except UnknownTool:
        return 400, {"error": "Unknown tool"}
    except Refused as exc:
        status = 503 if exc.reason == "overloaded" else 429
        return status, {"tool": tool, "error": exc.message, "retry_after": exc.retry_after}
    if outcome.ok:
        # A tool that returns content blocks rather than data answers with those blocks.
        result = outcome.structured if outcome.structured is not None else {"content": outcome.content}
        return 200, {"tool": tool, "result": result}
    return FAILURE_STATUS.get(outcome.kind or "", 500), {"tool": tool, "error": outcome.message}
