"""The response to one POST: a JSON body, or an SSE stream once something must go out early.

The stream opens at the first notification (progress, a log message) or, for a call that runs
long in silence, at the first keep-alive comment, so that proxies and clients with idle
timeouts do not cut it. Once open, the final response is its last event.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from facade.protocol import jsonrpc

__all__ = ["SSE_HEADERS", "ResponseStream", "accepts", "sse_event"]

#: `X-Accel-Buffering: no` asks nginx-style proxies not to hold events back.
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
KEEPALIVE = b": keep-alive\n\n"


def accepts(request: web.Request, media_type: str) -> bool:
    accept = request.headers.get("Accept")
    if not accept:
        return True
    major = media_type.split("/", maxsplit=1)[0]
    for part in accept.split(","):
        value = part.split(";")[0].strip().lower()
        if value in (media_type, "*/*", f"{major}/*"):
            return True
    return False


def sse_event(message: dict[str, Any] | list[dict[str, Any]]) -> bytes:
    return b"event: message\ndata: " + jsonrpc.encode(message) + b"\n\n"


class ResponseStream:
    """The protocol core's `RequestStream` for one aiohttp request."""

    def __init__(self, http: web.Request, *, keepalive_seconds: float):
        self._http = http
        self._can_stream = accepts(http, "text/event-stream")
        self._keepalive_seconds = keepalive_seconds
        self._response: web.StreamResponse | None = None
        self._opening = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._pinger: asyncio.Task[None] | None = None

    @property
    def can_stream(self) -> bool:
        return self._can_stream

    @property
    def opened(self) -> web.StreamResponse | None:
        return self._response

    async def send(self, message: dict[str, Any]) -> None:
        response = await self._open()
        await response.write(sse_event(message))

    async def open(self) -> web.StreamResponse:
        """Open the stream now, before anything is sent (a GET stream: its client waits for the
        headers)."""
        return await self._open()

    def start_keepalive(self) -> None:
        """After `keepalive_seconds` of silence, open the stream and keep it alive until stopped."""
        if self._can_stream and self._keepalive_seconds > 0:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._keepalive_seconds, self._start_pinging)

    async def stop_keepalive(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await self._pinger

    async def finish(self, message: dict[str, Any] | list[dict[str, Any]]) -> web.StreamResponse:
        """Send the final response on the open stream and end it."""
        assert self._response is not None
        await self._response.write(sse_event(message))
        await self._response.write_eof()
        return self._response

    def _start_pinging(self) -> None:
        self._pinger = asyncio.ensure_future(self._ping())

    async def _ping(self) -> None:
        while True:
            response = await self._open()
            await response.write(KEEPALIVE)
            await asyncio.sleep(self._keepalive_seconds)

    async def _open(self) -> web.StreamResponse:
        if self._response is None:
            async with self._opening:
                if self._response is None:
                    response = web.StreamResponse(headers=SSE_HEADERS)
                    await response.prepare(self._http)
                    self._response = response
        return self._response
