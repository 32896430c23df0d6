"""How the suite measures: closed-loop callers, sequential calls, and what the servers spent.

Every caller has its own keep-alive connection, opened and warmed with one call before any
timer starts. Latency is the time from writing a request to having its checked answer; a call
that fails or answers wrongly is counted as an error, never as a latency. What the servers
spent is read from /proc (CPU time, resident memory) and from Redis (INFO commandstats, the
suite's own INFO calls excluded).
"""

from __future__ import annotations

import asyncio
import math
import os
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis as redis_sync

from benchmarks.mcp_client import CallFailed, McpCaller, McpEndpoint

#: One timed call by one caller: its milliseconds, or None when it failed.
TimedCall = Callable[[McpCaller, int], Awaitable[float | None]]


async def timed_add(caller: McpCaller, i: int) -> float | None:
    return await caller.timed_add(i)


def timed_nap(ms: int) -> TimedCall:
    async def call(caller: McpCaller, _i: int) -> float | None:
        started = time.perf_counter()
        try:
            structured = await caller.call("nap", {"ms": ms})
        except CallFailed:
            return None
        return (time.perf_counter() - started) * 1000 if structured.get("ms") == ms else None

    return call


@dataclass
class Run:
    """One measurement of one system: calls, latencies and what it cost."""

    calls: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    #: CPU seconds spent by each role's processes (toolq: facade, workers, redis; a reference:
    #: server), and by the benchmark's own client.
    cpu: dict[str, float] = field(default_factory=dict)
    client_cpu: float = 0.0
    redis_commands: int | None = None

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.seconds if self.seconds else math.nan

    def percentile(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    def cpu_ms_per_call(self, role: str | None = None) -> float:
        spent = sum(self.cpu.values()) if role is None else self.cpu.get(role, math.nan)
        return spent * 1000 / self.calls if self.calls else math.nan

    def summary(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "calls_per_s": self.calls_per_s,
            "p50_ms": self.percentile(50),
            "p90_ms": self.percentile(90),
            "p99_ms": self.percentile(99),
            "max_ms": max(self.latencies_ms, default=math.nan),
            "server_cpu_ms_per_call": self.cpu_ms_per_call(),
            "cpu_ms_per_call": {role: self.cpu_ms_per_call(role) for role in self.cpu},
            "client_cpu_ms_per_call": self.client_cpu * 1000 / self.calls if self.calls else math.nan,
            "redis_commands_per_call": self.redis_commands / self.calls
            if self.redis_commands is not None and self.calls
            else None,
        }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


# --- what the servers spent ----------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (Linux /proc)."""
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_bytes(pid: int) -> int:
    """Resident memory of one process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def redis_commands(url: str) -> int:
    """Commands a Redis has processed so far, without INFO (the suite's own probe)."""
    client = redis_sync.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return sum(int(value["calls"]) for key, value in stats.items() if key != "cmdstat_info")


class Meter:
    """CPU by role, the client's own CPU and Redis commands, from start() to stop()."""

    def __init__(self, roles: dict[str, list[int]], redis_url: str | None):
        self.roles, self.redis_url = roles, redis_url

    def start(self) -> None:
        self._cpu = {role: cpu_seconds(pids) for role, pids in self.roles.items()}
        self._client = own_cpu_seconds()
        self._commands = redis_commands(self.redis_url) if self.redis_url else None

    def stop(self, run: Run) -> Run:
        run.cpu = {role: cpu_seconds(pids) - self._cpu[role] for role, pids in self.roles.items()}
        run.client_cpu = own_cpu_seconds() - self._client
        if self.redis_url and self._commands is not None:
            run.redis_commands = redis_commands(self.redis_url) - self._commands
        return run


# --- callers -------------------------------------------------------------------------------------


async def open_callers(
    endpoint: McpEndpoint, count: int, warm: TimedCall, *, batch: int = 200
) -> list[McpCaller]:
    """`count` callers, each with its connection open and one call made (outside any timer)."""
    callers = [McpCaller(endpoint) for _ in range(count)]
    for start in range(0, count, batch):
        answers = await asyncio.gather(
            *(warm(caller, n) for n, caller in enumerate(callers[start : start + batch]))
        )
        if any(ms is None for ms in answers):
            raise CallFailed(f"{endpoint.url}: warming {count} callers failed")
    return callers


async def close_callers(callers: list[McpCaller]) -> None:
    await asyncio.gather(*(caller.close() for caller in callers))


async def closed_loop(callers: list[McpCaller], seconds: float, call: TimedCall, meter: Meter) -> Run:
    """Every caller calls again as soon as it has its answer, for `seconds`."""
    run = Run()
    deadline = time.perf_counter() + seconds

    async def loop(caller: McpCaller, offset: int) -> None:
        i = offset
        while time.perf_counter() < deadline:
            ms = await call(caller, i)
            if ms is None:
                run.errors += 1
            else:
                run.latencies_ms.append(ms)
            i += len(callers)

    meter.start()
    started = time.perf_counter()
    await asyncio.gather(*(loop(caller, n) for n, caller in enumerate(callers)))
    run.seconds = time.perf_counter() - started
    run.calls = len(run.latencies_ms)
    return meter.stop(run)


async def sequential(caller: McpCaller, calls: int, call: TimedCall, meter: Meter) -> Run:
    run = Run()
    meter.start()
    started = time.perf_counter()
    for i in range(calls):
        ms = await call(caller, i)
        if ms is None:
            run.errors += 1
        else:
            run.latencies_ms.append(ms)
    run.seconds = time.perf_counter() - started
    run.calls = len(run.latencies_ms)
    return meter.stop(run)
