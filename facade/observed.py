"""What the facade observes of one request, for its log line, its metrics and its trace.

The HTTP edge opens a record for each MCP (or seed) request and closes it when the answer is
ready; the layers in between (the calls, the queue client) fill in what only they know (the
tool, the job's id, how the call ended, the worker's queue wait and run time) through a
context variable, so none of them has to pass it along or know who reads it.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass, field
from typing import Any

#: How a call ended, as the metrics and logs name it: "ok", a failure's kind (tool_error,
#: invalid_arguments, timeout, unavailable, cancelled), a refusal (overloaded, rate_limited),
#: "unknown_tool", or "task" (it became an MCP task and goes on after the request).
Outcome = str


@dataclass
class Observed:
    """One request, filled in while it is served."""

    request_id: str
    #: "handshake", "stateless" or "seed" (the seed's own wire format).
    era: str
    principal: str | None = None
    method: str | None = None
    jsonrpc_id: str | None = None
    protocol_version: str | None = None
    tool: str | None = None
    job_id: str | None = None
    outcome: Outcome | None = None
    #: OpenTelemetry's error.type: the JSON-RPC error code, or "tool_error" for a result with
    #: isError; None when the request succeeded.
    error_type: str | None = None
    #: What the worker reported: the job's wait in the queue and the tool's run time.
    queue_wait_ms: float | None = None
    run_ms: float | None = None
    #: The W3C trace context the job carries (the facade's span, when tracing is on).
    traceparent: str | None = None
    #: The request's server span, when tracing is on (workers/tracing.py).
    span: Any = None
    started: float = field(default_factory=time.perf_counter)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


_current: contextvars.ContextVar[Observed | None] = contextvars.ContextVar("toolq_observed", default=None)


def current() -> Observed | None:
    """The record of the request being served here, if any (None outside a request)."""
    return _current.get()


def observe(record: Observed) -> contextvars.Token[Observed | None]:
    """Make `record` the current request's (until `forget`)."""
    return _current.set(record)


def forget(token: contextvars.Token[Observed | None]) -> None:
    _current.reset(token)
