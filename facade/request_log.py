"""What becomes of a request once it is answered: its metrics, its log line and its span.

One line per tool call at INFO (TOOLQ_LOG_CALLS; other methods at DEBUG): the request's id (a
proxy's X-Request-Id, or one made up), its JSON-RPC id, era, method, tool, principal, the job's
id (the worker logs the same id with the job), how it ended, and its time split: queue wait
and run (the worker's figures) and the total here. The trace id joins the line to the trace.
"""

from __future__ import annotations

import logging
from typing import Any

from facade.metrics import FacadeMetrics
from facade.observed import Observed
from facade.protocol.envelope import valid_traceparent
from workers import tracing
from workers.logs import fields, trace_id_of

log = logging.getLogger("toolq.calls")


def _end_span_of(record: Observed) -> None:
    span = record.span
    if record.job_id:
        span.set_attribute("toolq.job_id", record.job_id)
    if record.outcome:
        span.set_attribute("toolq.outcome", record.outcome)
    if record.error_type is not None:
        span.set_attribute("error.type", record.error_type)
        if record.error_type.lstrip("-").isdigit():
            span.set_attribute("rpc.response.status_code", record.error_type)
        tracing.error_status(span, record.outcome or record.error_type)
    span.end()


class RequestLog:
    def __init__(self, metrics: FacadeMetrics | None = None, *, log_calls: bool = True) -> None:
        self.metrics = metrics
        self.log_calls = log_calls

    def begin(self, record: Observed, meta: Any, http_traceparent: str | None) -> None:
        """Open the request's server span (when tracing is on), parented by the `traceparent` in
        its `params._meta` (SEP-414) or else the HTTP header's, linked to the HTTP one when both
        are there; the job carries the span's own context (without tracing: the request's)."""
        meta = meta if isinstance(meta, dict) else {}
        from_meta = valid_traceparent(meta.get("traceparent"))
        http_traceparent = valid_traceparent(http_traceparent)
        tracestate = meta.get("tracestate") if isinstance(meta.get("tracestate"), str) else None
        record.traceparent = from_meta or http_traceparent  # carried into the job as it came
        tracer = tracing.tracer()
        if tracer is None or record.method is None:
            return
        parent = tracing.parent_context(from_meta, tracestate) or tracing.parent_context(http_traceparent)
        links = tracing.links_to(http_traceparent) if from_meta and http_traceparent else None
        name = f"{record.method} {record.tool}" if record.tool else record.method
        attributes: dict[str, Any] = {
            "mcp.method.name": record.method,
            "network.transport": "tcp",
            "network.protocol.name": "http",
            "toolq.request_id": record.request_id,
        }
        if record.tool:
            attributes["gen_ai.tool.name"] = record.tool
            attributes["gen_ai.operation.name"] = "execute_tool"
        if record.jsonrpc_id is not None:
            attributes["jsonrpc.request.id"] = record.jsonrpc_id
        if record.protocol_version:
            attributes["mcp.protocol.version"] = record.protocol_version
        record.span = tracing.server_span(tracer, name, parent, attributes, links)
        record.traceparent = tracing.traceparent_of(record.span)

    def done(self, record: Observed) -> None:
        if record.span is not None:
            _end_span_of(record)
        if self.metrics is not None:
            self.metrics.request_done(record)
        if not self.log_calls or record.method is None:
            return
        level = logging.INFO if record.method == "tools/call" else logging.DEBUG
        if not log.isEnabledFor(level):
            return
        outcome = record.outcome or ("ok" if record.error_type is None else f"error {record.error_type}")
        total_ms = round(record.elapsed_ms(), 3)
        log.log(
            level,
            "%s %s %s %.2f ms",
            record.method,
            record.tool or "-",
            outcome,
            total_ms,
            extra=fields(
                event="request",
                request_id=record.request_id,
                jsonrpc_id=record.jsonrpc_id,
                era=record.era,
                method=record.method,
                tool=record.tool,
                principal=record.principal,
                job_id=record.job_id,
                outcome=outcome,
                error_type=record.error_type,
                queue_wait_ms=record.queue_wait_ms,
                run_ms=record.run_ms,
                total_ms=total_ms,
                trace_id=trace_id_of(record.traceparent),
            ),
        )
