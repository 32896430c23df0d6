"""The event loop both processes run on: uvloop where it exists (Linux, macOS).

Half of a call's CPU in the facade and the worker is socket writes through asyncio's
transports; uvloop does those in C. TOOLQ_EVENT_LOOP=asyncio keeps the standard loop.
"""

from __future__ import annotations

import asyncio
import logging
import os

log = logging.getLogger("toolq")


def use_fast_event_loop() -> str:
    """Make new event loops uvloop loops, unless told otherwise; the loop kind in use."""
    if os.environ.get("TOOLQ_EVENT_LOOP", "uvloop") == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: PLC0415 - optional: absent on Windows
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
