"""One trace across the queue: the facade's server span for an MCP tools/call, parented by the
traceparent the client put in params._meta, and under it the worker's spans of the job (its
wait in the queue, its run), exported by real facade and worker processes over OTLP/HTTP to a
real receiver."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from otlp_receiver import OtlpReceiver, ReceivedSpan
from real_processes import running_stack

pytestmark = pytest.mark.redis_server

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
HTTP_SPAN = "b7ad6b7169203331"
STATELESS = "2026-07-28"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": STATELESS,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "trace-tests", "version": "1"},
}


def exporting_to(receiver: OtlpReceiver) -> dict[str, str]:
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }


async def call_add(url: str, meta_traceparent: str | None, http_traceparent: str | None = None) -> dict:
    params = {"name": "add", "arguments": {"a": 20, "b": 22}, "_meta": dict(ENVELOPE)}
    if meta_traceparent:
        params["_meta"]["traceparent"] = meta_traceparent
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": STATELESS,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "add",
    }
    if http_traceparent:
        headers["traceparent"] = http_traceparent
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=message, headers=headers) as response,
    ):
        body = await response.json()
    assert body["result"]["structuredContent"]["sum"] == 42, body
    return body


async def spans_of_one_call(
    tmp_path: Path, meta_traceparent: str | None, http_traceparent: str | None
) -> list[ReceivedSpan]:
    """A facade and a worker exporting to a receiver, one call of `add`: the spans received
    once the facade's and the worker's have all arrived."""
    names = {"tools/call add", "execute_tool add", "toolq.queue_wait"}
    receiver = OtlpReceiver()
    await receiver.start()
    try:
        with running_stack(tmp_path, **exporting_to(receiver)) as stack:
            _, url = stack.facade()
            stack.worker("traced", "--tools", "add")
            await asyncio.to_thread(stack.wait_for_workers, "traced")
            await call_add(url, meta_traceparent, http_traceparent)
            return await receiver.wait_for(lambda got: names <= {span.name for span in got})
    finally:
        await receiver.stop()


def one(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    (found,) = [span for span in spans if span.name == name]
    return found


async def test_one_trace_spans_the_facade_and_the_worker_across_the_queue(tmp_path: Path):
    spans = await spans_of_one_call(
        tmp_path, f"00-{TRACE_ID}-{CLIENT_SPAN}-01", f"00-{'a' * 32}-{HTTP_SPAN}-01"
    )
    server, run, wait = (
        one(spans, "tools/call add"),
        one(spans, "execute_tool add"),
        one(spans, "toolq.queue_wait"),
    )
    # The facade's span continues the client's trace (params._meta), linked to the HTTP request's.
    assert (server.trace_id, server.parent_span_id) == (TRACE_ID, CLIENT_SPAN)
    assert server.links == (HTTP_SPAN,)
    assert server.service == "toolq-facade" and server.kind == 2  # SERVER
    assert server.attributes["mcp.method.name"] == "tools/call"
    assert server.attributes["gen_ai.tool.name"] == "add"
    assert "error.type" not in server.attributes
    # The worker's spans are its children, in the same trace, and carry the same job id.
    for span in (run, wait):
        assert span.service == "toolq-worker"
        assert (span.trace_id, span.parent_span_id) == (TRACE_ID, server.span_id)
        assert span.attributes["toolq.job_id"] == server.attributes["toolq.job_id"]
    # Queue wait, then run, both inside the request.
    assert server.start_ns <= wait.start_ns <= wait.end_ns <= run.end_ns <= server.end_ns + 50_000_000


async def test_without_a_traceparent_in_meta_the_http_header_is_the_parent(tmp_path: Path):
    spans = await spans_of_one_call(tmp_path, None, f"00-{TRACE_ID}-{HTTP_SPAN}-01")
    server = one(spans, "tools/call add")
    assert (server.trace_id, server.parent_span_id, server.links) == (TRACE_ID, HTTP_SPAN, ())
    assert one(spans, "execute_tool add").parent_span_id == server.span_id
