"""A job's result (workers/contract.py) as the protocol core's ToolOutcome."""

from __future__ import annotations

from facade.protocol.tool_calls import ToolOutcome
from workers import contract

__all__ = ["outcome_of"]


def outcome_of(result: contract.CallResult) -> ToolOutcome:
    if result.get("ok"):
        structured = result.get("structured")
        content = result.get("content")
        return ToolOutcome(
            ok=True,
            structured=structured if structured is not None or content is not None else {},
            content=content,
            worker=result.get("worker"),
            duration_ms=result.get("duration_ms"),
            queued_ms=result.get("queued_ms"),
        )
    error = result.get("error") or {"kind": "tool_error", "message": "The tool failed."}
    return ToolOutcome(
        ok=False,
        message=error["message"],
        kind=error["kind"],
        worker=result.get("worker") or None,
        duration_ms=result.get("duration_ms"),
        queued_ms=result.get("queued_ms"),
    )
