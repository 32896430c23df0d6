"""Who the server is and what it can do: the `initialize` and `server/discover` results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facade.protocol.envelope import SERVER_INFO
from facade.protocol.tasks import TASKS_EXTENSION
from facade.protocol.versions import SUPPORTED_VERSIONS

__all__ = ["ServerIdentity", "capabilities", "discover_result", "initialize_result"]

INSTRUCTIONS = (
    "Tools served by toolq run on a queue of worker processes. Calls are independent: "
    "several may run at once."
)


@dataclass(frozen=True)
class ServerIdentity:
    version: str
    name: str = "toolq"
    title: str = "toolq"
    instructions: str = INSTRUCTIONS

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "version": self.version}


def capabilities() -> dict[str, Any]:
    """What toolq implements, in both eras: tools, and log messages from tools as they run.

    `listChanged`: a change of the tool list is told on the handshake era's GET stream and on
    the stateless era's `subscriptions/listen` streams.
    """
    return {"tools": {"listChanged": True}, "logging": {}}


#: Tasks as 2025-11-25 declares them: tools/call may be a task; tasks can be listed and cancelled.
HANDSHAKE_TASKS: dict[str, Any] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}


def initialize_result(protocol_version: str, identity: ServerIdentity) -> dict[str, Any]:
    return {
        "protocolVersion": protocol_version,
        "capabilities": {**capabilities(), "tasks": HANDSHAKE_TASKS},
        "serverInfo": identity.info(),
        "instructions": identity.instructions,
    }


def discover_result(identity: ServerIdentity, *, ttl_ms: int, cache_scope: str) -> dict[str, Any]:
    return {
        "resultType": "complete",
        "supportedVersions": list(SUPPORTED_VERSIONS),
        "capabilities": {**capabilities(), "extensions": {TASKS_EXTENSION: {}}},
        "instructions": identity.instructions,
        "ttlMs": ttl_ms,
        "cacheScope": cache_scope,
        "_meta": {SERVER_INFO: identity.info()},
    }
