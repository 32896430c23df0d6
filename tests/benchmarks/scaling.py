"""How toolq's throughput and Redis cost per call change with the size of one worker pool.

Starts its own redis-server, one facade and 1, 2, 4, 8 workers serving `add` in one pool (all on
loopback), and for each pool size runs closed-loop callers (the seed format: the least client
work per call) for a few seconds. Reports calls/s and Redis commands per call (from INFO
commandstats), so that the cost of a call can be seen not to grow with the pool.

    .venv/bin/python tests/benchmarks/scaling.py [--workers 1,2,4,8] [--concurrency 32] [--seconds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from real_processes import running_stack


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (Linux /proc)."""
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def commands(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
        return sum(int(value["calls"]) for value in stats.values())
    finally:
        client.close()


async def load(url: str, concurrency: int, seconds: float) -> int:
    done = 0
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency + 4)) as session:

        async def caller(offset: int) -> None:
            nonlocal done
            i = offset
            while time.monotonic() < deadline:
                payload = {"tool": "add", "params": {"a": i, "b": 1}}
                async with session.post(url, json=payload) as response:
                    body = await response.json()
                    assert response.status == 200 and body["result"]["sum"] == i + 1, body
                done += 1
                i += concurrency

        await asyncio.gather(*(caller(n) for n in range(concurrency)))
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4,8", help="pool sizes, comma-separated (1,2,4,8)")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop callers (default 32)")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of load per pool size (4)")
    args = parser.parse_args()
    rows = []
    for size in (int(n) for n in args.workers.split(",")):
        with tempfile.TemporaryDirectory() as directory, running_stack(Path(directory)) as stack:
            facade, url = stack.facade()
            names = [f"add-{n}" for n in range(size)]
            workers = [stack.worker(name, "--tools", "add", "--pool", "add") for name in names]
            stack.wait_for_workers(*names)
            asyncio.run(load(url, args.concurrency, 1.0))  # warm-up
            groups = {
                "facade": [facade.process.pid],
                "workers": [worker.process.pid for worker in workers],
                "redis": [stack.redis.process.pid] if stack.redis.process else [],
            }
            cpu_before = {name: cpu_seconds(pids) for name, pids in groups.items()}
            before = commands(stack.redis.url)
            started = time.monotonic()
            calls = asyncio.run(load(url, args.concurrency, args.seconds))
            elapsed = time.monotonic() - started
            per_call = (commands(stack.redis.url) - before) / calls
            cpu_ms = {
                name: (cpu_seconds(pids) - cpu_before[name]) * 1000 / calls for name, pids in groups.items()
            }
        rate = calls / elapsed
        rows.append((size, rate, per_call, cpu_ms))
        print(f"{size} worker(s): {rate:,.0f} calls/s, {per_call:.1f} Redis commands per call", flush=True)
    base = rows[0][1]
    print("\nworkers | calls/s | vs 1 worker | Redis commands/call | CPU ms/call: facade, workers, redis")
    for size, rate, per_call, cpu in rows:
        print(
            f"{size:7} | {rate:7,.0f} | {rate / base:10.2f}x | {per_call:19.1f} | "
            f"{cpu['facade']:.2f}, {cpu['workers']:.2f}, {cpu['redis']:.2f}"
        )


if __name__ == "__main__":
    main()
