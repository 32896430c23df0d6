"""The benchmark's one HTTP client: keep-alive HTTP/1.1 over asyncio streams, nothing more.

Every system is driven by this same client, so the client's own cost is the same for all. It
is kept as small as a Python client can be (a request is a few byte strings joined, a response
is a status line, a Content-Length and a body), because on a two-core machine the client
shares the cores with the servers it measures: a heavy client (aiohttp's ClientSession costs
about 0.15 ms of CPU a call) takes from a multi-process system like toolq what a one-process
server never needed, and compresses every ratio towards 1.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping


class HttpError(Exception):
    """The server closed the connection or answered something that is not HTTP/1.1."""


class Connection:
    """One keep-alive connection to `host:port`; one request at a time."""

    def __init__(self, host: str, port: int, path: str, headers: Mapping[str, str]):
        self.host, self.port = host, port
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        #: Everything before Content-Length, which closes the head of every request.
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = self._reader = None

    async def post(self, body: bytes, extra_head: bytes = b"") -> tuple[int, bytes, bytes]:
        """POST `body` (with `extra_head`: more header lines, each ending in CRLF); returns the
        status, the raw response head and the body. Reconnects once if the connection was closed."""
        if self._writer is None:
            await self.open()
        assert self._reader is not None and self._writer is not None
        self._writer.write(self._head + str(len(body)).encode() + b"\r\n" + extra_head + b"\r\n" + body)
        try:
            head = await self._reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            await self.close()
            raise HttpError(f"connection closed before a response: {exc}") from None
        status = int(head[9:12])
        length = _content_length(head)
        if length is not None:
            body_in = await self._reader.readexactly(length) if length else b""
        elif b"chunked" in head.lower():
            body_in = await self._read_chunked()
        else:
            body_in = await self._reader.read()  # no length: the body ends with the connection
            await self.close()
        return status, head, body_in

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        parts = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)


def _content_length(head: bytes) -> int | None:
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        return None
    end = lower.index(b"\r\n", at + 2)
    return int(lower[at + 17 : end])


def header(head: bytes, name: str) -> str | None:
    """One header of a raw response head, or None."""
    needle = b"\r\n" + name.lower().encode() + b":"
    lower = head.lower()
    at = lower.find(needle)
    if at < 0:
        return None
    end = lower.index(b"\r\n", at + 2)
    return head[at + len(needle) : end].decode().strip()
