"""What a tool can return besides data: text, images, audio, links to resources, embedded
resources, or a mix of them, optionally with data beside them (`ToolResult`).

    @tool
    async def chart(city: str) -> Image:
        return Image(render_png(city), "image/png")

    @tool
    async def report(city: str) -> ToolResult[Weather]:
        data = await current(city)
        return ToolResult([f"It is {data.temperature} °C", Image(png, "image/png")], data)

Each block becomes the MCP content block of the same name; binary data is sent base64-encoded.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

__all__ = [
    "Audio",
    "ContentBlock",
    "EmbeddedResource",
    "Image",
    "ResourceLink",
    "Text",
    "ToolResult",
    "content_blocks",
]

T = TypeVar("T")


def _with(block: dict[str, Any], **optional: Any) -> dict[str, Any]:
    block.update({key: value for key, value in optional.items() if value is not None})
    return block


@dataclass(frozen=True)
class ContentBlock:
    """Base of every content block; `annotations` is MCP's (audience, priority, lastModified)."""

    def to_mcp(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Text(ContentBlock):
    text: str
    annotations: dict[str, Any] | None = field(default=None, kw_only=True)

    def to_mcp(self) -> dict[str, Any]:
        return _with({"type": "text", "text": self.text}, annotations=self.annotations)


@dataclass(frozen=True)
class _Media(ContentBlock):
    """Binary media, sent base64-encoded."""

    kind: ClassVar[str]
    data: bytes
    mime_type: str
    annotations: dict[str, Any] | None = field(default=None, kw_only=True)

    def to_mcp(self) -> dict[str, Any]:
        block = {"type": self.kind, "data": base64.b64encode(self.data).decode(), "mimeType": self.mime_type}
        return _with(block, annotations=self.annotations)


@dataclass(frozen=True)
class Image(_Media):
    kind: ClassVar[str] = "image"
    mime_type: str = "image/png"


@dataclass(frozen=True)
class Audio(_Media):
    kind: ClassVar[str] = "audio"
    mime_type: str = "audio/wav"


@dataclass(frozen=True)
class ResourceLink(ContentBlock):
    """A link to a resource the client can fetch or show (it need not be in resources/list)."""

    uri: str
    name: str
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None
    size: int | None = None
    annotations: dict[str, Any] | None = field(default=None, kw_only=True)

    def to_mcp(self) -> dict[str, Any]:
        return _with(
            {"type": "resource_link", "uri": self.uri, "name": self.name},
            title=self.title,
            description=self.description,
            mimeType=self.mime_type,
            size=self.size,
            annotations=self.annotations,
        )


@dataclass(frozen=True)
class EmbeddedResource(ContentBlock):
    """A resource's contents inline: `text`, or `blob` for binary contents (exactly one)."""

    uri: str
    text: str | None = None
    blob: bytes | None = None
    mime_type: str | None = None
    annotations: dict[str, Any] | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if (self.text is None) == (self.blob is None):
            raise ValueError("an EmbeddedResource has either text or blob, not both and not neither")

    def to_mcp(self) -> dict[str, Any]:
        contents: dict[str, Any] = {"uri": self.uri}
        if self.mime_type is not None:
            contents["mimeType"] = self.mime_type
        if self.text is not None:
            contents["text"] = self.text
        else:
            contents["blob"] = base64.b64encode(self.blob or b"").decode()
        return _with({"type": "resource", "resource": contents}, annotations=self.annotations)


@dataclass(frozen=True)
class ToolResult(Generic[T]):
    """Content blocks and, optionally, data beside them (its type is the tool's output schema)."""

    content: Sequence[ContentBlock | str]
    structured: T | None = None


def content_blocks(value: Any) -> list[dict[str, Any]]:
    """A tool's returned content as MCP content blocks; TypeError for anything that is not content."""
    items = value if isinstance(value, list | tuple) else [value]
    blocks = []
    for item in items:
        if isinstance(item, str):
            blocks.append(Text(item).to_mcp())
        elif isinstance(item, ContentBlock):
            blocks.append(item.to_mcp())
        else:
            raise TypeError(f"{type(item).__name__} is not content (return str or a workers.content block)")
    return blocks
