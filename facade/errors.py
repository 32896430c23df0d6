"""The errors the facade's parts raise to one another.

Redis is a detail of the catalog, the session store and the queue client: each turns a
`RedisError` (or a socket error) into `StoreUnavailable`, so the protocol core and the HTTP
edge never see a Redis type.
"""

from __future__ import annotations

__all__ = ["StoreUnavailable", "UnknownTool"]


class StoreUnavailable(Exception):
    """The shared store (Redis) could not be reached; the operation may succeed shortly."""


class UnknownTool(Exception):
    """No worker ever served a tool of this name."""

    def __init__(self, name: str):
        super().__init__(f"Unknown tool: {name!r}")
        self.name = name
