"""One tool call from the facade's point of view: look up, validate, queue, wait, explain.

Both wire formats (MCP `tools/call` and the seed's `{"tool", "params"}`) go through here, so
they validate and fail the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from facade.catalog import Catalog
from facade.queue_client import CallTimedOut, ProgressCallback, QueueClient, QueueUnavailable
from workers import contract


class UnknownTool(Exception):
    def __init__(self, name: str):
        super().__init__(f"Unknown tool: {name!r}")
        self.name = name


@dataclass(frozen=True)
class CallOutcome:
    ok: bool
    structured: dict[str, Any] | None = None
    message: str | None = None
    #: Why it failed, for callers that map failures to status codes.
    kind: str | None = None
    worker: str | None = None
    duration_ms: float | None = None

    def tool_result(self) -> dict[str, Any]:
        """As an MCP CallToolResult."""
        result: dict[str, Any]
        if self.ok:
            result = {
                "content": [{"type": "text", "text": json.dumps(self.structured, ensure_ascii=False)}],
                "structuredContent": self.structured,
                "isError": False,
            }
        else:
            result = {"content": [{"type": "text", "text": self.message}], "isError": True}
        if self.worker:
            result["_meta"] = {"toolq/worker": self.worker, "toolq/durationMs": self.duration_ms}
        return result


class ToolCalls:
    def __init__(
        self,
        catalog: Catalog,
        queue: QueueClient,
        *,
        max_call_seconds: float,
        grace_seconds: float,
    ) -> None:
        self.catalog = catalog
        self.queue = queue
        self._max_call_seconds = max_call_seconds
        self._grace_seconds = grace_seconds

    async def list_tools(self) -> list[dict[str, Any]]:
        return (await self.catalog.snapshot()).listed()

    async def call(
        self,
        name: str,
        arguments: dict[str, Any],
        *,
        on_progress: ProgressCallback | None = None,
    ) -> CallOutcome:
        """Raises UnknownTool for a name no worker ever served; every other failure is an outcome."""
        try:
            snapshot = await self.catalog.snapshot()
        except (RedisError, OSError) as exc:
            return _failed(
                "unavailable", f"toolq cannot reach its queue (Redis) right now: {exc}. Try again shortly."
            )
        entry = snapshot.tools.get(name)
        if entry is None:
            if name in snapshot.orphaned:
                return _failed(
                    "unavailable",
                    f"Tool {name!r} has no live worker right now; start one "
                    f"(python -m workers --tools {name}) or try again shortly.",
                )
            raise UnknownTool(name)
        problems = entry.argument_errors(arguments)
        if problems:
            return _failed(
                "invalid_arguments", f"Invalid arguments for tool {name!r}: " + "; ".join(problems)
            )
        timeout = min(entry.timeout + self._grace_seconds, self._max_call_seconds)
        try:
            result = await self.queue.call(
                entry.pick_queue(), name, arguments, timeout=timeout, on_progress=on_progress
            )
        except QueueUnavailable as exc:
            return _failed(
                "unavailable", f"toolq cannot reach its queue right now ({exc}). Try again shortly."
            )
        except CallTimedOut:
            return _failed(
                "timeout",
                f"Tool {name!r} did not answer within {timeout:g} s (workers busy or unreachable); "
                "the call was cancelled.",
            )
        return outcome_of(result)


def outcome_of(result: contract.CallResult) -> CallOutcome:
    if result.get("ok"):
        return CallOutcome(
            ok=True,
            structured=result.get("structured") or {},
            worker=result.get("worker"),
            duration_ms=result.get("duration_ms"),
        )
    error = result.get("error") or {"kind": "tool_error", "message": "The tool failed."}
    return CallOutcome(
        ok=False,
        message=error["message"],
        kind=error["kind"],
        worker=result.get("worker") or None,
        duration_ms=result.get("duration_ms"),
    )


def _failed(kind: str, message: str) -> CallOutcome:
    return CallOutcome(ok=False, message=message, kind=kind)
