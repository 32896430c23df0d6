"""Latency, throughput and idle cost of toolq, side by side with the official MCP SDK, in one run.

What it measures (DESIGN.md, "Targets"), in both MCP protocol eras on the same servers:
- Reference A: the `mcp` SDK's own server (MCPServer, Streamable HTTP, JSON responses) with the
  same `add(a, b) -> {a, b, sum}` tool running in-process, in a subprocess of this script
  (`latency.py --serve-sdk-reference --port P`). It serves the handshake era (stateful
  sessions) and, on the same URL, the stateless era 2026-07-28 (mcp/server/_streamable_http_modern.py);
  if its `server/discover` probe fails, its stateless column says n/a.
- toolq: a redis-server of its own (free port, temp dir), `python -m facade` and ONE
  `python -m workers --tools add`, all subprocesses.
- Reference B (unless --arq-calls 0): plain arq with its defaults (0.5 s polls on both sides):
  enqueue_job + job.result() against a default arq worker on the same redis-server.

One client implementation (aiohttp, keep-alive, one session per system and era) drives every MCP
server, with an era switch: handshake (`initialize`, then `Mcp-Session-Id` and
`MCP-Protocol-Version: 2025-11-25` on every request) or stateless (no initialize; every POST
carries `MCP-Protocol-Version: 2026-07-28`, `Mcp-Method`, `Mcp-Name` and the envelope in
`params._meta`; every result must say `resultType: "complete"`). Each system and era: warm-up,
then sequential latency (p50/p90/p99/max), then throughput with C concurrent callers for a fixed
duration (calls/s, p50/p99 under load). The systems alternate in rounds (the sequential calls
in rounds of at most --batch calls) so machine noise hits all alike. Last, the idle cost: Redis
commands per second while toolq (one facade, one worker) sits idle, from INFO commandstats (the
benchmark's own INFO calls excluded).

The report compares toolq with the SDK in each era against the design targets, and toolq's
stateless era with its handshake era (the stateless era must not be slower), as PASS/MISS
lines. It is a report: a MISS never changes the exit code.

Run from the repository root:
    .venv/bin/python tests/benchmarks/latency.py [--calls N] [--concurrency C] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
import uvicorn
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from real_processes import RedisServer, Stack, free_port, port_open, wait_until

#: The handshake era's version (initialize, then sessions).
PROTOCOL_VERSION = "2025-11-25"
#: The stateless era's version (no initialize; an envelope on every request).
STATELESS_VERSION = "2026-07-28"
HANDSHAKE, STATELESS = "handshake", "stateless"
ARQ_QUEUE = "bench:arq-defaults"
THIS_FILE = str(Path(__file__).resolve())
#: DESIGN.md "Targets", toolq / SDK (both eras alike): p50 and p99 at most, throughput at least,
#: idle Redis commands per second per idle worker at most.
TARGETS = {"p50": 1.5, "p99": 2.0, "throughput": 1.2, "idle_commands_per_s": 1.0}
#: The throughput target by callers (DESIGN.md: 1.2x at 32, 1.5x at 128).
THROUGHPUT_TARGETS = {32: 1.2, 128: 1.5}
#: "The stateless era must not be slower than the handshake era": toolq stateless / handshake
#: p50 at most this, throughput at least its inverse. The 5% is noise allowance, not slack: the
#: report prints the round-to-round spread of each p50 next to it.
NOT_SLOWER = 1.05


def throughput_target(concurrency: int) -> float:
    """DESIGN.md's throughput ratio for this many callers: 1.2x below 128, 1.5x from 128."""
    reached = [target for callers, target in THROUGHPUT_TARGETS.items() if concurrency >= callers]
    return max(reached, default=TARGETS["throughput"])


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the references' server sides (run in subprocesses of this script) ---------------------------


class Sum(BaseModel):
    a: int | float
    b: int | float
    sum: int | float


def serve_sdk_reference(port: int) -> None:
    """The official SDK's server with the tool in-process: what toolq is compared with."""
    server = MCPServer("sdk-reference")

    @server.tool()
    async def add(a: int | float, b: int | float) -> Sum:
        """Add two numbers and return both operands with their sum."""
        return Sum(a=a, b=b, sum=a + b)

    # host="127.0.0.1" keeps the SDK's DNS-rebinding checks on; they allow loopback Host headers.
    app = server.streamable_http_app(json_response=True, host="127.0.0.1")
    # No access log, like the toolq facade (access_log=None): both log nothing per request.
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def arq_add(_ctx: dict[str, Any], a: float, b: float) -> dict[str, float]:
    return {"a": a, "b": b, "sum": a + b}


def serve_arq_reference(redis_url: str) -> None:
    """A plain arq worker with every default (0.5 s poll_delay, pickle)."""
    Worker(functions=[arq_add], redis_settings=RedisSettings.from_dsn(redis_url), queue_name=ARQ_QUEUE).run()


# --- the client, identical for every MCP server -------------------------------------------------


class CallFailed(Exception):
    pass


class McpClient:
    """A raw MCP-over-HTTP client, in either era, making timed `tools/call add` requests.

    Handshake era: one session (`initialize`, then `Mcp-Session-Id` and `MCP-Protocol-Version`
    on every request). Stateless era (2026-07-28): no initialize; every request carries
    `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` (tools/call) and the per-request envelope in
    `params._meta`, and every result must say `resultType: "complete"`.
    """

    def __init__(
        self,
        name: str,
        url: str,
        concurrency: int,
        server_pids: list[int],
        era: str = HANDSHAKE,
        *,
        takes_tasks: bool = False,
    ):
        """`takes_tasks`: a stateless client that declares the tasks extension (a call still
        running after the server's window would come back as a task)."""
        if era not in (HANDSHAKE, STATELESS):
            raise ValueError(f"era must be {HANDSHAKE!r} or {STATELESS!r}, not {era!r}")
        self.name = name
        self.url = url
        self.era = era
        #: The processes that serve this client's calls: their CPU time is charged to the calls.
        #: The first is the one that answers HTTP (the SDK's one process, toolq's facade).
        self.server_pids = server_pids
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency + 8),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        self.headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        self._ids = itertools.count(1)
        #: The stateless era's per-request envelope (params._meta); empty in the handshake era.
        self.envelope: dict[str, Any] = {}
        if era == STATELESS:
            self.headers["MCP-Protocol-Version"] = STATELESS_VERSION
            self.envelope = {
                "io.modelcontextprotocol/protocolVersion": STATELESS_VERSION,
                "io.modelcontextprotocol/clientCapabilities": (
                    {"extensions": {"io.modelcontextprotocol/tasks": {}}} if takes_tasks else {}
                ),
                "io.modelcontextprotocol/clientInfo": {"name": "toolq-benchmark", "version": "1"},
            }
        #: Stateless era: the headers of each (method, name), built once.
        self._routed: dict[tuple[str, str | None], dict[str, str]] = {}

    @property
    def stateless(self) -> bool:
        return self.era == STATELESS

    async def close(self) -> None:
        await self.http.close()

    async def post(
        self, message: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> tuple[int, Any, Mapping[str, str]]:
        async with self.http.post(
            self.url, data=json.dumps(message), headers=headers or self.headers
        ) as response:
            text = await response.text()
            body: Any = text
            if response.content_type == "application/json" and text:
                body = json.loads(text)
            return response.status, body, response.headers.copy()

    def request_headers(self, method: str, params: Mapping[str, Any]) -> Mapping[str, str]:
        """The headers of one request: the session's, or the stateless era's routing headers."""
        if not self.stateless:
            return self.headers
        name = params.get("name") if method == "tools/call" else None
        headers = self._routed.get((method, name))
        if headers is None:
            headers = {**self.headers, "Mcp-Method": method}
            if name is not None:
                headers["Mcp-Name"] = name
            self._routed[(method, name)] = headers
        return headers

    async def rpc(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        headers = self.request_headers(method, params)
        if self.stateless:
            params = {**params, "_meta": {**params.get("_meta", {}), **self.envelope}}
        status, body, _ = await self.post(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}, headers
        )
        if status != 200 or not isinstance(body, dict) or "result" not in body:
            raise CallFailed(f"{self.name}: {method} -> HTTP {status}: {body}")
        result: dict[str, Any] = body["result"]
        if self.stateless and result.get("resultType") != "complete":
            raise CallFailed(f"{self.name}: {method} -> no resultType 'complete': {result}")
        return result

    async def open(self) -> dict[str, Any]:
        """Handshake era: initialize a session. Stateless era: `server/discover`, which must list
        2026-07-28. Returns the initialize or discover result; CallFailed if the server refuses."""
        if not self.stateless:
            return await self.initialize()
        result = await self.rpc("server/discover", {})
        if STATELESS_VERSION not in (result.get("supportedVersions") or []):
            raise CallFailed(f"{self.name}: server/discover does not list {STATELESS_VERSION}: {result}")
        return result

    async def initialize(self) -> dict[str, Any]:
        params = {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "toolq-benchmark", "version": "1"},
        }
        status, body, headers = await self.post(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": "initialize", "params": params}
        )
        if status != 200 or "Mcp-Session-Id" not in headers:
            raise CallFailed(f"{self.name}: initialize -> HTTP {status}: {body}")
        self.headers["Mcp-Session-Id"] = headers["Mcp-Session-Id"]
        self.headers["MCP-Protocol-Version"] = body["result"]["protocolVersion"]
        status, _, _ = await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        if status != 202:
            raise CallFailed(f"{self.name}: notifications/initialized -> HTTP {status}")
        return body["result"]  # type: ignore[no-any-return]

    async def tool_names(self) -> list[str]:
        return [tool["name"] for tool in (await self.rpc("tools/list", {}))["tools"]]

    async def add(self, a: int, b: int) -> dict[str, Any]:
        """One `tools/call add`; raises CallFailed unless the result carries the right sum."""
        result = await self.rpc("tools/call", {"name": "add", "arguments": {"a": a, "b": b}})
        structured = result.get("structuredContent") or {}
        if result.get("isError") or structured.get("sum") != a + b:
            raise CallFailed(f"{self.name}: add({a}, {b}) -> {result}")
        return structured

    async def timed_add(self, i: int) -> float | None:
        """Milliseconds for one call, or None if it failed."""
        started = time.perf_counter()
        try:
            await self.add(i, 42 - i)
        except (CallFailed, aiohttp.ClientError, TimeoutError, ValueError):
            return None
        return (time.perf_counter() - started) * 1000


# --- measurements ---------------------------------------------------------------------------------


@dataclass
class Samples:
    """Everything measured for one MCP server, accumulated over the rounds."""

    sequential_ms: list[float] = field(default_factory=list)
    load_ms: list[float] = field(default_factory=list)
    load_seconds: float = 0.0
    #: CPU seconds the server side used (all of its processes), sequential and under load.
    sequential_cpu: float = 0.0
    load_cpu: float = 0.0
    #: The part of it used by the process that answers HTTP (the SDK's process, toolq's facade).
    sequential_front_cpu: float = 0.0
    load_front_cpu: float = 0.0
    errors: int = 0
    #: The sequential p50 of each round: how much one system's own figure moves between rounds.
    round_p50_ms: list[float] = field(default_factory=list)

    def add(self, latencies: list[float | None], cpu: tuple[float, float], *, load: bool) -> None:
        """`cpu`: the CPU seconds of all the server's processes, and of its HTTP process alone."""
        good = [ms for ms in latencies if ms is not None]
        self.errors += len(latencies) - len(good)
        if load:
            self.load_ms.extend(good)
            self.load_cpu += cpu[0]
            self.load_front_cpu += cpu[1]
        else:
            self.sequential_ms.extend(good)
            self.sequential_cpu += cpu[0]
            self.sequential_front_cpu += cpu[1]
            self.round_p50_ms.append(percentile(good, 50))


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (Linux /proc; NaN elsewhere)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return math.nan
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def server_cpu(client: McpClient) -> tuple[float, float]:
    """CPU seconds so far of all the client's server processes, and of the HTTP one alone."""
    return cpu_seconds(client.server_pids), cpu_seconds(client.server_pids[:1])


def cpu_used(client: McpClient, before: tuple[float, float]) -> tuple[float, float]:
    after = server_cpu(client)
    return after[0] - before[0], after[1] - before[1]


async def sequential(client: McpClient, calls: int) -> list[float | None]:
    return [await client.timed_add(i) for i in range(calls)]


async def under_load(client: McpClient, concurrency: int, seconds: float) -> tuple[list[float | None], float]:
    """`concurrency` callers loop for `seconds`; returns every latency and the wall time taken."""
    deadline = time.perf_counter() + seconds

    async def caller(offset: int) -> list[float | None]:
        latencies: list[float | None] = []
        i = offset
        while time.perf_counter() < deadline:
            latencies.append(await client.timed_add(i))
            i += concurrency
        return latencies

    started = time.perf_counter()
    per_caller = await asyncio.gather(*(caller(n) for n in range(concurrency)))
    return [ms for latencies in per_caller for ms in latencies], time.perf_counter() - started


async def measure(
    clients: list[McpClient],
    *,
    calls: int,
    concurrency: int,
    duration: float,
    rounds: int,
    warmup: int,
    batch: int = 100,
) -> dict[str, Samples]:
    """Warm up, then alternate the systems round by round (A B C, C B A, ...) for each measurement.

    The sequential calls go in rounds of at most `batch` calls per system (at least `rounds`
    rounds), so that noise lasting a few seconds hits every system alike.
    """
    samples = {client.name: Samples() for client in clients}
    for client in clients:
        log(f"warm-up: {warmup} calls + {concurrency} concurrent callers for 0.5 s on {client.name}")
        await sequential(client, warmup)
        await under_load(client, concurrency, 0.5)
    turns = max(rounds, math.ceil(calls / batch))
    log(f"sequential: {calls} calls per system in {turns} alternating rounds")
    for round_no in range(turns):
        order = clients if round_no % 2 == 0 else clients[::-1]
        for client in order:
            n = calls // turns + (1 if round_no < calls % turns else 0)
            cpu = server_cpu(client)
            latencies = await sequential(client, n)
            samples[client.name].add(latencies, cpu_used(client, cpu), load=False)
    for round_no in range(rounds):
        order = clients if round_no % 2 == 0 else clients[::-1]
        for client in order:
            seconds = duration / rounds
            log(f"round {round_no + 1}/{rounds}: {concurrency} callers for {seconds:g} s on {client.name}")
            cpu = server_cpu(client)
            latencies, elapsed = await under_load(client, concurrency, seconds)
            samples[client.name].add(latencies, cpu_used(client, cpu), load=True)
            samples[client.name].load_seconds += elapsed
    return samples


async def command_counts(redis: aioredis.Redis) -> dict[str, int]:
    """Commands processed so far, per command, without INFO itself (the benchmark's own probe)."""
    stats = await redis.info("commandstats")
    counts = {key.removeprefix("cmdstat_"): int(value["calls"]) for key, value in stats.items()}
    counts.pop("info", None)
    return counts


async def idle_cost(redis_url: str, seconds: float) -> dict[str, Any]:
    """Redis commands per second while the facade and the worker sit idle."""
    redis = aioredis.Redis.from_url(redis_url)
    try:
        before = await command_counts(redis)
        await asyncio.sleep(seconds)
        after = await command_counts(redis)
    finally:
        await redis.aclose()
    by_command = {name: after[name] - before.get(name, 0) for name in sorted(after)}
    by_command = {name: count for name, count in by_command.items() if count}
    total = sum(by_command.values())
    return {
        "seconds": seconds,
        "commands": total,
        "commands_per_s": total / seconds,
        "by_command": by_command,
    }


async def arq_default_latencies(redis_url: str, calls: int) -> list[float]:
    """enqueue_job + job.result() with arq's defaults; the first call (worker start-up) is not kept."""
    pool = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=ARQ_QUEUE)
    latencies = []
    try:
        for i in range(calls + 1):
            started = time.perf_counter()
            job = await pool.enqueue_job("arq_add", i, 42 - i)
            if job is None:
                raise CallFailed("arq: enqueue_job returned None")
            result = await job.result(timeout=30)
            if result["sum"] != 42:
                raise CallFailed(f"arq: arq_add -> {result}")
            if i:
                latencies.append((time.perf_counter() - started) * 1000)
    finally:
        await pool.aclose()
    return latencies


# --- statistics and the report ------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summarize(samples: Samples) -> dict[str, Any]:
    seq, load = samples.sequential_ms, samples.load_ms
    return {
        "sequential": {
            "calls": len(seq),
            "p50_ms": percentile(seq, 50),
            "p90_ms": percentile(seq, 90),
            "p99_ms": percentile(seq, 99),
            "max_ms": max(seq, default=math.nan),
            "server_cpu_ms_per_call": samples.sequential_cpu * 1000 / len(seq) if seq else math.nan,
            "http_process_cpu_ms_per_call": samples.sequential_front_cpu * 1000 / len(seq)
            if seq
            else math.nan,
            "round_p50_ms": samples.round_p50_ms,
        },
        "load": {
            "calls": len(load),
            "calls_per_s": len(load) / samples.load_seconds if samples.load_seconds else math.nan,
            "p50_ms": percentile(load, 50),
            "p99_ms": percentile(load, 99),
            "server_cpu_ms_per_call": samples.load_cpu * 1000 / len(load) if load else math.nan,
            "http_process_cpu_ms_per_call": samples.load_front_cpu * 1000 / len(load) if load else math.nan,
        },
        "errors": samples.errors,
    }


def verdict(value: float, limit: float, *, at_least: bool = False) -> str:
    if math.isnan(value):
        return "n/a"
    return "PASS" if (value >= limit if at_least else value <= limit) else "MISS"


def metric(summary: dict[str, Any] | None, part: str, key: str) -> float:
    """One figure of a system's summary; NaN when that system (or era) was not measured."""
    if summary is None:
        return math.nan
    value = summary[part][key]
    return math.nan if value is None else float(value)


def ratio(numerator: float, denominator: float) -> float:
    if math.isnan(numerator) or math.isnan(denominator) or denominator == 0:
        return math.nan
    return numerator / denominator


def ratios_of(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, float]:
    """a / b for the figures the targets read, and a few that explain them."""
    return {
        "p50": ratio(metric(a, "sequential", "p50_ms"), metric(b, "sequential", "p50_ms")),
        "p90": ratio(metric(a, "sequential", "p90_ms"), metric(b, "sequential", "p90_ms")),
        "p99": ratio(metric(a, "sequential", "p99_ms"), metric(b, "sequential", "p99_ms")),
        "throughput": ratio(metric(a, "load", "calls_per_s"), metric(b, "load", "calls_per_s")),
        "server_cpu_sequential": ratio(
            metric(a, "sequential", "server_cpu_ms_per_call"),
            metric(b, "sequential", "server_cpu_ms_per_call"),
        ),
        "server_cpu_load": ratio(
            metric(a, "load", "server_cpu_ms_per_call"), metric(b, "load", "server_cpu_ms_per_call")
        ),
    }


def build_report(
    *,
    settings: dict[str, Any],
    machine: dict[str, str],
    sdk: dict[str, Any],
    toolq: dict[str, Any],
    idle: dict[str, Any],
    arq_ms: list[float] | None,
    sdk_stateless: dict[str, Any] | None = None,
    toolq_stateless: dict[str, Any] | None = None,
    toolq_task_client: dict[str, Any] | None = None,
    not_measured: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`sdk` and `toolq` are the handshake era (the report's original fields); the stateless era
    has fields of its own, None where it was not measured (`not_measured` says why)."""
    ratios = ratios_of(toolq, sdk)
    ratios_stateless = ratios_of(toolq_stateless, sdk_stateless)
    stateless_vs_handshake = ratios_of(toolq_stateless, toolq)
    # One worker and one facade were idle: all of it is charged to the worker (an upper bound).
    idle_per_worker = idle["commands_per_s"]
    throughput = throughput_target(settings["concurrency"])
    callers = f"{settings['concurrency']} callers"
    targets = []
    for era, era_ratios in ((HANDSHAKE, ratios), (STATELESS, ratios_stateless)):
        targets += [
            {
                "era": era,
                "target": f"{era}: sequential p50 <= {TARGETS['p50']:g}x SDK",
                "value": era_ratios["p50"],
                "status": verdict(era_ratios["p50"], TARGETS["p50"]),
            },
            {
                "era": era,
                "target": f"{era}: sequential p99 <= {TARGETS['p99']:g}x SDK",
                "value": era_ratios["p99"],
                "status": verdict(era_ratios["p99"], TARGETS["p99"]),
            },
            {
                "era": era,
                "target": f"{era}: throughput >= {throughput:g}x SDK ({callers})",
                "value": era_ratios["throughput"],
                "status": verdict(era_ratios["throughput"], throughput, at_least=True),
            },
        ]
    targets += [
        {"era": None, "target": f"idle <= {TARGETS['idle_commands_per_s']:g} Redis commands/s/worker",
         "value": idle_per_worker, "status": verdict(idle_per_worker, TARGETS["idle_commands_per_s"])},
        {"era": STATELESS, "target": f"stateless not slower: p50 <= {NOT_SLOWER:g}x handshake",
         "value": stateless_vs_handshake["p50"],
         "status": verdict(stateless_vs_handshake["p50"], NOT_SLOWER)},
        {"era": STATELESS, "target": f"stateless not slower: throughput >= {1 / NOT_SLOWER:.2f}x handshake",
         "value": stateless_vs_handshake["throughput"],
         "status": verdict(stateless_vs_handshake["throughput"], 1 / NOT_SLOWER, at_least=True)},
    ]  # fmt: skip
    arq = None
    if arq_ms:
        arq = {"calls": len(arq_ms), "p50_ms": percentile(arq_ms, 50), "p99_ms": percentile(arq_ms, 99)}
    return {
        "machine": machine,
        "settings": settings,
        "sdk_in_process": sdk,
        "toolq": {**toolq, "idle": idle},
        "arq_defaults": arq,
        "ratios": {key: ratios[key] for key in ("p50", "p99", "throughput")},
        "targets": targets,
        # The stateless era (2026-07-28), next to the handshake-era fields above.
        "eras": {HANDSHAKE: PROTOCOL_VERSION, STATELESS: STATELESS_VERSION},
        "sdk_in_process_stateless": sdk_stateless,
        "toolq_stateless": toolq_stateless,
        "ratios_handshake": ratios,
        "ratios_stateless": ratios_stateless,
        "ratios_toolq_stateless_vs_handshake": stateless_vs_handshake,
        "paired_p50_toolq_stateless_vs_handshake": paired_ratios(toolq_stateless, toolq),
        # A short call from a client that takes tasks must cost what a plain call does.
        "toolq_task_client": toolq_task_client,
        "paired_p50_toolq_task_client_vs_stateless": paired_ratios(toolq_task_client, toolq_stateless),
        "not_measured": not_measured or {},
    }


def without_nan(value: Any) -> Any:
    """The report with NaN (nothing measured) as null, so --json prints valid JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: without_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nan(item) for item in value]
    return value


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def spread(values: list[float]) -> str:
    good = [v for v in values if v is not None and not math.isnan(v)]
    return f"{fmt(min(good))}-{fmt(max(good))}" if good else "n/a"


def paired_ratios(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any]:
    """a / b of the sequential p50 round by round (the two ran seconds apart in each round):
    the median and range of those ratios, less moved by slow drifts in machine load."""
    if a is None or b is None:
        return {"rounds": 0, "median": math.nan, "min": math.nan, "max": math.nan}
    ratios = [
        ratio(x, y)
        for x, y in zip(a["sequential"]["round_p50_ms"], b["sequential"]["round_p50_ms"], strict=False)
    ]
    ratios = [r for r in ratios if not math.isnan(r)]
    return {
        "rounds": len(ratios),
        "median": percentile(ratios, 50) if ratios else math.nan,
        "min": min(ratios, default=math.nan),
        "max": max(ratios, default=math.nan),
    }


def print_table(report: dict[str, Any]) -> None:
    s = report["settings"]
    systems = [
        ("SDK handshake", report["sdk_in_process"]),
        ("SDK stateless", report["sdk_in_process_stateless"]),
        ("toolq handshake", report["toolq"]),
        ("toolq stateless", report["toolq_stateless"]),
    ]
    sdk, sdk_sl, toolq, toolq_sl = (summary for _, summary in systems)
    compared = [(toolq, sdk), (toolq_sl, sdk_sl), (toolq_sl, toolq)]

    def row(label: str, part: str, key: str, digits: int = 2) -> tuple[str, ...]:
        values = [fmt(metric(summary, part, key), digits) for _, summary in systems]
        ratios = [ratio(metric(a, part, key), metric(b, part, key)) for a, b in compared]
        return (label, *values, *("n/a" if math.isnan(r) else f"{r:.2f}x" for r in ratios))

    rows: list[tuple[str, ...]] = []
    for key, label in (("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99"), ("max_ms", "max")):
        rows.append(row(f"sequential {label} (ms)", "sequential", key))
    rows.append(row(f"throughput, {s['concurrency']} callers (calls/s)", "load", "calls_per_s", 0))
    for key, label in (("p50_ms", "p50"), ("p99_ms", "p99")):
        rows.append(row(f"under load {label} (ms)", "load", key))
    for part, label in (("sequential", "sequential"), ("load", "under load")):
        rows.append(row(f"server CPU per call, {label} (ms)", part, "server_cpu_ms_per_call", 3))
        rows.append(row(f"  of which HTTP process, {label} (ms)", part, "http_process_cpu_ms_per_call", 3))
    rows.append(
        (
            "sequential p50 per round, min-max (ms)",
            *(spread(summary["sequential"]["round_p50_ms"]) if summary else "n/a" for _, summary in systems),
            "",
            "",
            "",
        )
    )
    rows.append(
        ("errors", *(str(summary["errors"]) if summary else "n/a" for _, summary in systems), "", "", "")
    )

    headers = (
        "metric",
        *(name for name, _ in systems),
        "toolq/SDK handshake",
        "toolq/SDK stateless",
        "toolq stateless/handshake",
    )
    widths = [max(len(r[i]) for r in (headers, *rows)) for i in range(len(headers))]
    line = "-+-".join("-" * w for w in widths)
    machine = report["machine"]
    print(
        f"machine: {machine['nproc']} CPUs, Python {machine['python']}, "
        f"redis-server {machine['redis_server']}, mcp {machine['mcp']}, arq {machine['arq']}, "
        f"aiohttp {machine['aiohttp']}, uvicorn {machine['uvicorn']}"
    )
    print(
        f"settings: {s['calls']} sequential calls, {s['concurrency']} callers for {s['duration']:g} s, "
        f"{s['warmup']} warm-up calls, one toolq worker, each per system and era; the systems alternate in "
        f"{max(s['rounds'], math.ceil(s['calls'] / s['batch']))} rounds (sequential), {s['rounds']} (load)"
    )
    print(
        f"eras: handshake = {PROTOCOL_VERSION} (initialize, Mcp-Session-Id); stateless = {STATELESS_VERSION} "
        "(no session; Mcp-Method/Mcp-Name headers and params._meta envelope on every request)\n"
    )
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print(line)
    for r in rows:
        print(
            " | ".join([r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True))])
        )
    print(
        "\nserver CPU: the SDK's one process; toolq's facade + worker + redis-server (from /proc); "
        "HTTP process: the SDK's process, toolq's facade"
    )
    idle = report["toolq"]["idle"]
    print(
        f"idle Redis commands/s (1 facade + 1 worker, {idle['seconds']:g} s): {fmt(idle['commands_per_s'])}; "
        f"by name: {json.dumps(idle['by_command'])}"
    )
    arq = report["arq_defaults"]
    if arq:
        print(
            f"reference B, arq defaults (0.5 s polls), {arq['calls']} sequential calls: "
            f"p50 {fmt(arq['p50_ms'], 1)} ms, p99 {fmt(arq['p99_ms'], 1)} ms"
        )
    paired = report["paired_p50_toolq_stateless_vs_handshake"]
    if paired["rounds"]:
        print(
            f"toolq stateless / handshake, sequential p50 round by round ({paired['rounds']} rounds): "
            f"median {fmt(paired['median'])}x, range {fmt(paired['min'])}-{fmt(paired['max'])}x"
        )
    tasks = report["paired_p50_toolq_task_client_vs_stateless"]
    task_client = report["toolq_task_client"]
    if tasks["rounds"] and task_client:
        print(
            f"toolq, a client that takes tasks / one that does not (stateless), sequential p50 round by "
            f"round ({tasks['rounds']} rounds): median {fmt(tasks['median'])}x, range "
            f"{fmt(tasks['min'])}-{fmt(tasks['max'])}x; "
            f"its p50 {fmt(metric(task_client, 'sequential', 'p50_ms'))} ms"
        )
    for name, why in report["not_measured"].items():
        print(f"NOT MEASURED: {name}: {why}")
    print("\ntargets (DESIGN.md; the last two: the stateless era must not be slower than the handshake era):")
    for target in report["targets"]:
        print(f"  {target['status']:4}  {target['target']:<52} measured {fmt(target['value'])}")


def machine_info() -> dict[str, str]:
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    return {
        "nproc": str(os.cpu_count()),
        "python": platform.python_version(),
        "redis_server": next((w[2:] for w in redis_version if w.startswith("v=")), "?"),
        "platform": platform.platform(),
        **{name: version(name) for name in ("mcp", "arq", "aiohttp", "uvicorn", "redis")},
    }


# --- processes -------------------------------------------------------------------------------------


@dataclass
class Endpoints:
    sdk_url: str
    toolq_url: str
    redis_url: str
    stack: Stack
    sdk_pids: list[int]
    toolq_pids: list[int]


@contextlib.contextmanager
def running_systems(tmp: Path) -> Iterator[Endpoints]:
    """redis-server, facade, worker and the SDK reference; every one is stopped on the way out."""
    redis = RedisServer(tmp)
    stack = Stack(redis, tmp)
    try:
        redis.start()
        sdk_port = free_port()
        sdk = stack.start("sdk-reference", [THIS_FILE, "--serve-sdk-reference", "--port", str(sdk_port)])
        facade, toolq_url = stack.facade()
        worker = stack.worker("bench-worker", "--tools", "add")
        wait_until(lambda: port_open(sdk_port) or not sdk.alive(), 30, "the SDK reference to listen")
        if not sdk.alive():
            raise RuntimeError(f"the SDK reference exited:\n{sdk.output()}")
        assert redis.process is not None
        yield Endpoints(
            sdk_url=f"http://127.0.0.1:{sdk_port}/mcp",
            toolq_url=toolq_url,
            redis_url=redis.url,
            stack=stack,
            sdk_pids=[sdk.process.pid],
            toolq_pids=[facade.process.pid, worker.process.pid, redis.process.pid],
        )
    finally:
        stack.stop_all()
        redis.stop()


async def wait_for_tool(client: McpClient, within: float) -> None:
    deadline = time.monotonic() + within
    while "add" not in await client.tool_names():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{client.name}: tool 'add' not listed after {within:g} s")
        await asyncio.sleep(0.1)


async def open_clients(clients: list[McpClient]) -> tuple[list[McpClient], dict[str, str]]:
    """Open each client in its era; a stateless-era client its server refuses is left out (and
    said why), a handshake-era one that fails stops the run."""
    opened, not_measured = [], {}
    for client in clients:
        try:
            answer = await client.open()
        except (CallFailed, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            if not client.stateless:
                raise
            log(f"{client.name}: the server does not serve {STATELESS_VERSION} ({exc}); not measured")
            not_measured[client.name] = f"server/discover failed: {exc}"
            continue
        if client.stateless:
            log(f"{client.name}: server/discover lists {answer.get('supportedVersions')}")
        opened.append(client)
    return opened, not_measured


async def run_benchmark(args: argparse.Namespace, systems: Endpoints) -> dict[str, Any]:
    sdk = McpClient("SDK in-process", systems.sdk_url, args.concurrency, systems.sdk_pids)
    sdk_stateless = McpClient(
        "SDK in-process, stateless", systems.sdk_url, args.concurrency, systems.sdk_pids, STATELESS
    )
    toolq = McpClient("toolq", systems.toolq_url, args.concurrency, systems.toolq_pids)
    toolq_stateless = McpClient(
        "toolq, stateless", systems.toolq_url, args.concurrency, systems.toolq_pids, STATELESS
    )
    toolq_tasks = McpClient(
        "toolq, stateless, takes tasks",
        systems.toolq_url,
        args.concurrency,
        systems.toolq_pids,
        STATELESS,
        takes_tasks=True,
    )
    every = [sdk, sdk_stateless, toolq, toolq_stateless, toolq_tasks]
    try:
        clients, not_measured = await open_clients(every)
        await wait_for_tool(toolq, 30)
        for client in clients:
            answer = await client.add(2, 40)
            log(f"{client.name} answers add(2, 40) -> {answer}")
        samples = await measure(
            clients,
            calls=args.calls,
            concurrency=args.concurrency,
            duration=args.duration,
            rounds=args.rounds,
            warmup=args.warmup,
            batch=args.batch,
        )
    finally:
        for client in every:
            await client.close()
    log(f"idle: Redis commands for {args.idle_seconds:g} s with one facade and one worker idle")
    await asyncio.sleep(1.0)  # let the last calls' stragglers (abort marks, sweeps) settle
    idle = await idle_cost(systems.redis_url, args.idle_seconds)
    arq_ms = None
    if args.arq_calls > 0:
        log(f"reference B: {args.arq_calls} calls through arq with its defaults")
        systems.stack.start("arq-reference", [THIS_FILE, "--serve-arq-reference"])
        arq_ms = await arq_default_latencies(systems.redis_url, args.arq_calls)
    settings = {
        key: getattr(args, key)
        for key in ("calls", "concurrency", "duration", "rounds", "warmup", "arq_calls", "batch")
    }

    def summary(client: McpClient) -> dict[str, Any] | None:
        return summarize(samples[client.name]) if client.name in samples else None

    return build_report(
        settings=settings,
        machine=machine_info(),
        sdk=summarize(samples[sdk.name]),
        toolq=summarize(samples[toolq.name]),
        idle=idle,
        arq_ms=arq_ms,
        sdk_stateless=summary(sdk_stateless),
        toolq_stateless=summary(toolq_stateless),
        toolq_task_client=summary(toolq_tasks),
        not_measured=not_measured,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="sequential calls per system (default 2000)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent callers (default 32)")
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds under load per system (default 5)"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternating rounds per measurement (default 2)"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=100,
        help="sequential calls per system per round, at most (default 100; more rounds if needed)",
    )
    parser.add_argument("--warmup", type=int, default=100, help="warm-up calls per system (default 100)")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="idle window (default 10)")
    parser.add_argument("--arq-calls", type=int, default=20, help="arq-defaults calls; 0 skips (default 20)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--serve-sdk-reference", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-arq-reference", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.calls < args.rounds or args.concurrency < 1 or args.rounds < 1 or args.batch < 1:
        parser.error("need --calls >= --rounds >= 1, --concurrency >= 1 and --batch >= 1")
    return args


def raise_on_sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_sdk_reference:
        serve_sdk_reference(args.port)
        return 0
    if args.serve_arq_reference:
        serve_arq_reference(os.environ["REDIS_URL"])
        return 0
    if shutil.which("redis-server") is None:
        log("error: redis-server is not installed (apt-get install redis-server)")
        return 2
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop every process started here.
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    try:
        with tempfile.TemporaryDirectory(prefix="toolq-bench-") as tmp, running_systems(Path(tmp)) as systems:
            report = asyncio.run(run_benchmark(args, systems))
    except KeyboardInterrupt:
        log("interrupted; every process this benchmark started has been stopped")
        return 130
    if args.json:
        print(json.dumps(without_nan(report), indent=2))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
