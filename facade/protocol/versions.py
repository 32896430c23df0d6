"""The protocol versions toolq serves, the two eras they belong to, and how a request is routed.

Handshake era (2025-03-26 .. 2025-11-25): `initialize` opens a session that names the version.
Stateless era (2026-07-28): no handshake; every request names its version in `params._meta`
and in the `MCP-Protocol-Version` header.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

__all__ = [
    "BATCH_VERSIONS",
    "HANDSHAKE_ERA_HEADER_VERSIONS",
    "HANDSHAKE_VERSIONS",
    "STATELESS_VERSIONS",
    "SUPPORTED_VERSIONS",
    "Era",
    "era_of",
    "negotiate",
]


class Era(Enum):
    HANDSHAKE = "handshake"
    STATELESS = "stateless"


#: Versions `initialize` negotiates, newest first: an unknown requested version gets the first.
HANDSHAKE_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")
#: Versions served without a handshake, newest first.
STATELESS_VERSIONS = ("2026-07-28",)
#: Every version served, newest first: what `server/discover` and -32022 errors list.
SUPPORTED_VERSIONS = (*STATELESS_VERSIONS, *HANDSHAKE_VERSIONS)
#: Header values that keep a request in the handshake era. 2024-11-05 clients speak the older
#: HTTP+SSE transport, but the header alone does not make a request stateless.
HANDSHAKE_ERA_HEADER_VERSIONS = frozenset((*HANDSHAKE_VERSIONS, "2024-11-05"))
#: Handshake versions whose sessions may POST a JSON-RPC batch (2025-06-18 removed batches).
BATCH_VERSIONS = frozenset({"2025-03-26"})


def era_of(version_header: str | None) -> Era:
    """The era of a request, from its `MCP-Protocol-Version` header alone (the SDKs' rule).

    No header, or a handshake-era version: the handshake era. Any other value, including a
    version nobody serves yet, is a stateless-era request (which then gets -32022 if unserved).
    """
    if version_header is None or version_header in HANDSHAKE_ERA_HEADER_VERSIONS:
        return Era.HANDSHAKE
    return Era.STATELESS


def negotiate(requested: Any) -> str:
    """The version `initialize` answers: the client's if served here, else the newest."""
    return requested if requested in HANDSHAKE_VERSIONS else HANDSHAKE_VERSIONS[0]
