"""A worker's entry in the tool registry: published on start, renewed by heartbeat, removed on exit.

`tools/list` in any facade is the union of the tools of the workers whose entry is live, so a
worker started with a new tool shows up without restarting anything, and a tool whose last
worker died disappears within WORKER_TTL_SECONDS.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from workers import contract

log = logging.getLogger("toolq.registry")

#: Every this many heartbeats (about a minute) a worker prunes the entries of dead workers.
PRUNE_EVERY_BEATS = 12


@dataclass
class Registration:
    worker_id: str
    pool: str
    queue: str
    specs: list[dict[str, Any]]
    host: str
    pid: int
    started_at: float = field(default_factory=time.time)
    concurrency: int = 1
    lease_seconds: float = 10.0
    #: How many jobs the worker runs now (reported with each heartbeat, for `toolq status`).
    running: Callable[[], int] | None = None

    def info(self) -> contract.WorkerInfo:
        info: contract.WorkerInfo = {
            "worker_id": self.worker_id,
            "pool": self.pool,
            "queue": self.queue,
            "tools": self.specs,
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at,
            "concurrency": self.concurrency,
            "lease_seconds": self.lease_seconds,
        }
        if self.running is not None:
            info["running"] = self.running()
        return info

    async def publish(self, redis: Redis, *, announce: bool, prune: bool = True) -> None:
        """Renew this worker's entry (two commands, one round trip: what an idle worker costs
        Redis every HEARTBEAT_SECONDS). `announce`: it is new (or back after an outage), so
        facades are told and entry and tool names are written together; `prune`: drop the
        entries of workers that died without leaving."""
        now_ms = int(time.time() * 1000)
        ttl_ms = int(contract.WORKER_TTL_SECONDS * 1000)
        async with redis.pipeline(transaction=announce) as pipe:
            pipe.set(contract.worker_key(self.worker_id), contract.dumps(self.info()), px=ttl_ms)
            pipe.zadd(contract.WORKERS_LIVE, {self.worker_id: now_ms + ttl_ms})
            if prune or announce:
                pipe.zremrangebyscore(contract.WORKERS_LIVE, "-inf", now_ms)
            if announce:
                pipe.sadd(contract.TOOLS_EVER_SERVED, *[spec["name"] for spec in self.specs])
                pipe.publish(contract.REGISTRY_CHANNEL, self.worker_id)
            await pipe.execute()

    async def keep_alive(self, redis: Redis) -> None:
        """Publish now, then renew every HEARTBEAT_SECONDS; re-announce after an outage. Facades
        read only the live entries, so the dead are pruned now and then, not on every beat."""
        announce = True
        for beat in itertools.count():
            try:
                await self.publish(redis, announce=announce, prune=beat % PRUNE_EVERY_BEATS == 0)
                announce = False
            except (RedisError, OSError) as exc:
                log.warning("registry heartbeat failed: %s", exc)
                announce = True
                await asyncio.sleep(1.0)
                continue
            await asyncio.sleep(contract.HEARTBEAT_SECONDS)

    async def leave(self, redis: Redis) -> None:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zrem(contract.WORKERS_LIVE, self.worker_id)
            pipe.delete(contract.worker_key(self.worker_id))
            pipe.publish(contract.REGISTRY_CHANNEL, self.worker_id)
            await pipe.execute()
