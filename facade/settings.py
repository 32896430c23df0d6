"""Facade process settings: one validated dataclass, filled from the environment, then flags.

A value that cannot be served (`TOOLQ_PORT=abc`, `TOOLQ_PAGE_SIZE=0`, a negative duration) is a
SettingsError at start-up that names the variable, never a traceback or a fault later on.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import asdict
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

from workers.settings import environment_values

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


_TOKEN_NAME = re.compile(r"^([A-Za-z0-9_.-]{1,64}):(.+)$")


def named_token(entry: str) -> tuple[str, str]:
    """A TOOLQ_TOKENS entry as (principal name, secret): `alice:SECRET` names its principal;
    a bare `SECRET` is named after a digest of itself, so the name stays the same across restarts
    and says nothing of the secret."""
    match = _TOKEN_NAME.match(entry)
    if match:
        return match[1], match[2]
    return "token-" + hashlib.sha256(entry.encode()).hexdigest()[:12], entry


@lru_cache(maxsize=1024)
def is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _network(value: Any) -> Any:
    """'10.0.0.0/8', '192.0.2.7' or '2001:db8::/32' as a network; a bad one is a clear error."""
    if isinstance(value, str):
        try:
            return ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network") from None
    return value


IPNetwork = Annotated[ipaddress.IPv4Network | ipaddress.IPv6Network, BeforeValidator(_network)]
Seconds = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class SettingsError(ValueError):
    """Settings that cannot be served, said in the words of the variables that were set."""


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class FacadeSettings:
    """Every setting of the facade, checked when made: a bad value is a clear error at start-up."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    redis_url: str = DEFAULT_REDIS_URL
    #: Processes answering on the port (SO_REUSEPORT; facade/process_group.py): one answers on
    #: one core, so where the facade is the bound, more take more calls.
    processes: Annotated[int, Field(ge=1, le=64)] = 1
    #: Bearer tokens accepted on /mcp, each `name:secret` or a bare secret; empty means no
    #: authentication. The name is the principal: what a token's sessions belong to.
    tokens: tuple[str, ...] = ()
    #: Bearer tokens that may read GET /metrics and GET /status and nothing else (Prometheus',
    #: a dashboard's), each `name:secret` or a bare secret: a leaked scrape token calls no tool.
    #: They need TOOLQ_TOKENS: without call tokens there is nothing to keep /mcp behind.
    observer_tokens: tuple[str, ...] = ()
    #: Listening beyond loopback without tokens is refused unless this is set.
    allow_unauthenticated: bool = False
    #: Origins allowed besides loopback ones (scheme://host[:port]); "*" allows any.
    allowed_origins: tuple[str, ...] = ()
    #: Host header values allowed besides loopback ones (host or host:port); "*" allows any.
    allowed_hosts: tuple[str, ...] = ()
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1_048_576
    #: The longest any call may wait for its result, whatever the tool's own timeout says.
    max_call_seconds: Positive = 120.0
    #: Extra seconds the facade waits beyond a tool's timeout (queueing, network).
    call_grace_seconds: Seconds = 5.0
    #: A session unused this long is forgotten (sliding).
    session_ttl_seconds: Annotated[int, Field(ge=1)] = 3600
    #: A session seen valid this recently is not looked up again (0: look up on every request).
    session_recheck_seconds: Seconds = 1.0
    #: Sessions one principal (token) may have; opening one more ends its least recently used.
    max_sessions_per_principal: Annotated[int, Field(ge=1)] = 10_000
    page_size: Annotated[int, Field(ge=1, le=1000)] = 100
    #: Admission control: the most calls one pool holds (queued and running). Below that, a pool
    #: holds what it can work off within half a call's time at the tool's recent pace, or
    #: `backlog_per_slot` per worker slot while that pace is not known; beyond, calls are refused
    #: at once with a retry-after hint.
    max_queue_depth: Annotated[int, Field(ge=1)] = 10_000
    backlog_per_slot: Annotated[int, Field(ge=1)] = 100
    #: Rate limits shared by every replica (token buckets in Redis); 0: no limit. A burst of 0
    #: is twice the rate.
    principal_calls_per_second: Seconds = 0.0
    principal_burst: Annotated[int, Field(ge=0)] = 0
    tool_calls_per_second: Seconds = 0.0
    tool_burst: Annotated[int, Field(ge=0)] = 0
    #: Wrong or missing tokens one client address may present per minute before it is refused
    #: (429) without the token being looked at; 0: no limit.
    auth_failures_per_minute: Annotated[int, Field(ge=0)] = 30
    #: Proxies (addresses or networks) whose X-Forwarded-For names the client: behind an ingress
    #: or load balancer, the failures above are counted per client, not for the proxy's address
    #: (which every client shares). The header of any other peer is ignored.
    trusted_proxies: tuple[IPNetwork, ...] = ()
    #: How long a stateless-era client may cache `server/discover` (ttlMs).
    discover_ttl_seconds: Seconds = 300.0
    #: How long a stateless-era client may cache `tools/list` (ttlMs). 0 by default: tools come
    #: and go with workers, and only a client that listens (subscriptions/listen) is told.
    tools_list_ttl_seconds: Seconds = 0.0
    #: A call silent this long switches its response to SSE and sends keep-alive comments, so
    #: proxies and clients with idle timeouts do not cut it (0: never).
    sse_keepalive_seconds: Seconds = 15.0
    #: A call from a client that takes tasks (2026-07-28) is answered inline if it ends within
    #: this; only a call still running then becomes a task.
    task_inline_seconds: Seconds = 1.0
    #: How long a task and its result are kept when the client names no TTL (and the most it
    #: may name); never less than the call's deadline plus a minute.
    task_ttl_seconds: Positive = 3600.0
    task_max_ttl_seconds: Positive = 86400.0
    #: How often a task's client is asked to poll it (pollInterval).
    task_poll_seconds: Positive = 1.0
    log_level: LogLevel = "INFO"
    #: `text` (readable lines) or `json` (one object per line).
    log_format: Literal["text", "json"] = "text"
    #: One log line per MCP request at INFO (request and job ids, tool, principal, outcome,
    #: queue wait, run and total time).
    log_calls: bool = True
    #: Record metrics (GET /metrics, Prometheus' text format; behind the tokens when set).
    metrics: bool = True

    @property
    def public_url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}/mcp"

    def check_exposure(self) -> str | None:
        """Why these settings must not be served, or None."""
        if self.observer_tokens and not self.tokens:
            return (
                "TOOLQ_OBSERVER_TOKENS is set without TOOLQ_TOKENS: /metrics and /status would "
                "need a token while /mcp needs none; set TOOLQ_TOKENS too, or neither"
            )
        if not is_loopback(self.host) and not self.tokens and not self.allow_unauthenticated:
            return (
                f"refusing to listen on {self.host} without authentication: set TOOLQ_TOKENS "
                "(comma-separated bearer tokens) or pass --allow-unauthenticated"
            )
        return None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> FacadeSettings:
        """The settings the environment names (unset and empty variables keep the defaults)."""
        return checked(cls, environment_values(environ, ENVIRONMENT, LISTS, _csv))


#: The environment variable of each setting.
ENVIRONMENT = {
    "host": "TOOLQ_HOST",
    "port": "TOOLQ_PORT",
    "redis_url": "REDIS_URL",
    "processes": "TOOLQ_FACADE_PROCESSES",
    "tokens": "TOOLQ_TOKENS",
    "observer_tokens": "TOOLQ_OBSERVER_TOKENS",
    "allow_unauthenticated": "TOOLQ_ALLOW_UNAUTHENTICATED",
    "allowed_origins": "TOOLQ_ALLOWED_ORIGINS",
    "allowed_hosts": "TOOLQ_ALLOWED_HOSTS",
    "max_body_bytes": "TOOLQ_MAX_BODY_BYTES",
    "max_call_seconds": "TOOLQ_MAX_CALL_SECONDS",
    "call_grace_seconds": "TOOLQ_CALL_GRACE_SECONDS",
    "session_ttl_seconds": "TOOLQ_SESSION_TTL_SECONDS",
    "session_recheck_seconds": "TOOLQ_SESSION_RECHECK_SECONDS",
    "max_sessions_per_principal": "TOOLQ_MAX_SESSIONS_PER_PRINCIPAL",
    "page_size": "TOOLQ_PAGE_SIZE",
    "max_queue_depth": "TOOLQ_MAX_QUEUE_DEPTH",
    "backlog_per_slot": "TOOLQ_BACKLOG_PER_SLOT",
    "principal_calls_per_second": "TOOLQ_PRINCIPAL_CALLS_PER_SECOND",
    "principal_burst": "TOOLQ_PRINCIPAL_BURST",
    "tool_calls_per_second": "TOOLQ_TOOL_CALLS_PER_SECOND",
    "tool_burst": "TOOLQ_TOOL_BURST",
    "auth_failures_per_minute": "TOOLQ_AUTH_FAILURES_PER_MINUTE",
    "trusted_proxies": "TOOLQ_TRUSTED_PROXIES",
    "discover_ttl_seconds": "TOOLQ_DISCOVER_TTL_SECONDS",
    "tools_list_ttl_seconds": "TOOLQ_TOOLS_LIST_TTL_SECONDS",
    "sse_keepalive_seconds": "TOOLQ_SSE_KEEPALIVE_SECONDS",
    "task_inline_seconds": "TOOLQ_TASK_INLINE_SECONDS",
    "task_ttl_seconds": "TOOLQ_TASK_TTL_SECONDS",
    "task_max_ttl_seconds": "TOOLQ_TASK_MAX_TTL_SECONDS",
    "task_poll_seconds": "TOOLQ_TASK_POLL_SECONDS",
    "log_level": "TOOLQ_LOG_LEVEL",
    "log_format": "TOOLQ_LOG_FORMAT",
    "log_calls": "TOOLQ_LOG_CALLS",
    "metrics": "TOOLQ_METRICS",
}
LISTS = frozenset({"tokens", "observer_tokens", "allowed_origins", "allowed_hosts", "trusted_proxies"})


def checked(cls: type[FacadeSettings], values: dict[str, Any]) -> FacadeSettings:
    """`cls(**values)`, or a SettingsError naming each bad variable and why it is bad."""
    try:
        return cls(**values)
    except ValidationError as exc:
        problems = [
            f"{ENVIRONMENT.get(str(error['loc'][0]), error['loc'][0])}={error.get('input')!r}: {error['msg']}"
            for error in exc.errors(include_url=False)
        ]
        raise SettingsError("; ".join(problems)) from None


def parse_args(argv: list[str] | None = None) -> FacadeSettings:
    base = FacadeSettings.from_env()
    parser = argparse.ArgumentParser(
        prog="python -m facade",
        description="Run the toolq facade: MCP over Streamable HTTP at /mcp, tools run on arq workers.",
    )
    parser.add_argument("--host", help=f"interface to listen on (env TOOLQ_HOST; default {base.host})")
    parser.add_argument("--port", type=int, help=f"port (env TOOLQ_PORT; default {base.port})")
    parser.add_argument("--redis-url", help=f"Redis URL (env REDIS_URL; default {DEFAULT_REDIS_URL})")
    parser.add_argument(
        "--processes",
        type=int,
        help=f"processes answering on the port (env TOOLQ_FACADE_PROCESSES; default {base.processes})",
    )
    parser.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="serve beyond loopback without bearer tokens (env TOOLQ_ALLOW_UNAUTHENTICATED=1)",
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING (env TOOLQ_LOG_LEVEL; default INFO)")
    args = parser.parse_args(argv)
    flags = {
        "host": args.host,
        "port": args.port,
        "redis_url": args.redis_url,
        "processes": args.processes,
        "allow_unauthenticated": args.allow_unauthenticated or None,
        "log_level": args.log_level.upper() if args.log_level else None,
    }
    return checked(FacadeSettings, {**asdict(base), **{k: v for k, v in flags.items() if v is not None}})


def redact_url(url: str) -> str:
    """The URL with any password replaced, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
