"""The stateless era's per-request envelope: what every 2026-07-28 request says about itself.

With no handshake, each request carries in `params._meta` its protocol version and the
client's capabilities (both required), the client's identity, and optionally a progress token,
a log level and W3C trace context.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from facade.protocol.jsonrpc import INVALID_PARAMS, JsonRpcError, RequestId
from facade.protocol.tool_calls import LOG_LEVELS

__all__ = [
    "CLIENT_CAPABILITIES",
    "CLIENT_INFO",
    "LOG_LEVEL",
    "PROTOCOL_VERSION",
    "SERVER_INFO",
    "Envelope",
    "progress_token",
    "read_envelope",
    "traceparent",
]

PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
LOG_LEVEL = "io.modelcontextprotocol/logLevel"
#: The server's identity, in the `_meta` of every stateless-era result.
SERVER_INFO = "io.modelcontextprotocol/serverInfo"

#: version-traceid-parentid-flags (W3C Trace Context, version 00 and later).
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


@dataclass(frozen=True)
class Envelope:
    protocol_version: Any
    client_capabilities: dict[str, Any]
    client_info: dict[str, Any] | None
    log_level: str | None
    progress_token: str | int | None
    traceparent: str | None

    def declares_extension(self, name: str) -> bool:
        extensions = self.client_capabilities.get("extensions")
        return isinstance(extensions, dict) and name in extensions


def progress_token(params: Mapping[str, Any]) -> str | int | None:
    """The request's progress token, if it sent a valid one (a string or an integer)."""
    meta = params.get("_meta")
    token = meta.get("progressToken") if isinstance(meta, dict) else None
    return token if isinstance(token, str | int) and not isinstance(token, bool) else None


def traceparent(params: Mapping[str, Any]) -> str | None:
    """The request's W3C trace context (SEP-414), if valid; malformed context is ignored, as
    W3C Trace Context asks, never an error."""
    meta = params.get("_meta")
    return valid_traceparent(meta.get("traceparent") if isinstance(meta, dict) else None)


def valid_traceparent(value: Any) -> str | None:
    """`value` if it is a well-formed W3C traceparent, else None."""
    return value if isinstance(value, str) and _TRACEPARENT.match(value) else None


def read_envelope(params: Mapping[str, Any], request_id: RequestId) -> Envelope:
    """The envelope of a stateless-era request; -32602 when a required part is missing or wrong.

    The protocol version is only required to be present here: whether it is served, and
    whether it matches the header, are decided after (-32020 before -32022, so a client that
    disagrees with itself is told so first).
    """
    meta = params.get("_meta")
    if not isinstance(meta, dict):
        raise JsonRpcError(
            INVALID_PARAMS,
            f"Invalid params: params._meta must be an object carrying {PROTOCOL_VERSION!r} and "
            f"{CLIENT_CAPABILITIES!r} (protocol 2026-07-28 has no initialize)",
            id=request_id,
        )
    missing = [key for key in (PROTOCOL_VERSION, CLIENT_CAPABILITIES) if key not in meta]
    if missing:
        raise JsonRpcError(
            INVALID_PARAMS, f"Invalid params: params._meta is missing {', '.join(missing)}", id=request_id
        )
    capabilities = meta[CLIENT_CAPABILITIES]
    if not isinstance(capabilities, dict):
        raise JsonRpcError(
            INVALID_PARAMS, f"Invalid params: {CLIENT_CAPABILITIES} must be an object", id=request_id
        )
    client_info = meta.get(CLIENT_INFO)
    if client_info is not None and not isinstance(client_info, dict):
        raise JsonRpcError(INVALID_PARAMS, f"Invalid params: {CLIENT_INFO} must be an object", id=request_id)
    log_level = meta.get(LOG_LEVEL)
    if log_level is not None and log_level not in LOG_LEVELS:
        raise JsonRpcError(
            INVALID_PARAMS,
            f"Invalid params: {LOG_LEVEL} must be one of {', '.join(LOG_LEVELS)}, not {log_level!r}",
            id=request_id,
        )
    return Envelope(
        protocol_version=meta[PROTOCOL_VERSION],
        client_capabilities=capabilities,
        client_info=client_info,
        log_level=log_level,
        progress_token=progress_token(params),
        traceparent=traceparent(params),
    )
