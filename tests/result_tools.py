"""Test tools that return content blocks, mixes of data and content, and write log messages."""

from __future__ import annotations

from pydantic import BaseModel

from workers.content import Audio, EmbeddedResource, Image, ResourceLink, Text, ToolResult
from workers.definition import ToolContext, tool

PIXEL = b"\x89PNG\r\n\x1a\n-not-really-a-png"


class Stats(BaseModel):
    words: int


@tool
async def shout(text: str) -> str:
    """Return the text in capitals."""
    return text.upper()


@tool
async def picture() -> Image:
    """Return an image."""
    return Image(PIXEL, "image/png", annotations={"audience": ["user"]})


@tool
async def gallery() -> list[str | Image | Audio | ResourceLink | EmbeddedResource | Text]:
    """Return one block of every kind."""
    return [
        "a caption",
        Image(PIXEL),
        Audio(b"RIFF....WAVE", "audio/wav"),
        ResourceLink("file:///tmp/report.txt", "report.txt", mime_type="text/plain"),
        EmbeddedResource("test://blob", blob=b"\x00\x01", mime_type="application/octet-stream"),
        Text("the end"),
    ]


@tool
async def summary(text: str) -> ToolResult[Stats]:
    """Return words counted, as text and as data."""
    words = len(text.split())
    return ToolResult([f"{words} words"], Stats(words=words))


@tool
async def not_content() -> str:
    """Claim to return text, return a number."""
    return 42  # type: ignore[return-value]


@tool
async def chatty(ctx: ToolContext) -> str:
    """Log at three levels, with progress between."""
    await ctx.debug("looking around")
    await ctx.report_progress(1, 2)
    await ctx.info("found it", logger="search")
    await ctx.log("warning", {"detail": "it was small"})
    await ctx.report_progress(2, 2)
    return "done"


@tool
async def sized(kilobytes: int) -> str:
    """Return a text of about `kilobytes` KiB."""
    return "x" * (kilobytes * 1024)
