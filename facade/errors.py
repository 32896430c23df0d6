"""The errors the facade's parts raise to one another.

Redis is a detail of the catalog, the session store and the queue client: each turns a
`RedisError` (or a socket error) into `StoreUnavailable`, so the protocol core and the HTTP
edge never see a Redis type.
"""

from __future__ import annotations

import logging
from typing import Literal

__all__ = ["Refused", "StoreUnavailable", "UnknownTool", "store_unavailable"]

log = logging.getLogger("toolq.store")


class StoreUnavailable(Exception):
    """The shared store (Redis) could not be reached; the operation may succeed shortly."""


def store_unavailable(what: str, error: BaseException) -> StoreUnavailable:
    """The StoreUnavailable for a failed Redis command: it says what failed and how (the error's
    class), never where Redis is or what it said; those go to the log, for the operator."""
    log.debug("%s: %s", what, error, exc_info=error)
    return StoreUnavailable(f"{what} (Redis) is unavailable ({type(error).__name__})")


class UnknownTool(Exception):
    """No worker ever served a tool of this name."""

    def __init__(self, name: str):
        super().__init__(f"Unknown tool: {name!r}")
        self.name = name


class Refused(Exception):
    """A call turned away before it was queued: its pool is full (`overloaded`) or its caller or
    tool is over a rate limit (`rate_limited`); `retry_after` says when trying again may work."""

    def __init__(self, reason: Literal["overloaded", "rate_limited"], message: str, retry_after: int):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
