"""The fixture tools the MCP conformance suite calls, served only in tests.

A worker serves them with `python -m workers --tool-modules fixture_tools` (this directory on
PYTHONPATH). Names, arguments and outputs are the suite's (see its scenario sources); none of
this is ever in the default tool set.
"""

from __future__ import annotations

import asyncio
import io
import struct
import wave
import zlib
from typing import Annotated

from pydantic import Field

from workers.content import Audio as AudioBlock
from workers.content import EmbeddedResource, Image, ToolResult
from workers.definition import ToolContext, ToolError, tool


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
