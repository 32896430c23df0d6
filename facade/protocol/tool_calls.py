"""What the protocol core needs from the service that runs tools, and the values they exchange.

The core calls tools through the `ToolCalls` interface and nothing else: facade/calls.py
implements it on the catalog and the queue; the core's unit tests implement it in memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from facade.protocol.headers import MirroredParameter

if TYPE_CHECKING:
    from facade.protocol.tasks import TaskRecord, TaskRequest

__all__ = [
    "LOG_LEVELS",
    "CallOptions",
    "EventListener",
    "FailureKind",
    "LogEntry",
    "ProgressUpdate",
    "ToolCalls",
    "ToolEvent",
    "ToolOutcome",
    "ToolTerms",
    "log_level_at_least",
]

#: MCP's log levels (RFC 5424 severities), least severe first. The workers' contract has the
#: same list (the protocol core imports nothing of theirs); a test keeps the two equal.
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
_SEVERITY = {level: rank for rank, level in enumerate(LOG_LEVELS)}


def log_level_at_least(level: str, minimum: str) -> bool:
    """Whether a message at `level` passes a caller's `minimum` (unknown levels pass nothing)."""
    return level in _SEVERITY and _SEVERITY[level] >= _SEVERITY.get(minimum, len(LOG_LEVELS))


FailureKind = Literal["cancelled", "invalid_arguments", "tool_error", "timeout", "unavailable"]


@dataclass(frozen=True)
class ProgressUpdate:
    progress: float
    total: float | None = None
    message: str | None = None


@dataclass(frozen=True)
class LogEntry:
    level: str
    data: Any
    logger: str | None = None


ToolEvent = ProgressUpdate | LogEntry
EventListener = Callable[[ToolEvent], Awaitable[None]]


@dataclass(frozen=True)
class CallOptions:
    """What the caller can receive while the tool runs, and where the call came from."""

    #: Receives progress and log entries as they arrive; None when the caller can take neither.
    listener: EventListener | None = None
    #: The caller wants progress updates (it sent a progress token and can take a stream).
    progress: bool = False
    #: The least severe log level the caller wants; None: no log entries at all.
    log_level: str | None = None
    #: W3C trace context of the request, carried into the job.
    traceparent: str | None = None
    #: Who asks (the token's name; None without authentication), for per-principal limits.
    principal: str | None = None


@dataclass(frozen=True)
class ToolOutcome:
    """How one call ended: a result (structured data and/or content blocks) or a failure."""

    ok: bool
    #: The result as data (MCP structuredContent): present when the tool declares an output schema.
    structured: Any = None
    #: MCP content blocks; None means "the structured data as JSON text".
    content: list[dict[str, Any]] | None = None
    #: Why it failed, in words a model can act on.
    message: str | None = None
    kind: FailureKind | None = None
    worker: str | None = None
    duration_ms: float | None = None
    #: How long the job waited in the queue before a worker took it.
    queued_ms: float | None = None


@dataclass(frozen=True)
class ToolTerms:
    """What the protocol checks about a call before it is made."""

    #: Arguments a stateless-era client mirrors into `Mcp-Param-*` headers.
    mirrored: tuple[MirroredParameter, ...] = ()
    #: Client capabilities the call needs, as a ClientCapabilities object.
    client_capabilities: dict[str, Any] = field(default_factory=dict)
    #: Whether a call may become a task: "optional", "always" or "never".
    task_mode: str = "optional"

    def missing_capabilities(self, declared: dict[str, Any]) -> dict[str, Any]:
        """The part of `client_capabilities` that `declared` lacks (empty: nothing missing)."""
        return _missing(self.client_capabilities, declared)


def _missing(required: dict[str, Any], declared: Any) -> dict[str, Any]:
    missing: dict[str, Any] = {}
    for key, value in required.items():
        if not isinstance(declared, dict) or key not in declared:
            missing[key] = value
        elif isinstance(value, dict) and value and key == "extensions":
            # Extensions are declared one by one: each named one must be there.
            nested = _missing(value, declared[key])
            if nested:
                missing[key] = nested
    return missing


class ToolCalls(Protocol):
    async def list_tools(self) -> list[dict[str, Any]]:
        """The MCP Tool objects with a live worker, sorted by name; raises StoreUnavailable."""
        ...

    async def terms(self, name: str) -> ToolTerms:
        """What to check before calling the tool (no terms for a tool not known, or no store)."""
        ...

    async def call(self, name: str, arguments: dict[str, Any], options: CallOptions) -> ToolOutcome:
        """Run one call; raises UnknownTool for a name no worker ever served, and nothing else."""
        ...

    async def call_as_task(
        self, name: str, arguments: dict[str, Any], options: CallOptions, request: TaskRequest
    ) -> ToolOutcome | TaskRecord:
        """Start a call that may become a task: its outcome if it ended within the request's
        inline window, else the task (durably created: any replica finds it) that carries it on.
        Raises UnknownTool, Refused, and StoreUnavailable when the task cannot be kept."""
        ...
