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


def _key(session_id: str) -> str:
    """A session's Redis key names a digest of its id, never the id: whoever can list Redis's
    keys learns no session id from them."""
    return contract.session_key(hashlib.sha256(session_id.encode()).hexdigest())


class RedisSessionStore:
    """Sessions in Redis, with a short local memory of the ones seen valid.

    A request whose session this process confirmed less than `recheck_seconds` ago skips the
    round trip to Redis; a session ended (or a log level set) through another facade process
    therefore shows here within that long. Every Redis failure is StoreUnavailable.
    """

    def __init__(
        self, redis: Redis, ttl_seconds: int, *, recheck_seconds: float = 1.0, remember: int = 10_000
    ):
        self._redis = redis
        self._ttl = ttl_seconds
        self._recheck = recheck_seconds
        self._remember = remember
        self._seen: OrderedDict[str, tuple[Session, float]] = OrderedDict()

    async def create(
        self,
        protocol_version: str,
        client_info: dict[str, Any],
        client_capabilities: dict[str, Any],
        principal: str | None,
    ) -> Session:
        session = Session(
            secrets.token_urlsafe(32), protocol_version, client_info, client_capabilities, principal=principal
        )
        await self._store(session, created_at=time.time())
        self._remember_valid(session)
        return session

    async def get(self, session_id: str) -> Session | None:
        """The session, its TTL renewed; None if it is unknown, expired or ended."""
        seen = self._seen.get(session_id)
        if seen is not None and time.monotonic() - seen[1] < self._recheck:
            return seen[0]
        if not SESSION_ID.match(session_id):
            return None
        try:
            raw = await self._redis.getex(_key(session_id), ex=self._ttl)
        except (RedisError, OSError) as exc:
            raise store_unavailable("the session store", exc) from exc
        if raw is None:
            self._seen.pop(session_id, None)
            return None
        record = contract.loads(raw)
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
        await self._store(updated, created_at=None)
        self._remember_valid(updated)

    async def delete(self, session_id: str) -> bool:
        self._seen.pop(session_id, None)
        if not SESSION_ID.match(session_id):
            return False
        try:
            return bool(await self._redis.delete(_key(session_id)))
        except (RedisError, OSError) as exc:
            raise store_unavailable("the session store", exc) from exc

    async def _store(self, session: Session, *, created_at: float | None) -> None:
        record: dict[str, Any] = {
            "protocol_version": session.protocol_version,
            "client_info": session.client_info,
            "client_capabilities": session.client_capabilities,
            "log_level": session.log_level,
            "principal": session.principal,
        }
        if created_at is not None:
            record["created_at"] = created_at
        try:
            await self._redis.set(_key(session.id), contract.dumps(record), ex=self._ttl)
        except (RedisError, OSError) as exc:
            raise store_unavailable("the session store", exc) from exc

    def _remember_valid(self, session: Session) -> None:
        self._seen[session.id] = (session, time.monotonic())
        self._seen.move_to_end(session.id)
        while len(self._seen) > self._remember:
            self._seen.popitem(last=False)
