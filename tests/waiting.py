"""Waiting in async tests for something to become true, with a deadline and a clear failure."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable


async def eventually(condition: Callable[[], object], failure: str, seconds: float = 2.0) -> None:
    """Wait until `condition()` holds (it may be a coroutine function); fail with `failure` if it
    does not within `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        assert time.monotonic() < deadline, failure
        await asyncio.sleep(0.02)
