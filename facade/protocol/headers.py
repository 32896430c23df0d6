"""Stateless-era request headers that mirror the body, and the check that they agree with it.

A 2026-07-28 client copies `method` into `Mcp-Method`, the tool name into `Mcp-Name`, and each
argument a tool marks with `x-mcp-header` into `Mcp-Param-{Name}`, so that a load balancer can
route without reading the body. The server must refuse a request whose headers and body
disagree (-32020): otherwise the balancer and the server could act on different values.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from facade.protocol.jsonrpc import HEADER_MISMATCH, JsonRpcError, RequestId

__all__ = [
    "NAME_PARAMETERS",
    "MirroredParameter",
    "RoutingHeaders",
    "check_mirrored_parameters",
    "check_routing_headers",
    "decode_header_value",
    "mirrored_parameters",
]

VERSION_HEADER = "mcp-protocol-version"
METHOD_HEADER = "mcp-method"
NAME_HEADER = "mcp-name"
PARAM_HEADER_PREFIX = "mcp-param-"
_ROUTING = frozenset({VERSION_HEADER, METHOD_HEADER, NAME_HEADER})

#: Methods whose `Mcp-Name` header mirrors a parameter, and which parameter.
NAME_PARAMETERS: Mapping[str, str] = {
    "tools/call": "name",
    "resources/read": "uri",
    "prompts/get": "name",
    "tasks/get": "taskId",
    "tasks/update": "taskId",
    "tasks/cancel": "taskId",
}

_SENTINEL = re.compile(r"^=\?base64\?(?P<payload>[A-Za-z0-9+/]*={0,2})\?=$")
#: RFC 9110 token characters: what an `x-mcp-header` name may be made of.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_MIRRORABLE_TYPES = frozenset({"string", "integer", "boolean"})
_DECIMAL = re.compile(r"^-?[0-9]+(\.0+)?$")


@dataclass(frozen=True)
class RoutingHeaders:
    """The headers of one POST that mirror its body, as plain data (names lower-cased)."""

    protocol_version: str | None = None
    method: str | None = None
    name: str | None = None
    #: `mcp-param-{name}` -> value, for every such header present.
    params: Mapping[str, str] = field(default_factory=dict)
    #: Names of mirroring headers sent more than once: readers of the first and the last copy
    #: would disagree, so such a request is refused.
    duplicated: frozenset[str] = frozenset()

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> RoutingHeaders:
        values: dict[str, str] = {}
        params: dict[str, str] = {}
        duplicated: set[str] = set()
        for raw_name, value in pairs:
            name = raw_name.lower()
            if name in _ROUTING:
                target = values
            elif name.startswith(PARAM_HEADER_PREFIX):
                target = params
            else:
                continue
            if name in target:
                duplicated.add(name)
            target[name] = value
        return cls(
            protocol_version=values.get(VERSION_HEADER),
            method=values.get(METHOD_HEADER),
            name=values.get(NAME_HEADER),
            params=params,
            duplicated=frozenset(duplicated),
        )


def decode_header_value(value: str) -> str | None:
    """A header value with the `=?base64?...?=` form undone; None if that form is malformed.

    Only a value that both starts with `=?base64?` and ends with `?=` is encoded; anything else,
    `=?base64?SGVsbG8=` included, is the literal value.
    """
    if not (value.startswith("=?base64?") and value.endswith("?=") and len(value) >= 11):
        return value
    match = _SENTINEL.match(value)
    if match is None:
        return None
    payload = match["payload"]
    try:
        decoded = base64.b64decode(payload, validate=True)
        if base64.b64encode(decoded).decode() != payload:
            return None  # not canonical: two spellings must not mean one value
        return decoded.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _mismatch(message: str, request_id: RequestId | None) -> JsonRpcError:
    return JsonRpcError(HEADER_MISMATCH, f"Header mismatch: {message}", id=request_id)


def check_routing_headers(
    headers: RoutingHeaders, method: str, params: Mapping[str, Any], version: Any, request_id: RequestId
) -> None:
    """Raise -32020 unless `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` match the body."""
    if headers.duplicated & _ROUTING:
        name = sorted(headers.duplicated & _ROUTING)[0]
        raise _mismatch(f"the {name} header appears more than once", request_id)
    if headers.protocol_version != version:
        raise _mismatch(
            f"MCP-Protocol-Version header {headers.protocol_version!r} does not match the request's "
            f"io.modelcontextprotocol/protocolVersion {version!r}",
            request_id,
        )
    if headers.method is None:
        raise _mismatch("the Mcp-Method header is required on every request", request_id)
    if headers.method != method:
        raise _mismatch(
            f"Mcp-Method header {headers.method!r} does not match the body's method {method!r}", request_id
        )
    parameter = NAME_PARAMETERS.get(method)
    if parameter is None or not isinstance(params.get(parameter), str):
        return  # nothing to mirror; a missing or mistyped parameter is the method's -32602
    if headers.name is None:
        raise _mismatch(f"the Mcp-Name header is required on {method}", request_id)
    if decode_header_value(headers.name) != params[parameter]:
        raise _mismatch(
            f"Mcp-Name header {headers.name!r} does not match the body's {parameter} {params[parameter]!r}",
            request_id,
        )


# --- x-mcp-header: tool arguments mirrored into Mcp-Param-{Name} --------------------------------


@dataclass(frozen=True)
class MirroredParameter:
    """An argument that a tool's input schema marks with `x-mcp-header`."""

    path: tuple[str, ...]
    header: str
    type: str

    @property
    def header_name(self) -> str:
        return PARAM_HEADER_PREFIX + self.header.lower()


def _reachable(schema: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every property schema reachable from the root through `properties` alone."""
    if not isinstance(schema, dict):
        return
    for name, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, dict):
            yield (*path, name), sub
            yield from _reachable(sub, (*path, name))


def mirrored_parameters(input_schema: Any) -> tuple[MirroredParameter, ...]:
    """The valid `x-mcp-header` marks of an input schema, reachable through `properties` only.

    A mark that breaks the rules (not a token, a non-primitive type, a duplicate) mirrors
    nothing: conforming clients drop such a tool, and `@tool` refuses to define one.
    """
    found: list[MirroredParameter] = []
    seen: set[str] = set()
    for path, schema in _reachable(input_schema):
        header = schema.get("x-mcp-header")
        if header is None:
            continue
        kind = schema.get("type")
        if (
            not isinstance(header, str)
            or not _TOKEN.match(header)
            or kind not in _MIRRORABLE_TYPES
            or header.lower() in seen
        ):
            return ()
        seen.add(header.lower())
        found.append(MirroredParameter(path=path, header=header, type=kind))
    return tuple(found)


def _value_at(arguments: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = arguments
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _matches(parameter: MirroredParameter, value: Any, header: str) -> bool:
    if isinstance(value, bool):
        return header == ("true" if value else "false")
    if parameter.type == "integer" and isinstance(value, int | float) and _DECIMAL.match(header):
        return float(value).is_integer() and int(header.split(".", maxsplit=1)[0]) == int(value)
    return isinstance(value, str | int | float) and header == str(value)


def check_mirrored_parameters(
    parameters: tuple[MirroredParameter, ...],
    arguments: Mapping[str, Any],
    headers: RoutingHeaders,
    request_id: RequestId,
) -> None:
    """Raise -32020 unless every mirrored argument and its `Mcp-Param-*` header agree."""
    for parameter in parameters:
        display = "Mcp-Param-" + parameter.header
        if parameter.header_name in headers.duplicated:
            raise _mismatch(f"the {display} header appears more than once", request_id)
        raw = headers.params.get(parameter.header_name)
        value = _value_at(arguments, parameter.path)
        argument = ".".join(parameter.path)
        if value is None:
            if raw is not None:
                raise _mismatch(f"{display} is present but argument {argument!r} is not", request_id)
            continue
        if raw is None:
            raise _mismatch(f"{display} is required: argument {argument!r} is present", request_id)
        decoded = decode_header_value(raw)
        if decoded is None:
            raise _mismatch(f"{display} carries a malformed base64 value", request_id)
        if not _matches(parameter, value, decoded):
            raise _mismatch(f"{display} header does not match argument {argument!r}", request_id)
