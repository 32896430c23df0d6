"""Handshake-era sessions (`Mcp-Session-Id`), kept in Redis with a sliding TTL.

Any facade process can serve any session: nothing about a session lives only in process memory.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from facade.errors import store_unavailable
from facade.protocol.handshake import Session
from workers import contract

__all__ = ["SESSION_ID", "RedisSessionStore"]

#: Visible ASCII, as the spec requires; we issue 43 url-safe characters.
SESSION_ID = re.compile(r"^[\x21-\x7e]{1,256}$")


#: What a session keeps of a client's self-description: a few short strings, a few names.
MAX_TEXT = 200
MAX_NAMES = 32


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _key(session_id: str) -> str:
    """A session's Redis key names a digest of its id, never the id: whoever can list Redis's
    keys learns no session id from them."""
    return contract.session_key(_digest(session_id))


def bounded_client_info(info: dict[str, Any]) -> dict[str, Any]:
    """The client's name, title and version, cut short: never a client's megabyte."""
    return {
        key: info[key][:MAX_TEXT] for key in ("name", "title", "version") if isinstance(info.get(key), str)
    }


def bounded_capabilities(capabilities: dict[str, Any]) -> dict[str, Any]:
    """The names of the declared capabilities (and extensions): what the missing-capability
    check reads, and nothing a client could grow."""
    names = [name for name in capabilities if isinstance(name, str) and len(name) <= MAX_TEXT][:MAX_NAMES]
    kept: dict[str, Any] = {name: {} for name in names}
    extensions = capabilities.get("extensions")
    if "extensions" in kept and isinstance(extensions, dict):
        ext = [name for name in extensions if isinstance(name, str) and len(name) <= MAX_TEXT][:MAX_NAMES]
        kept["extensions"] = {name: {} for name in ext}
    return kept


class RedisSessionStore:
    """Sessions in Redis, with a short local memory of the ones seen valid.

    A request whose session this process confirmed less than `recheck_seconds` ago skips the
    round trip to Redis; a session ended (or a log level set) through another facade process
    therefore shows here within that long. Every Redis failure is StoreUnavailable.

    Bounded: a session keeps a few short strings of what the client said about itself, and a
    principal keeps at most `per_principal` sessions (opening one more ends its least recently
    used). Each principal's sessions are indexed by last use in a sorted set.
    """

    def __init__(
        self,
        redis: Redis,
        ttl_seconds: int,
        *,
        recheck_seconds: float = 1.0,
        remember: int = 10_000,
        per_principal: int = 10_000,
    ):
        self._redis = redis
        self._ttl = ttl_seconds
        self._recheck = recheck_seconds
        self._remember = remember
        self._per_principal = per_principal
        self._seen: OrderedDict[str, tuple[Session, float]] = OrderedDict()

    async def create(
        self,
        protocol_version: str,
        client_info: dict[str, Any],
        client_capabilities: dict[str, Any],
        principal: str | None,
    ) -> Session:
        session = Session(
            secrets.token_urlsafe(32),
            protocol_version,
            bounded_client_info(client_info),
            bounded_capabilities(client_capabilities),
            principal=principal,
        )
        index = contract.session_index_key(principal)
        now_ms = int(time.time() * 1000)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(_key(session.id), contract.dumps(self._record(session)), ex=self._ttl)
                pipe.zadd(index, {_digest(session.id): now_ms})
                pipe.zremrangebyscore(index, "-inf", now_ms - self._ttl * 1000)
                pipe.expire(index, self._ttl)
                pipe.zcard(index)
                *_, count = await pipe.execute()
            if count > self._per_principal:
                await self._end_least_recent(index, count - self._per_principal)
        except (RedisError, OSError) as exc:
            raise store_unavailable("the session store", exc) from exc
        self._remember_valid(session)
        return session

    async def _end_least_recent(self, index: str, count: int) -> None:
        oldest = await self._redis.zpopmin(index, count)
        if oldest:
            await self._redis.delete(*[contract.session_key(digest.decode()) for digest, _ in oldest])

    async def get(self, session_id: str) -> Session | None:
        """The session, its TTL renewed; None if it is unknown, expired or ended."""
        seen = self._seen.get(session_id)
        if seen is not None and time.monotonic() - seen[1] < self._recheck:
            return seen[0]
        if not SESSION_ID.match(session_id):
            return None
        try:
            raw = await self._redis.getex(_key(session_id), ex=self._ttl)
            if raw is not None:
                record = contract.loads(raw)
                index = contract.session_index_key(record.get("principal"))
                await self._redis.zadd(index, {_digest(session_id): int(time.time() * 1000)}, xx=True)
        except (RedisError, OSError) as exc:
            raise store_unavailable("the session store", exc) from exc
        if raw is None:
            self._seen.pop(session_id, None)
            return None
        session = Session(
            session_id,
            record["protocol_version"],
            record.get("client_info") or {},
            record.get("client_capabilities") or {},
            log_level=record.get("log_level"),
            principal=record.get("principal"),
        )
        self._remember_valid(session)
        return session

    async def set_log_level(self, session: Session, level: str) -> None:
        updated = replace(session, log_level=level)
        try:
            await self._redis.set(_key(session.id), contract.dumps(self._record(updated)), ex=self._ttl)
        except (RedisError, OSError) as exc:
            raise store_unavailable("the session store", exc) from exc
        self._remember_valid(updated)

    async def delete(self, session_id: str) -> bool:
        self._seen.pop(session_id, None)
        if not SESSION_ID.match(session_id):
            return False
        try:
            raw = await self._redis.getdel(_key(session_id))
            if raw is not None:
                index = contract.session_index_key(contract.loads(raw).get("principal"))
                await self._redis.zrem(index, _digest(session_id))
        except (RedisError, OSError) as exc:
            raise store_unavailable("the session store", exc) from exc
        return raw is not None

    @staticmethod
    def _record(session: Session) -> dict[str, Any]:
        return {
            "protocol_version": session.protocol_version,
            "client_info": session.client_info,
            "client_capabilities": session.client_capabilities,
            "log_level": session.log_level,
            "principal": session.principal,
        }

    def _remember_valid(self, session: Session) -> None:
        self._seen[session.id] = (session, time.monotonic())
        self._seen.move_to_end(session.id)
        while len(self._seen) > self._remember:
            self._seen.popitem(last=False)
