"""The shapes of results: `CallToolResult` from a tool's outcome, and pages of `tools/list`."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from facade.protocol.tool_calls import ToolOutcome

__all__ = ["call_tool_result", "decode_cursor", "encode_cursor", "tools_page"]


def call_tool_result(outcome: ToolOutcome) -> dict[str, Any]:
    """An MCP CallToolResult (both eras; the stateless era adds resultType and _meta on top).

    Structured data travels as `structuredContent` and, for clients that read only content,
    as its JSON text, unless the tool returned content blocks of its own. A failure is a
    result with `isError: true` and a text that says why.
    """
    result: dict[str, Any]
    if outcome.ok:
        if outcome.content is not None:
            result = {"content": outcome.content}
        else:
            text = json.dumps(outcome.structured, ensure_ascii=False, separators=(", ", ": "))
            result = {"content": [{"type": "text", "text": text}]}
        if outcome.structured is not None:
            result["structuredContent"] = outcome.structured
        result["isError"] = False
    else:
        result = {
            "content": [{"type": "text", "text": outcome.message or "The tool failed."}],
            "isError": True,
        }
    if outcome.worker:
        result["_meta"] = {"toolq/worker": outcome.worker, "toolq/durationMs": outcome.duration_ms}
    return result


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


def tools_page(tools: list[dict[str, Any]], cursor: Any, page_size: int) -> dict[str, Any]:
    """One page of a name-sorted tool list; ValueError for a cursor that is not ours.

    The cursor names the last tool of the previous page, so a page stays right when tools come
    and go between requests.
    """
    start = 0
    if cursor is not None:
        after = decode_cursor(cursor)
        start = next((i for i, tool in enumerate(tools) if tool["name"] > after), len(tools))
    page = tools[start : start + page_size]
    result: dict[str, Any] = {"tools": page}
    if start + page_size < len(tools):
        result["nextCursor"] = encode_cursor(page[-1]["name"])
    return result
