"""How jobs reach the workers of a pool: each job is taken by one worker (the pool's ready list),
so a call costs the same Redis commands however many workers the pool has, and jobs spread over
the workers; real redis-server, facade and worker processes."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
import redis as redis_sync
from real_processes import running_stack

pytestmark = pytest.mark.redis_server


def commands(url: str) -> int:
    client = redis_sync.Redis.from_url(url)
    try:
        return sum(int(stats["calls"]) for stats in client.info("commandstats").values())
    finally:
        client.close()


STATELESS = "2026-07-28"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": STATELESS,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "intake-tests", "version": "1"},
}
HEADERS = {
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": STATELESS,
    "Mcp-Method": "tools/call",
    "Mcp-Name": "add",
}


async def calls(url: str, count: int, concurrency: int) -> Counter[str]:
    """`count` calls of `add`, `concurrency` at a time: how many each worker answered."""
    answered: Counter[str] = Counter()
    async with aiohttp.ClientSession() as session:

        async def caller(offset: int) -> None:
            for i in range(offset, count, concurrency):
                params = {"name": "add", "arguments": {"a": i, "b": 1}, "_meta": ENVELOPE}
                message = {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params}
                async with session.post(url, json=message, headers=HEADERS) as response:
                    body = await response.json()
                result = body["result"]
                assert result["structuredContent"]["sum"] == i + 1, body
                answered[result["_meta"]["toolq/worker"]] += 1

        await asyncio.gather(*(caller(n) for n in range(concurrency)))
    return answered


def redis_commands_per_call(directory: Path, workers: int) -> float:
    directory.mkdir()
    with running_stack(directory) as stack:
        _, url = stack.facade()
        names = [f"add-{n}" for n in range(workers)]
        for name in names:
            stack.worker(name, "--tools", "add", "--pool", "add")
        stack.wait_for_workers(*names)
        asyncio.run(calls(url, 50, 8))  # warm
        before = commands(stack.redis.url)
        asyncio.run(calls(url, 400, 8))
        return (commands(stack.redis.url) - before) / 400


def test_a_call_costs_the_same_redis_commands_with_one_worker_or_four(tmp_path: Path):
    one = redis_commands_per_call(tmp_path / "one", 1)
    four = redis_commands_per_call(tmp_path / "four", 4)
    print(f"\nRedis commands per call: {one:.1f} with one worker, {four:.1f} with four")
    # Every worker of the pool trying every job would cost about three claims more per call.
    assert four < one * 1.15 + 1, (one, four)


async def test_jobs_spread_over_the_workers_of_a_pool(tmp_path: Path):
    with running_stack(tmp_path) as stack:
        _, url = stack.facade()
        names = [f"spread-{n}" for n in range(3)]
        for name in names:
            stack.worker(name, "--tools", "add", "--pool", "add")
        await asyncio.to_thread(stack.wait_for_workers, *names)
        answered = await calls(url, 300, 6)
    print(f"\njobs per worker: {dict(answered)}")
    assert set(answered) == set(names), answered
    assert min(answered.values()) >= 30, answered  # none of the three left idle
