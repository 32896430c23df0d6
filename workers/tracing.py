"""OpenTelemetry traces for the facade and the workers (the optional `otel` extra).

A trace of one tool call: the facade's server span for the MCP request (OpenTelemetry's MCP
conventions: `tools/call add`, kind SERVER, parented by a `traceparent` in the request's
`params._meta` (SEP-414) or else the HTTP header), and under it, from the worker that ran the
job, the job's wait in the queue (`toolq.queue_wait`, from its enqueue to its claim) and its
run (`execute_tool add`); the rest of the server span is the delivery. The job carries the
server span's `traceparent` across the queue.

Tracing is on when the otel extra is installed and an exporter is configured the standard way:
OTEL_TRACES_EXPORTER (otlp, console) or OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT; OTLP over HTTP
with protobuf, its endpoint, headers and batching from the standard OTEL_* variables;
OTEL_SDK_DISABLED=true turns it off. Without it, nothing here costs anything: `tracer()` is None.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("toolq.tracing")

try:
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the otel extra is not installed
    trace = None  # type: ignore[assignment]

Tracer = Any


class _Exporting:
    """This process's tracer, once setup() started exporting."""

    tracer: Tracer | None = None


def configured(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def setup(service_name: str, environ: Mapping[str, str] = os.environ) -> Tracer | None:
    """Start exporting spans, if the environment asks for it; the tracer, or None."""
    if not configured(environ):
        return None
    if trace is None:
        log.warning("OTEL_* asks for traces, but the otel extra is not installed (pip install 'toolq[otel]')")
        return None
    exporter: SpanExporter
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415 - only when on
            OTLPSpanExporter,
        )

        exporter = OTLPSpanExporter()
    name = environ.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _Exporting.tracer = trace.get_tracer("toolq")
    log.info("traces exported (%s) as service %s", type(exporter).__name__, name)
    return _Exporting.tracer


def tracer() -> Tracer | None:
    """The tracer, when traces are exported."""
    return _Exporting.tracer


def shutdown() -> None:
    """Export what is left (at exit)."""
    if _Exporting.tracer is not None and trace is not None:
        provider = trace.get_tracer_provider()
        if hasattr(provider, "shutdown"):
            provider.shutdown()


def parent_context(traceparent: str | None, tracestate: str | None = None) -> Any:
    """An OpenTelemetry context whose parent is the given W3C trace context (None: the root)."""
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return TraceContextTextMapPropagator().extract(carrier)


def traceparent_of(span: Any) -> str | None:
    """The W3C traceparent of a span (to carry into a job)."""
    context = span.get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def links_to(traceparent: str | None) -> list[Any] | None:
    """A span link to the span of a W3C traceparent (the HTTP request's, when the MCP request
    names its own parent)."""
    context = parent_context(traceparent)
    if context is None:
        return None
    linked = trace.get_current_span(context).get_span_context()
    return [trace.Link(linked)] if linked.is_valid else None


def server_span(tracer: Tracer, name: str, parent: Any, attributes: dict[str, Any], links: Any = None) -> Any:
    """A started SERVER span (end it with .end())."""
    return tracer.start_span(
        name, context=parent, kind=trace.SpanKind.SERVER, attributes=attributes, links=links
    )


def job_spans(
    tracer: Tracer,
    traceparent: str | None,
    tool: str,
    attributes: dict[str, Any],
    *,
    enqueued_ms: int,
    claimed_ms: int,
    started_ms: float,
    ran_ms: float,
    failed: str | None,
) -> None:
    """A job's two spans, after the fact, under the facade's span: its wait in the queue (by
    Redis's clock) and its run (by the worker's)."""
    parent = parent_context(traceparent)
    wait = tracer.start_span(
        "toolq.queue_wait",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        attributes={**attributes, "gen_ai.tool.name": tool},
        start_time=enqueued_ms * 1_000_000,
    )
    wait.end(end_time=max(enqueued_ms, claimed_ms) * 1_000_000)
    start_ns = int(started_ms * 1_000_000)
    run = tracer.start_span(
        f"execute_tool {tool}",
        context=parent,
        kind=trace.SpanKind.INTERNAL,
        attributes={**attributes, "gen_ai.tool.name": tool, "gen_ai.operation.name": "execute_tool"},
        start_time=start_ns,
    )
    if failed is not None:
        run.set_attribute("error.type", failed)
        error_status(run, failed)
    run.end(end_time=start_ns + int(ran_ms * 1_000_000))


def error_status(span: Any, description: str) -> None:
    span.set_status(trace.Status(trace.StatusCode.ERROR, description))
