"""Facade process settings: one dataclass, filled from the environment and then from flags."""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import os
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


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


@dataclass(frozen=True)
class FacadeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    redis_url: str = DEFAULT_REDIS_URL
    #: Bearer tokens accepted on /mcp, each `name:secret` or a bare secret; empty means no
    #: authentication. The name is the principal: what a token's sessions belong to.
    tokens: tuple[str, ...] = ()
    #: Listening beyond loopback without tokens is refused unless this is set.
    allow_unauthenticated: bool = False
    #: Origins allowed besides loopback ones (scheme://host[:port]); "*" allows any.
    allowed_origins: tuple[str, ...] = ()
    #: Host header values allowed besides loopback ones (host or host:port); "*" allows any.
    allowed_hosts: tuple[str, ...] = ()
    max_body_bytes: int = 1_048_576
    #: The longest any call may wait for its result, whatever the tool's own timeout says.
    max_call_seconds: float = 120.0
    #: Extra seconds the facade waits beyond a tool's timeout (queueing, network).
    call_grace_seconds: float = 5.0
    #: A session unused this long is forgotten (sliding).
    session_ttl_seconds: int = 3600
    #: A session seen valid this recently is not looked up again (0: look up on every request).
    session_recheck_seconds: float = 1.0
    #: Sessions one principal (token) may have; opening one more ends its least recently used.
    max_sessions_per_principal: int = 10_000
    page_size: int = 100
    #: How long a stateless-era client may cache `server/discover` (ttlMs).
    discover_ttl_seconds: float = 300.0
    #: How long a stateless-era client may cache `tools/list` (ttlMs). 0 by default: tools come
    #: and go with workers, and clients are not yet told when they do (listChanged is false).
    tools_list_ttl_seconds: float = 0.0
    #: A call silent this long switches its response to SSE and sends keep-alive comments, so
    #: proxies and clients with idle timeouts do not cut it (0: never).
    sse_keepalive_seconds: float = 15.0
    log_level: str = "INFO"

    @property
    def public_url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}/mcp"

    def check_exposure(self) -> str | None:
        """Why these settings must not be served, or None."""
        if not is_loopback(self.host) and not self.tokens and not self.allow_unauthenticated:
            return (
                f"refusing to listen on {self.host} without authentication: set TOOLQ_TOKENS "
                "(comma-separated bearer tokens) or pass --allow-unauthenticated"
            )
        return None

    @classmethod
    def from_env(cls) -> FacadeSettings:
        return cls(
            host=os.environ.get("TOOLQ_HOST", "127.0.0.1"),
            port=int(os.environ.get("TOOLQ_PORT", "8000")),
            redis_url=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
            tokens=_csv(os.environ.get("TOOLQ_TOKENS")),
            allow_unauthenticated=os.environ.get("TOOLQ_ALLOW_UNAUTHENTICATED", "") in ("1", "true", "yes"),
            allowed_origins=_csv(os.environ.get("TOOLQ_ALLOWED_ORIGINS")),
            allowed_hosts=_csv(os.environ.get("TOOLQ_ALLOWED_HOSTS")),
            max_body_bytes=int(os.environ.get("TOOLQ_MAX_BODY_BYTES", "1048576")),
            max_call_seconds=_env_float("TOOLQ_MAX_CALL_SECONDS", 120.0),
            session_ttl_seconds=int(os.environ.get("TOOLQ_SESSION_TTL_SECONDS", "3600")),
            session_recheck_seconds=_env_float("TOOLQ_SESSION_RECHECK_SECONDS", 1.0),
            max_sessions_per_principal=int(os.environ.get("TOOLQ_MAX_SESSIONS_PER_PRINCIPAL", "10000")),
            page_size=int(os.environ.get("TOOLQ_PAGE_SIZE", "100")),
            discover_ttl_seconds=_env_float("TOOLQ_DISCOVER_TTL_SECONDS", 300.0),
            tools_list_ttl_seconds=_env_float("TOOLQ_TOOLS_LIST_TTL_SECONDS", 0.0),
            sse_keepalive_seconds=_env_float("TOOLQ_SSE_KEEPALIVE_SECONDS", 15.0),
            log_level=os.environ.get("TOOLQ_LOG_LEVEL", "INFO").upper(),
        )


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
        "--allow-unauthenticated",
        action="store_true",
        help="serve beyond loopback without bearer tokens (env TOOLQ_ALLOW_UNAUTHENTICATED=1)",
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING (env TOOLQ_LOG_LEVEL; default INFO)")
    args = parser.parse_args(argv)
    return replace(
        base,
        host=args.host or base.host,
        port=args.port if args.port is not None else base.port,
        redis_url=args.redis_url or base.redis_url,
        allow_unauthenticated=args.allow_unauthenticated or base.allow_unauthenticated,
        log_level=(args.log_level or base.log_level).upper(),
    )


def redact_url(url: str) -> str:
    """The URL with any password replaced, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
