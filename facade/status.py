"""`toolq status`: which pool is backing up, is it waiting or running, which workers are alive.

    python -m facade.status                 # live view, refreshed every 2 s (Ctrl-C to stop)
    python -m facade.status --json          # once, as JSON, for scripts
    python -m facade.status --url http://facade:8000 --token ...   # through a facade's /status

Everything comes from Redis, so any facade replica (GET /status) or this command with REDIS_URL
shows the whole deployment: the live workers from the registry (with the jobs each ran at its
last heartbeat), each pool's queue (jobs waiting for a worker, jobs running, the age of the
oldest waiting one), and per tool the figures its workers wrote for the last minutes (calls,
error rate, percentiles of run time and queue wait, from histograms: each percentile is the
upper bound of its bucket).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import RedisError
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from workers import contract

#: Minutes of recent figures a status covers.
WINDOW_MINUTES = 5
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def bucket_percentile(counts: list[int], q: float) -> float | None:
    """The q-th percentile (0..1) of a stats histogram, as its bucket's upper bound in ms; None
    when nothing was counted or it lies beyond the last bound."""
    total = sum(counts)
    if not total:
        return None
    needed = q * total
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= needed:
            bounds = contract.STATS_BUCKETS_MS
            return float(bounds[index]) if index < len(bounds) else None
    return None


def _recent(hashes: list[dict[bytes, bytes]]) -> dict[str, Any]:
    buckets = len(contract.STATS_BUCKETS_MS) + 1
    calls = errors = 0
    wait, run = [0] * buckets, [0] * buckets
    for fields in hashes:
        calls += int(fields.get(b"calls", 0))
        errors += int(fields.get(b"errors", 0))
        for index in range(buckets):
            wait[index] += int(fields.get(f"w{index}".encode(), 0))
            run[index] += int(fields.get(f"r{index}".encode(), 0))
    return {
        "calls": calls,
        "errors": errors,
        "error_rate": errors / calls if calls else 0.0,
        "run_ms": {f"p{int(q * 100)}": bucket_percentile(run, q) for q in (0.5, 0.95, 0.99)},
        "queue_wait_ms": {f"p{int(q * 100)}": bucket_percentile(wait, q) for q in (0.5, 0.95, 0.99)},
    }


async def collect_status(redis: Redis, *, minutes: int = WINDOW_MINUTES) -> dict[str, Any]:
    """The deployment as Redis knows it now (raises Redis errors)."""
    seconds, micros = await redis.time()
    now = int(seconds) + int(micros) / 1e6
    live = await redis.zrangebyscore(contract.WORKERS_LIVE, int(now * 1000), "+inf", withscores=True)
    infos = await redis.mget([contract.worker_key(raw.decode()) for raw, _ in live]) if live else []
    workers: list[dict[str, Any]] = []
    pools: dict[str, dict[str, Any]] = {}
    tools: dict[str, dict[str, Any]] = {}
    for (raw_id, expires_ms), raw_info in zip(live, infos, strict=True):
        if raw_info is None:
            continue
        info = contract.loads(raw_info)
        names = sorted(spec["name"] for spec in info.get("tools", []))
        slots = int(info.get("concurrency", 1))
        running = int(info.get("running", 0))
        pool = info["pool"]
        beat_ago = max(0.0, contract.WORKER_TTL_SECONDS - (expires_ms / 1000 - now))
        workers.append({
            "worker_id": raw_id.decode(),
            "pool": pool,
            "tools": names,
            "host": info.get("host"),
            "pid": info.get("pid"),
            "slots": slots,
            "running": running,
            "up_seconds": round(now - float(info.get("started_at", now)), 1),
            "heartbeat_seconds_ago": round(beat_ago, 1),
        })  # fmt: skip
        entry = pools.setdefault(
            pool,
            {"pool": pool, "queue": info["queue"], "tools": set(), "workers": 0, "slots": 0, "running": 0},
        )
        entry["tools"].update(names)
        entry["workers"] += 1
        entry["slots"] += slots
        entry["running"] += running
        for name in names:
            tool = tools.setdefault(name, {"tool": name, "pools": set(), "workers": 0})
            tool["pools"].add(pool)
            tool["workers"] += 1
    ordered_pools = sorted(pools.values(), key=lambda p: p["pool"])
    minute = int(now // 60)
    async with redis.pipeline(transaction=False) as pipe:
        for entry in ordered_pools:
            ready = contract.ready_list(entry["queue"])
            pipe.llen(ready)
            pipe.zcard(entry["queue"])
            pipe.lindex(ready, -1)
        for name in sorted(tools):
            for back in range(minutes):
                pipe.hgetall(contract.stats_key(name, minute - back))
        answers = await pipe.execute()
    oldest_ids = []
    for index, entry in enumerate(ordered_pools):
        waiting, queued, oldest = answers[3 * index : 3 * index + 3]
        entry.update(waiting=int(waiting), queued=int(queued), tools=sorted(entry["tools"]))
        oldest_ids.append(oldest)
    async with redis.pipeline(transaction=False) as pipe:
        for entry, oldest in zip(ordered_pools, oldest_ids, strict=True):
            pipe.zscore(entry["queue"], oldest if oldest is not None else b"")
        scores = await pipe.execute()
    for entry, score in zip(ordered_pools, scores, strict=True):
        entry["oldest_waiting_seconds"] = round(max(0.0, now - score / 1000), 3) if score is not None else 0.0
    stats = answers[3 * len(ordered_pools) :]
    for position, name in enumerate(sorted(tools)):
        tools[name]["pools"] = sorted(tools[name]["pools"])
        tools[name]["recent"] = _recent(stats[position * minutes : (position + 1) * minutes])
    return {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "window_minutes": minutes,
        "pools": ordered_pools,
        "tools": [tools[name] for name in sorted(tools)],
        "workers": sorted(workers, key=lambda w: (w["pool"], w["worker_id"])),
    }


# --- the command ---------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:g} s" if value >= 1000 else f"{value:g} ms"


def render(report: dict[str, Any]) -> Group:
    """The report as three tables: pools, tools, workers."""
    pools = Table(title=f"Pools ({report['generated_at']})", title_justify="left")
    for column in ("pool", "tools", "workers", "slots", "running", "waiting", "oldest waiting"):
        pools.add_column(column, justify="left" if column in ("pool", "tools") else "right")
    for pool in report["pools"]:
        waiting = pool["waiting"]
        pools.add_row(
            pool["pool"],
            ", ".join(pool["tools"]),
            str(pool["workers"]),
            str(pool["slots"]),
            str(pool["running"]),
            f"[bold red]{waiting}[/]" if waiting else "0",
            f"{pool['oldest_waiting_seconds']:.1f} s" if waiting else "-",
        )
    tools = Table(title=f"Tools (last {report['window_minutes']} min)", title_justify="left")
    for column in (
        "tool",
        "pools",
        "workers",
        "calls",
        "errors",
        "run p50",
        "run p95",
        "run p99",
        "wait p95",
    ):
        tools.add_column(column, justify="left" if column in ("tool", "pools") else "right")
    for tool in report["tools"]:
        recent = tool["recent"]
        rate = recent["error_rate"]
        tools.add_row(
            tool["tool"],
            ", ".join(tool["pools"]),
            str(tool["workers"]),
            str(recent["calls"]),
            (f"[bold red]{rate:.1%}[/]" if rate else "0") if recent["calls"] else "-",
            _ms(recent["run_ms"]["p50"]),
            _ms(recent["run_ms"]["p95"]),
            _ms(recent["run_ms"]["p99"]),
            _ms(recent["queue_wait_ms"]["p95"]),
        )
    workers = Table(title="Workers", title_justify="left")
    for column in ("worker", "pool", "host", "pid", "running", "up", "heartbeat"):
        workers.add_column(column, justify="left" if column in ("worker", "pool", "host") else "right")
    for worker in report["workers"]:
        workers.add_row(
            worker["worker_id"],
            worker["pool"],
            str(worker["host"]),
            str(worker["pid"]),
            f"{worker['running']}/{worker['slots']}",
            f"{worker['up_seconds']:.0f} s",
            f"{worker['heartbeat_seconds_ago']:.0f} s ago",
        )
    return Group(pools, tools, workers)


class Source:
    """Where the report comes from: Redis itself, or a facade's GET /status."""

    def __init__(self, redis_url: str | None, facade_url: str | None, token: str | None) -> None:
        self.redis = Redis.from_url(redis_url) if facade_url is None and redis_url else None
        self.facade_url = facade_url.rstrip("/").removesuffix("/mcp") + "/status" if facade_url else None
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def report(self) -> dict[str, Any]:
        if self.redis is not None:
            return await collect_status(self.redis)
        assert self.facade_url is not None
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
            http.get(self.facade_url, headers=self.headers) as response,
        ):
            body: dict[str, Any] = await response.json(content_type=None)
            if response.status != 200:
                raise RuntimeError(f"{self.facade_url} answered {response.status}: {body}")
            return body

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


async def run(args: argparse.Namespace) -> int:
    source = Source(args.redis_url, args.url, args.token)
    try:
        if args.json:
            print(json.dumps(await source.report(), indent=2))
            return 0
        console = Console()
        with Live(console=console, auto_refresh=False, screen=False) as live:
            while True:
                try:
                    live.update(render(await source.report()), refresh=True)
                except (RedisError, OSError, aiohttp.ClientError, RuntimeError) as exc:
                    live.update(f"[bold red]cannot read the status: {exc}[/]", refresh=True)
                await asyncio.sleep(args.interval)
    except (RedisError, OSError, aiohttp.ClientError, RuntimeError) as exc:
        print(f"error: cannot read the status: {exc}", file=sys.stderr)
        return 1
    finally:
        await source.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facade.status", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the status once, as JSON, and exit")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (default 2)")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
        help="Redis to read (env REDIS_URL)",
    )
    parser.add_argument("--url", help="read a facade's GET /status instead (its base URL or its /mcp URL)")
    parser.add_argument(
        "--token", default=os.environ.get("TOOLQ_TOKEN"), help="bearer token for --url (env TOOLQ_TOKEN)"
    )
    args = parser.parse_args(argv)
    if args.interval <= 0:
        parser.error("--interval must be above 0")
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
