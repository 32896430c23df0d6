"""Faults injected into real processes: a real redis-server, facade and worker subprocesses."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
import redis as redis_sync
from real_processes import running_stack, wait_until
from redis.exceptions import OutOfMemoryError

pytestmark = pytest.mark.redis_server


async def seed_post(url: str, tool: str, params: dict) -> tuple[int, dict]:
    payload = {"tool": tool, "params": params}
    async with aiohttp.ClientSession() as session, session.post(url, json=payload) as response:
        return response.status, await response.json()


async def test_a_full_redis_refusing_writes_does_not_kill_the_worker(tmp_path: Path):
    with running_stack(
        tmp_path,
        "--maxmemory-policy",
        "noeviction",
        TOOLQ_IDLE_POLL_SECONDS="0.2",
        TOOLQ_HEALTH_CHECK_SECONDS="0.2",
    ) as stack:
        _, url = stack.facade()
        worker = stack.worker("add-1", "--tools", "add")
        await asyncio.to_thread(stack.wait_for_workers, "add-1")
        assert (await seed_post(url, "add", {"a": 1, "b": 2}))[1]["result"]["sum"] == 3

        client = redis_sync.Redis.from_url(stack.redis.url)
        try:
            # Full: every write is refused (OOM), the worker's health key and heartbeat included.
            client.config_set("maxmemory", 1)
            with pytest.raises(OutOfMemoryError):
                client.set("probe", "x")
            await asyncio.sleep(1.5)
            assert worker.alive(), worker.output()
            status, body = await seed_post(url, "add", {"a": 1, "b": 2})
            assert status == 503, body  # refused at once as unavailable, not lost
            client.config_set("maxmemory", 0)
        finally:
            client.close()

        def serves_again() -> bool:
            return worker.alive() and "add-1" in stack.live_workers()

        await asyncio.to_thread(wait_until, serves_again, 10, "the worker to serve again")
        assert (await seed_post(url, "add", {"a": 20, "b": 22}))[1]["result"]["sum"] == 42
        assert "maxmemory" in worker.output()  # it did meet the refusals, and went on
