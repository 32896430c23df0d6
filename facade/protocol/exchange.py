"""One exchange as the protocol core sees it: the message that came in, the reply that goes out.

The HTTP edge turns a POST into an `Inbound` and a `Reply` into a status, headers and a body;
`Problem` says why a reply is not an ordinary answer, so the edge can pick the status without
reading JSON-RPC error codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from facade.protocol.headers import RoutingHeaders
from facade.protocol.jsonrpc import OVERLOADED, RATE_LIMITED

__all__ = ["ACCEPTED", "Inbound", "Problem", "Reply", "refusal"]


@dataclass(frozen=True)
class Inbound:
    #: The decoded JSON body.
    payload: Any
    headers: RoutingHeaders
    #: The handshake era's `Mcp-Session-Id`, if sent.
    session_id: str | None = None
    #: Who is asking: the name of the request's bearer token; None with authentication off.
    principal: str | None = None


class Problem(Enum):
    """Why a message got an error instead of an answer, where the transport must tell."""

    #: Not a message this server can read, or one whose parts disagree (400).
    MALFORMED = "malformed"
    #: A stateless-era method that is not served (404, so that clients can tell eras apart).
    UNKNOWN_METHOD = "unknown_method"
    #: A handshake-era request outside a session (400).
    SESSION_REQUIRED = "session_required"
    #: A session that ended or never existed (404: the client starts a new one).
    SESSION_NOT_FOUND = "session_not_found"
    #: The shared store is unreachable; trying again shortly may work (503).
    STORE_UNAVAILABLE = "store_unavailable"
    #: The call's pool has more work than it can finish in time: try again later (503).
    OVERLOADED = "overloaded"
    #: The caller or the tool is over a rate limit: try again later (429).
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True)
class Reply:
    #: A JSON-RPC response (or a batch of them); None acknowledges a notification (202).
    message: dict[str, Any] | list[dict[str, Any]] | None
    problem: Problem | None = None
    #: A session the reply opens (handshake `initialize`).
    session_id: str | None = None
    #: Seconds after which trying again may work (OVERLOADED, RATE_LIMITED).
    retry_after: int | None = None


#: The reply to a notification or a client's response: nothing to say (202).
ACCEPTED = Reply(None)


def refusal(message: dict[str, Any]) -> Reply | None:
    """The Reply for a JSON-RPC error that turned a call away before it was queued, else None."""
    error = message.get("error")
    if not isinstance(error, dict):
        return None
    code = error.get("code")
    problem = {OVERLOADED: Problem.OVERLOADED, RATE_LIMITED: Problem.RATE_LIMITED}.get(
        code if isinstance(code, int) else 0
    )
    if problem is None:
        return None
    return Reply(message, problem, retry_after=(error.get("data") or {}).get("retryAfterSeconds"))
