"""What the suite measures, scenario by scenario; each returns plain data for the report.

Every figure of a reference comes from a process started for that scenario alone, and every
caller's connection (and, in the handshake era, the one session they share) is opened before
the timer starts.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings

from benchmarks.aiohttp_client import aiohttp_closed_loop
from benchmarks.mcp_client import HANDSHAKE, STATELESS, McpCaller, McpEndpoint
from benchmarks.measure import (
    Meter,
    close_callers,
    closed_loop,
    open_callers,
    percentile,
    rss_bytes,
    sequential,
    timed_add,
    timed_nap,
)
from benchmarks.reference_servers import ARQ_QUEUE
from benchmarks.systems import TOOLQ, Running
from workers import contract

ERAS = (HANDSHAKE, STATELESS)
#: toolq's pools in the I/O-bound scenario run this many calls at once per worker.
IO_SLOTS = 100
#: The I/O-bound tool's call length.
IO_MS = 100
#: The pool with the most workers is measured again behind a facade of this many processes
#: (TOOLQ_FACADE_PROCESSES): one facade process answers on one core.
IO_FACADE_PROCESSES = 2


def io_system(workers: int, facade_processes: int = 1) -> str:
    """A toolq configuration's key in the I/O-bound scenario: `toolq 4` (4 workers), `toolq 4 2`
    (and a facade of 2 processes)."""
    return f"{TOOLQ} {workers}" + (f" {facade_processes}" if facade_processes > 1 else "")


def io_configuration(key: str) -> tuple[int, int] | None:
    """(workers, facade processes) of a toolq key of the I/O-bound scenario; None for a reference."""
    name, *numbers = key.split()
    if name != TOOLQ:
        return None
    return int(numbers[0]), int(numbers[1]) if len(numbers) > 1 else 1


@dataclass(frozen=True)
class Sizes:
    """How much the suite measures; `quick()` is the smoke test's size."""

    sequential_calls: int = 2000
    load_seconds: float = 2.5
    callers: tuple[int, ...] = (1, 8, 32, 64, 128)
    pool_sizes: tuple[int, ...] = (1, 2, 4, 8)
    pool_callers: int = 32
    io_workers: tuple[int, ...] = (1, 2, 4)
    io_callers: tuple[int, ...] = (500, 2000)
    io_seconds: float = 4.0
    idle_seconds: float = 20.0
    idle_workers: int = 4
    memory_calls: int = 1000
    memory_sessions: int = 200
    arq_calls: int = 10
    repeat: int = 3

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            sequential_calls=20,
            load_seconds=0.3,
            callers=(1, 4),
            pool_sizes=(1, 2),
            pool_callers=4,
            io_workers=(1,),
            io_callers=(20,),
            io_seconds=0.5,
            idle_seconds=1.0,
            idle_workers=1,
            memory_calls=20,
            memory_sessions=5,
            arq_calls=1,
            repeat=1,
        )


def log(message: str) -> None:
    print(message, flush=True)


def meter_of(running: Running) -> Meter:
    return Meter(running.roles or {"server": running.pids}, running.redis_url)


async def _opened(running: Running, era: str, *, takes_tasks: bool = False) -> McpEndpoint:
    endpoint = McpEndpoint(running.url, era, takes_tasks=takes_tasks)
    await endpoint.open()
    return endpoint


# --- sequential latency -------------------------------------------------------------------------


async def sequential_latency(running: Running, sizes: Sizes, *, tasks_too: bool = False) -> dict[str, Any]:
    """Sequential `add` calls in each era (the eras alternate in rounds of at most 100 calls, so
    noise hits both alike); with `tasks_too`, also from a stateless client that takes tasks."""
    kinds = [(era, False) for era in ERAS] + ([(STATELESS, True)] if tasks_too else [])
    callers: dict[str, McpCaller] = {}
    for era, takes_tasks in kinds:
        name = f"{era} tasks" if takes_tasks else era
        (callers[name],) = await open_callers(
            await _opened(running, era, takes_tasks=takes_tasks), 1, timed_add
        )
    for caller in callers.values():  # warm-up
        await sequential(caller, max(10, sizes.sequential_calls // 20), timed_add, meter_of(running))
    rounds = max(1, math.ceil(sizes.sequential_calls / 100))
    latencies: dict[str, list[float]] = {name: [] for name in callers}
    round_p50: dict[str, list[float]] = {name: [] for name in callers}
    errors: dict[str, int] = dict.fromkeys(callers, 0)
    cpu: dict[str, dict[str, float]] = {name: {} for name in callers}
    for number in range(rounds):
        order = list(callers) if number % 2 == 0 else list(callers)[::-1]
        for name in order:
            run = await sequential(
                callers[name], sizes.sequential_calls // rounds, timed_add, meter_of(running)
            )
            latencies[name] += run.latencies_ms
            round_p50[name].append(run.percentile(50))
            errors[name] += run.errors
            for role, seconds in run.cpu.items():
                cpu[name][role] = cpu[name].get(role, 0.0) + seconds
    await close_callers(list(callers.values()))
    return {
        name: {
            "calls": len(latencies[name]),
            "errors": errors[name],
            "p50_ms": percentile(latencies[name], 50),
            "p90_ms": percentile(latencies[name], 90),
            "p99_ms": percentile(latencies[name], 99),
            "max_ms": max(latencies[name], default=math.nan),
            "round_p50_ms": round_p50[name],
            "cpu_ms_per_call": {
                role: s * 1000 / max(1, len(latencies[name])) for role, s in cpu[name].items()
            },
            # The distribution, as its 101 percentiles (0, 1, ... 100): enough for the plot.
            "percentiles_ms": [percentile(latencies[name], q) for q in range(101)],
        }
        for name in callers
    }


# --- throughput ----------------------------------------------------------------------------------


async def throughput(running: Running, era: str, callers: int, seconds: float) -> dict[str, Any]:
    """`callers` closed-loop callers of `add` for `seconds`."""
    endpoint = await _opened(running, era)
    opened = await open_callers(endpoint, callers, timed_add)
    try:
        await closed_loop(opened, min(0.5, seconds), timed_add, meter_of(running))  # warm-up
        run = await closed_loop(opened, seconds, timed_add, meter_of(running))
    finally:
        await close_callers(opened)
    return run.summary()


async def callers_sweep(running: Running, sizes: Sizes) -> dict[str, dict[str, Any]]:
    """Throughput at each number of callers, in each era."""
    results: dict[str, dict[str, Any]] = {}
    for era in ERAS:
        for count in sizes.callers:
            log(f"  {running.name} {era}, {count} callers")
            results.setdefault(era, {})[str(count)] = await throughput(
                running, era, count, sizes.load_seconds
            )
    return results


async def io_bound(running: Running, callers: int, seconds: float) -> dict[str, Any]:
    """`callers` closed-loop callers of the I/O-bound tool (IO_MS per call) for `seconds`."""
    endpoint = await _opened(running, STATELESS)
    call = timed_nap(IO_MS)
    opened = await open_callers(endpoint, callers, timed_nap(0))
    try:
        run = await closed_loop(opened, seconds, call, meter_of(running))
    finally:
        await close_callers(opened)
    return run.summary()


async def alternating(
    targets: dict[str, Running], sizes: Sizes, rounds: int = 6
) -> dict[str, dict[str, Any]]:
    """Sequential calls and a closed loop of `pool_callers` on each target, in alternating rounds
    (stateless era): per target its sequential p50 and its calls/s."""
    opened = {}
    for name, running in targets.items():
        endpoint = await _opened(running, STATELESS)
        (single,) = await open_callers(endpoint, 1, timed_add)
        opened[name] = (
            single,
            await open_callers(endpoint, sizes.pool_callers, timed_add),
            meter_of(running),
        )
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    calls: dict[str, int] = dict.fromkeys(targets, 0)
    seconds: dict[str, float] = dict.fromkeys(targets, 0.0)
    try:
        for number in range(rounds):
            order = list(opened) if number % 2 == 0 else list(opened)[::-1]
            for name in order:
                single, many, meter = opened[name]
                run = await sequential(single, max(1, sizes.sequential_calls // rounds), timed_add, meter)
                latencies[name] += run.latencies_ms
                load = await closed_loop(many, sizes.load_seconds / rounds, timed_add, meter)
                calls[name] += load.calls
                seconds[name] += load.seconds
    finally:
        for single, many, _ in opened.values():
            await close_callers([single, *many])
    return {
        name: {
            "sequential": {"p50_ms": percentile(latencies[name], 50), "calls": len(latencies[name])},
            "load": {"calls_per_s": calls[name] / seconds[name] if seconds[name] else math.nan},
        }
        for name in targets
    }


# --- what a system costs besides calls ----------------------------------------------------------


def idle_commands(running: Running, seconds: float) -> dict[str, Any]:
    """Redis commands per second while toolq's processes sit idle, by command."""
    client = running.redis()
    try:

        def counts() -> dict[str, int]:
            stats = client.info("commandstats")
            return {
                key.removeprefix("cmdstat_"): int(v["calls"])
                for key, v in stats.items()
                if key != "cmdstat_info"
            }

        before = counts()
        time.sleep(seconds)
        after = counts()
    finally:
        client.close()
    by_command = {name: after[name] - before.get(name, 0) for name in sorted(after)}
    by_command = {name: count for name, count in by_command.items() if count}
    return {"seconds": seconds, "per_second": sum(by_command.values()) / seconds, "by_command": by_command}


async def memory_per_call(running: Running, calls: int, sessions: int) -> dict[str, Any]:
    """Resident memory of the process that answers HTTP (the reference's, toolq's facade): per
    open connection, per call waiting for its answer, and per handshake-era session."""
    pid = running.pids[0]
    endpoint = await _opened(running, STATELESS)
    base = rss_bytes(pid)
    callers = await open_callers(endpoint, calls, timed_nap(0))
    connected = rss_bytes(pid)
    long_ms = 8000
    waiting = [asyncio.create_task(caller.call("nap", {"ms": long_ms})) for caller in callers]
    await _until_waiting(running, calls)
    during = rss_bytes(pid)
    results = await asyncio.gather(*waiting, return_exceptions=True)
    failed = sum(1 for result in results if isinstance(result, BaseException))
    await close_callers(callers)
    before_sessions = rss_bytes(pid)
    for _ in range(sessions):
        await _opened(running, HANDSHAKE)
    after_sessions = rss_bytes(pid)
    return {
        "calls": calls,
        "failed": failed,
        "per_connection_kib": (connected - base) / calls / 1024,
        "per_waiting_call_kib": (during - connected) / calls / 1024,
        "sessions": sessions,
        "per_session_kib": (after_sessions - before_sessions) / sessions / 1024,
    }


async def _until_waiting(running: Running, calls: int, within: float = 20.0) -> None:
    """Until `calls` calls are in flight: for toolq, its pool's queue holds them all; for a
    reference, a fixed second (its calls wait in-process)."""
    if running.name != TOOLQ:
        await asyncio.sleep(1.0)
        return
    client = running.redis()
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if client.zcard(contract.queue_name("bench-nap")) >= calls:
                await asyncio.sleep(0.2)
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"not all {calls} calls reached the queue within {within:g} s")
    finally:
        client.close()


async def arq_defaults_latency(running: Running, calls: int) -> dict[str, Any]:
    """enqueue_job + job.result() with arq's defaults; the first call (start-up) is not kept."""
    assert running.redis_url is not None
    pool = await create_pool(RedisSettings.from_dsn(running.redis_url), default_queue_name=ARQ_QUEUE)
    latencies = []
    try:
        for i in range(calls + 1):
            started = time.perf_counter()
            job = await pool.enqueue_job("arq_add", i, 42 - i)
            assert job is not None
            result = await job.result(timeout=30)
            assert result["sum"] == 42, result
            if i:
                latencies.append((time.perf_counter() - started) * 1000)
    finally:
        await pool.aclose()
    return {"calls": calls, "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99)}


async def client_cost(running: Running, callers: int, seconds: float) -> dict[str, Any]:
    """The same load from the suite's raw client and from aiohttp's ClientSession (what the
    earlier latency.py used): calls/s and the client's own CPU per call."""
    endpoint = await _opened(running, STATELESS)
    opened = await open_callers(endpoint, callers, timed_add)
    try:
        raw = await closed_loop(opened, seconds, timed_add, meter_of(running))
    finally:
        await close_callers(opened)
    heavy = await aiohttp_closed_loop(endpoint, callers, seconds, meter_of(running))
    return {"raw": raw.summary(), "aiohttp": heavy.summary()}
