"""The fixture tools the MCP conformance suite calls, served only in tests.

A worker serves them with `python -m workers --tool-modules fixture_tools` (this directory on
PYTHONPATH). Names, arguments and outputs are the suite's (see its scenario sources); none of
this is ever in the default tool set.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import struct
import time
import wave
import zlib
from typing import Annotated

from pydantic import Field
from redis.asyncio import Redis

from workers import contract
from workers.content import Audio as AudioBlock
from workers.content import EmbeddedResource, Image, ToolResult
from workers.definition import ToolContext, ToolError, ToolUnavailable, tool


def _png_pixel(red: int, green: int, blue: int) -> bytes:
    """A 1x1 PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes([0, red, green, blue]))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _wav_silence(milliseconds: int = 10, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(b"\x80" * (rate * milliseconds // 1000))
    return buffer.getvalue()


RED_PIXEL = _png_pixel(255, 0, 0)


@tool
async def test_simple_text() -> str:
    """Return a simple text response."""
    return "This is a simple text response for testing."


@tool
async def test_image_content() -> Image:
    """Return an image (a 1x1 red PNG)."""
    return Image(RED_PIXEL, "image/png")


@tool
async def test_audio_content() -> AudioBlock:
    """Return a short WAV clip of silence."""
    return AudioBlock(_wav_silence(), "audio/wav")


@tool
async def test_embedded_resource() -> EmbeddedResource:
    """Return an embedded text resource."""
    return EmbeddedResource(
        "test://embedded-resource", text="This is an embedded resource content.", mime_type="text/plain"
    )


@tool
async def test_multiple_content_types() -> list[str | Image | EmbeddedResource]:
    """Return text, an image and an embedded resource together."""
    return [
        "Multiple content types test:",
        Image(RED_PIXEL, "image/png"),
        EmbeddedResource(
            "test://mixed-content-resource", text='{"test":"data","value":123}', mime_type="application/json"
        ),
    ]


@tool
async def test_error_handling() -> str:
    """Always fail, as a tool error the caller sees."""
    raise ToolError("This tool intentionally returns an error for testing")


@tool
async def test_tool_with_progress(ctx: ToolContext) -> str:
    """Report progress 0, 50 and 100 of 100, then finish."""
    for step in (0, 50, 100):
        await ctx.report_progress(step, 100, f"{step}% done")
        if step < 100:
            await asyncio.sleep(0.05)
    return "Progress test completed"


@tool
async def test_tool_with_logging(ctx: ToolContext) -> str:
    """Write three log messages while running."""
    await ctx.info("Tool execution started")
    await asyncio.sleep(0.05)
    await ctx.info("Tool processing data")
    await asyncio.sleep(0.05)
    await ctx.info("Tool execution completed")
    return "Logging test completed"


@tool
async def test_logging_tool(ctx: ToolContext) -> str:
    """Write a log message (which reaches only a caller that asked for a log level)."""
    await ctx.info("test_logging_tool ran")
    return "Logged one message"


@tool(client_capabilities={"sampling": {}})
async def test_missing_capability() -> str:
    """Needs the client's sampling capability; a client without it is refused."""
    return "The client declared sampling"


@tool
async def test_streaming_elicitation() -> str:
    """Answer with a plain result (toolq sends no requests to clients)."""
    return "No elicitation needed"


@tool
async def test_custom_headers(
    region: Annotated[str, Field(description="Where to run", json_schema_extra={"x-mcp-header": "Region"})],
) -> str:
    """Echo an argument that clients mirror into the Mcp-Param-Region header."""
    return f"region={region}"


# --- tool-list changes (server-stateless: sep-2575-server-sends-tools-list-changed-...) ----------

#: The pretend worker test_trigger_tool_change registers: it serves one tool, never called, whose
#: description counts the calls, so each call changes the tool list (not its names).
MARKER_WORKER = "conformance-tool-list-marker"
MARKER_LIFETIME_MS = 120_000
_changes = itertools.count(1)


@tool
async def test_trigger_tool_change() -> str:
    """Change the tool list (a pretend worker's tool changes its description)."""
    change = next(_changes)
    marker = {
        "name": "test_tool_list_marker",
        "description": f"Changed {change} times by test_trigger_tool_change; never called.",
        "inputSchema": {"type": "object"},
    }
    info = {
        "worker_id": MARKER_WORKER,
        "pool": MARKER_WORKER,
        "queue": contract.queue_name(MARKER_WORKER),
        "tools": [marker],
        "host": "conformance",
        "pid": os.getpid(),
        "started_at": time.time(),
    }
    redis = Redis.from_url(os.environ["REDIS_URL"])
    try:
        # What a joining worker writes (workers/registry.py), with a longer life: no heartbeat.
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set(contract.worker_key(MARKER_WORKER), contract.dumps(info), px=MARKER_LIFETIME_MS)
            pipe.zadd(contract.WORKERS_LIVE, {MARKER_WORKER: int(time.time() * 1000) + MARKER_LIFETIME_MS})
            pipe.publish(contract.REGISTRY_CHANNEL, MARKER_WORKER)
            await pipe.execute()
    finally:
        await redis.aclose()
    return f"The tool list changed ({change})."


JSON_SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


@tool(name="json_schema_2020_12_tool", input_schema=JSON_SCHEMA_2020_12)
async def json_schema_tool(
    name: str | None = None,
    address: dict[str, str] | None = None,
    contactMethod: str | None = None,
    phone: str | None = None,
    email: str | None = None,
) -> ToolResult:
    """Tool with JSON Schema 2020-12 features"""
    return ToolResult([f"Hello {name or 'there'}"], {"name": name, "contact": phone or email})


# --- tasks (the extension io.modelcontextprotocol/tasks, 2026-07-28) ------------------------------


@tool(task="never")
async def greet(name: str) -> str:
    """Greet by name, never as a task."""
    return f"Hello, {name}!"


@tool(timeout=120)
async def slow_compute(seconds: float, label: str = "") -> str:
    """Sleep `seconds`, then say so: a task for a client that takes them."""
    await asyncio.sleep(seconds)
    return f"{label or 'slow_compute'} finished after {seconds:g} s"


@tool(task="always")
async def failing_job() -> str:
    """Always a task; fails as a tool after about a second."""
    await asyncio.sleep(1)
    raise ToolError("failing_job always fails")


@tool
async def protocol_error_job() -> str:
    """A call that cannot be served: its task fails (a JSON-RPC error, not a tool error)."""
    raise ToolUnavailable("protocol_error_job cannot be served")


@tool
async def confirm_delete(filename: str) -> str:
    """Would ask the user to confirm deleting `filename`; a queued tool cannot ask the client for
    input (no elicitation in toolq), so it fails at once, deleting nothing."""
    raise ToolError(f"cannot ask for confirmation to delete {filename!r}: nothing was deleted")
