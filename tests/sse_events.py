"""An SSE response that stays open, read event by event as it arrives (GET and listen streams)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp


class SseEvents:
    """The JSON-RPC messages of an open `text/event-stream` response, and its comments."""

    def __init__(self, response: aiohttp.ClientResponse):
        self.response = response
        #: The comment lines seen so far (keep-alives), without their colon.
        self.comments: list[str] = []
        self._buffer = b""

    async def next(self, seconds: float = 3.0) -> dict[str, Any] | None:
        """The next message; None once the stream has ended; TimeoutError after `seconds` of
        no message (comments do not count)."""
        async with asyncio.timeout(seconds):
            while True:
                end = self._buffer.find(b"\n\n")
                if end < 0:
                    chunk = await self.response.content.readany()
                    if not chunk:
                        return None
                    self._buffer += chunk
                    continue
                frame, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
                lines = frame.split(b"\n")
                self.comments += [line[1:].strip().decode() for line in lines if line.startswith(b":")]
                data = [line[len(b"data:") :].strip() for line in lines if line.startswith(b"data:")]
                if data:
                    message: dict[str, Any] = json.loads(b"\n".join(data))
                    return message

    async def silent_for(self, seconds: float) -> bool:
        """Whether no message (and no end) comes within `seconds`."""
        try:
            await self.next(seconds)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        self.response.close()
