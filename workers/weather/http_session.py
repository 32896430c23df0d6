"""The one aiohttp session the weather providers share per process, and closing it."""

from __future__ import annotations

import asyncio

import aiohttp


class _Shared:
    session: aiohttp.ClientSession | None = None
    loop: asyncio.AbstractEventLoop | None = None


_shared = _Shared()


def _shared_session() -> aiohttp.ClientSession:
    """The process's ClientSession, created on first use (inside the running event loop)."""
    loop = asyncio.get_running_loop()
    session = _shared.session
    if session is not None and not session.closed:
        if _shared.loop is loop:
            return session
        # Made on an event loop that is gone: it cannot be closed from here, only dropped.
        session.detach()
    _shared.session = aiohttp.ClientSession(headers={"User-Agent": "toolq-weather/0.1"})
    _shared.loop = loop
    return _shared.session


def open_session() -> aiohttp.ClientSession | None:
    """The shared session if one is open now (None before the first lookup and after closing)."""
    session = _shared.session
    return session if session is not None and not session.closed else None


async def aclose_providers() -> None:
    """Close the shared HTTP session, if one was opened; safe to call more than once."""
    session, _shared.session, _shared.loop = _shared.session, None, None
    if session is not None and not session.closed:
        await session.close()
