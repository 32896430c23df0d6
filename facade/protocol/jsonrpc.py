"""JSON-RPC 2.0 messages as MCP uses them: parsing, error codes and response shapes.

The parser is strict on purpose: an id must be a string or an integer (never `true`, `1.5` or
null), `params` an object, `jsonrpc` exactly "2.0". Anything else is -32600 with the id, when
one could be read, so a client can match the error to its request.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
#: Session ended or unknown (handshake era; the code the SDKs use).
SESSION_NOT_FOUND = -32001
#: 2026-07-28: an HTTP header disagrees with the body, or a required one is missing.
HEADER_MISMATCH = -32020
#: 2026-07-28: serving the request needs a client capability the request did not declare.
MISSING_CLIENT_CAPABILITY = -32021
#: 2026-07-28: the request's protocol version is not served here.
UNSUPPORTED_PROTOCOL_VERSION = -32022
#: The request was cancelled before it completed (the code the SDKs use).
REQUEST_CANCELLED = -32800
#: toolq's own, outside JSON-RPC's reserved range: the call was turned away before it was
#: queued, its pool full (overloaded) or a rate limit reached; `data.retryAfterSeconds` says
#: when to try again.
OVERLOADED = -31001
RATE_LIMITED = -31002

RequestId = str | int
#: A run of digits that may be an integer beyond 64 bits.
_LONG_DIGITS = re.compile(rb"\d{19}")


class JsonRpcError(Exception):
    """A JSON-RPC error to send back; `id` is None when the request's id is unknown."""

    def __init__(self, code: int, message: str, data: Any = None, id: RequestId | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.id = id

    def response(self) -> dict[str, Any]:
        return error_response(self.id, self.code, self.message, self.data)


@dataclass(frozen=True)
class Request:
    id: RequestId
    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Notification:
    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Response:
    """A response or error sent by the client (to a server-to-client request)."""

    id: RequestId | None


Message = Request | Notification | Response


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large for a double")
    return value


def decode(body: bytes) -> Any:
    """The JSON value of a request body; -32700 for anything that is not one.

    Deep nesting (RecursionError), integers too long to convert (ValueError), `NaN`/`Infinity`
    (not JSON, though Python reads them) and numbers that overflow a double are parse errors
    too, never a crash and never a non-finite number inside the server.

    orjson reads a well-formed body in a fraction of the time; it reads an integer beyond 64
    bits as a float, so a body with a run of 19 digits or more goes to the standard library
    (which keeps it exact), as does every body orjson refuses (the standard library then says
    what is wrong, in the words above).
    """
    if not _LONG_DIGITS.search(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(body, parse_constant=_not_a_number, parse_float=_finite)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JsonRpcError(PARSE_ERROR, f"Parse error: the body is not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise JsonRpcError(PARSE_ERROR, "Parse error: the JSON is nested too deeply") from exc
    except ValueError as exc:
        raise JsonRpcError(PARSE_ERROR, f"Parse error: {exc}") from exc


def encode(message: Any) -> bytes:
    """A message as compact UTF-8 JSON. Non-finite numbers never reach here (decode refuses
    them, workers fail results that hold them); an integer beyond 64 bits is written by the
    standard library."""
    try:
        return orjson.dumps(message)
    except TypeError:
        return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


def _valid_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def parse(payload: Any) -> Message:
    """One decoded JSON value -> a message; raises JsonRpcError(-32600) for anything else."""
    if isinstance(payload, list):
        raise JsonRpcError(
            INVALID_REQUEST, "Invalid Request: JSON-RPC batches are not supported; send one message per POST"
        )
    if not isinstance(payload, dict):
        raise JsonRpcError(INVALID_REQUEST, "Invalid Request: the body must be a JSON-RPC object")
    raw_id = payload.get("id")
    known_id = raw_id if _valid_id(raw_id) else None
    if payload.get("jsonrpc") != "2.0":
        raise JsonRpcError(INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"', id=known_id)
    if "method" not in payload:
        if ("result" in payload) != ("error" in payload) and (raw_id is None or known_id is not None):
            return Response(id=known_id)
        raise JsonRpcError(INVALID_REQUEST, 'Invalid Request: "method" is missing', id=known_id)
    method = payload["method"]
    if not isinstance(method, str) or not method:
        raise JsonRpcError(
            INVALID_REQUEST, 'Invalid Request: "method" must be a non-empty string', id=known_id
        )
    params = payload.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise JsonRpcError(INVALID_REQUEST, 'Invalid Request: "params" must be an object', id=known_id)
    if "id" not in payload:
        return Notification(method=method, params=params)
    if known_id is None:
        raise JsonRpcError(INVALID_REQUEST, 'Invalid Request: "id" must be a string or an integer')
    return Request(id=known_id, method=method, params=params)


def result_response(id: RequestId, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "result": result}


def error_response(id: RequestId | None, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": id, "error": error}


def notification(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}
