"""Handshake-era sessions (`Mcp-Session-Id`), kept in Redis with a sliding TTL.

Any facade process can serve any session: nothing about a session lives in process memory.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from workers import contract

#: Visible ASCII, as the spec requires; we issue 43 url-safe characters.
SESSION_ID = re.compile(r"^[\x21-\x7e]{1,256}$")


@dataclass(frozen=True)
class Session:
    id: str
    protocol_version: str
    client_info: dict[str, Any]


class SessionStore:
    def __init__(self, redis: Redis, ttl_seconds: int):
        self._redis = redis
        self._ttl = ttl_seconds

    async def create(self, protocol_version: str, client_info: dict[str, Any]) -> Session:
        session = Session(secrets.token_urlsafe(32), protocol_version, client_info)
        record = {
            "protocol_version": protocol_version,
            "client_info": client_info,
            "created_at": time.time(),
        }
        await self._redis.set(contract.session_key(session.id), contract.dumps(record), ex=self._ttl)
        return session

    async def get(self, session_id: str) -> Session | None:
        """The session, its TTL renewed; None if it is unknown, expired or ended."""
        if not SESSION_ID.match(session_id):
            return None
        raw = await self._redis.getex(contract.session_key(session_id), ex=self._ttl)
        if raw is None:
            return None
        record = contract.loads(raw)
        return Session(session_id, record["protocol_version"], record.get("client_info") or {})

    async def delete(self, session_id: str) -> bool:
        if not SESSION_ID.match(session_id):
            return False
        return bool(await self._redis.delete(contract.session_key(session_id)))
