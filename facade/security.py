"""Who may talk to /mcp: Host and Origin checks (DNS rebinding) and bearer tokens."""

from __future__ import annotations

import hmac
import ipaddress
import math
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware
from redis.asyncio import Redis
from redis.exceptions import RedisError

from facade.settings import FacadeSettings, is_loopback, named_token
from workers import contract

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Paths that answer probes (load balancers, compose, Kubernetes) without credentials.
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
#: Paths an observer token (TOOLQ_OBSERVER_TOKENS) may read: what is measured, never a tool.
OBSERVER_PATHS = frozenset({"/metrics", "/status"})
#: What `AccessPolicy.authenticate` says of a good observer token presented anywhere else.
OUT_OF_SCOPE = ":out-of-scope"  # no token name has a colon
#: Where the middleware leaves the principal of a request: the name of its token, or None
#: when authentication is off.
PRINCIPAL = web.RequestKey("principal", str)


def _host_only(value: str) -> str:
    """'example.com:8000' -> 'example.com'; '[::1]:8000' -> '[::1]'."""
    if value.startswith("["):
        return value.split("]", maxsplit=1)[0] + "]"
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _matching(presented: bytes, tokens: tuple[tuple[str, bytes], ...]) -> str | None:
    """The name of the token `presented` is, compared with every one of them, always: the time
    taken says nothing about which one matched."""
    name = None
    for candidate, secret in tokens:
        if hmac.compare_digest(presented, secret):
            name = candidate
    return name


class AccessPolicy:
    def __init__(self, settings: FacadeSettings):
        self._tokens = tuple((name, secret.encode()) for name, secret in map(named_token, settings.tokens))
        self._proxies = settings.trusted_proxies
        self._observers = tuple(
            (name, secret.encode()) for name, secret in map(named_token, settings.observer_tokens)
        )
        self._origins = {origin.rstrip("/").lower() for origin in settings.allowed_origins}
        self._hosts = {host.lower() for host in settings.allowed_hosts}
        # Bound to loopback, only loopback names may appear in Host: that defeats DNS rebinding.
        self._check_host = bool(self._hosts) or is_loopback(settings.host)

    def host_allowed(self, host: str | None) -> bool:
        if not self._check_host or "*" in self._hosts:
            return True
        if not host:
            return False
        host = host.lower()
        return host in self._hosts or _host_only(host) in self._hosts or is_loopback(_host_only(host))

    def origin_allowed(self, origin: str | None) -> bool:
        if origin is None:
            return True  # not a browser, or a same-origin navigation
        if "*" in self._origins:
            return True
        origin = origin.rstrip("/").lower()
        if origin in self._origins:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and is_loopback(parts.hostname or "")

    def authenticate(self, authorization: str | None, *, observing: bool = False) -> str | bool | None:
        """The principal of a request: its token's name; None with authentication off; False
        for a missing or wrong token. An observer token names its principal where `observing`
        (OBSERVER_PATHS); anywhere else it is OUT_OF_SCOPE."""
        if not self._tokens:
            return None
        if not authorization or authorization[:7].lower() != "bearer ":
            return False
        presented = authorization[7:].strip().encode()
        principal = _matching(presented, self._tokens)
        observer = _matching(presented, self._observers)
        if principal is not None:
            return principal
        if observer is not None:
            return observer if observing else OUT_OF_SCOPE
        return False

    def client_address(self, request: web.Request) -> str:
        """The address failures are counted for: the peer's, unless the peer is a trusted proxy
        (TOOLQ_TRUSTED_PROXIES); then the right-most X-Forwarded-For address that is not one.
        Each proxy appends the address it saw, so only those right of the first untrusted one
        are known to be true: whatever a client writes itself stays on the left."""
        peer = request.remote or ""
        if not self._proxies or not self._is_proxy(_ip(peer)):
            return peer
        hops = [
            hop.strip() for value in request.headers.getall("X-Forwarded-For", ()) for hop in value.split(",")
        ]
        for hop in reversed(hops):
            ip = _ip(hop)
            if ip is None:
                return peer  # garbled: count it against its proxy
            if not self._is_proxy(ip):
                return hop
        return hops[0] if hops else peer  # proxies all the way (or no header): the first

    def _is_proxy(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return ip is not None and any(ip in network for network in self._proxies)

    @property
    def requires_token(self) -> bool:
        return bool(self._tokens)


class AuthFailures:
    """Wrong or missing tokens per client address, counted in Redis by every replica in
    one-minute windows: an address over the limit is refused (429) without its token being
    looked at, until its window ends. The address is the peer's, or behind a trusted proxy the
    client's (AccessPolicy.client_address).

    Nothing is counted for a request with a good token: this costs Redis nothing on the way of
    a call. If Redis cannot count, tokens are still checked: only the limit lapses.
    """

    def __init__(self, redis: Redis, per_minute: int):
        self._redis = redis
        self._per_minute = per_minute
        #: Addresses over the limit -> the monotonic time their window ends.
        self._blocked: dict[str, float] = {}
        #: Told of every refusal (the reason), for the metrics.
        self.on_refused: Callable[[str], None] | None = None

    def retry_after(self, address: str) -> int | None:
        """Seconds until `address` may try again, if it is refused now."""
        until = self._blocked.get(address)
        if until is None:
            return None
        left = until - time.monotonic()
        if left <= 0:
            del self._blocked[address]
            return None
        return max(1, math.ceil(left))

    def refused(self) -> None:
        """A request was turned away for its address's failures (counted by `on_refused`)."""
        if self.on_refused is not None:
            self.on_refused("auth_rate_limited")

    async def failed(self, address: str) -> int | None:
        """Count a failure; seconds to wait if it put the address over the limit."""
        if self._per_minute <= 0:
            return None
        now = time.time()
        window = int(now // 60)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(contract.auth_failures_key(address, window))
                pipe.expire(contract.auth_failures_key(address, window), 120)
                count, _ = await pipe.execute()
        except (RedisError, OSError):
            return None
        if count <= self._per_minute:
            return None
        left = 60 - (now % 60)
        self._blocked[address] = time.monotonic() + left
        if len(self._blocked) > 100_000:  # bounded, whoever floods it
            self._blocked.pop(next(iter(self._blocked)))
        return max(1, math.ceil(left))


def too_many_failures(retry_after: int) -> web.Response:
    return web.json_response(
        {"error": "too_many_requests", "error_description": "too many failed authentications; retry later"},
        status=429,
        headers={"Retry-After": str(retry_after)},
    )


def access_middleware(policy: AccessPolicy, failures: AuthFailures | None = None) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        if not policy.host_allowed(request.headers.get("Host")):
            return web.json_response({"error": "Misdirected Request: Host not allowed"}, status=421)
        if not policy.origin_allowed(request.headers.get("Origin")):
            return web.json_response({"error": "Forbidden: Origin not allowed"}, status=403)
        address = ""
        if failures is not None and policy.requires_token:
            # Only the failure limit needs the client's address (behind proxies, a header to read).
            address = policy.client_address(request)
            wait = failures.retry_after(address)
            if wait is not None:
                failures.refused()
                return too_many_failures(wait)
        authorization = request.headers.get("Authorization")
        principal = policy.authenticate(authorization, observing=request.path in OBSERVER_PATHS)
        if principal == OUT_OF_SCOPE:
            # RFC 6750: a good token that does not grant this resource.
            return web.json_response(
                {
                    "error": "insufficient_scope",
                    "error_description": "this token may read /metrics and /status only",
                },
                status=403,
                headers={"WWW-Authenticate": 'Bearer realm="toolq", error="insufficient_scope"'},
            )
        if principal is False:
            if failures is not None:
                wait = await failures.failed(address)
                if wait is not None:
                    failures.refused()
                    return too_many_failures(wait)
            challenge = 'Bearer realm="toolq"'
            if authorization:
                challenge += ', error="invalid_token"'
            return web.json_response(
                {"error": "unauthorized", "error_description": "a valid bearer token is required"},
                status=401,
                headers={"WWW-Authenticate": challenge},
            )
        if isinstance(principal, str):
            request[PRINCIPAL] = principal
        return await handler(request)

    return middleware
