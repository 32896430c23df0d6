"""A worker's metrics: Prometheus on a port of its own, and recent figures for `toolq status`.

Each worker process serves its own registry (TOOLQ_METRICS_PORT; off by default, so that
several workers on one host need no ports of their own): one process, one registry, no shared
files, so nothing here needs prometheus_client's multiprocess mode; the child processes that
run plain-`def` tools record nothing (their worker times them). The figures of the last few
minutes per tool (calls, errors, queue wait and run time as histograms) also go to Redis every
HEARTBEAT_SECONDS, and only when there were calls, so any `toolq status` sees the whole pool.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge, start_http_server
from redis.asyncio import Redis

from workers import contract
from workers.call_metrics import LabeledCounter, LabeledHistogram, redis_trouble_counters

log = logging.getLogger("toolq.worker.metrics")

#: Histogram buckets of the job timings (seconds): a trivial tool's fraction of a millisecond
#: up to a slow tool's minutes, as OpenTelemetry's MCP conventions bucket call durations.
SECONDS_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    30,
    60,
    120,
    300,
)


@dataclass
class _ToolWindow:
    calls: int = 0
    errors: int = 0
    wait: list[int] = field(default_factory=lambda: [0] * (len(contract.STATS_BUCKETS_MS) + 1))
    run: list[int] = field(default_factory=lambda: [0] * (len(contract.STATS_BUCKETS_MS) + 1))


class RecentStats:
    """Per-tool figures since the last flush, written to Redis's per-minute stats hashes."""

    def __init__(self) -> None:
        self._tools: dict[str, _ToolWindow] = {}

    def add(self, tool: str, ok: bool, wait_ms: float, run_ms: float) -> None:
        window = self._tools.get(tool)
        if window is None:
            window = self._tools[tool] = _ToolWindow()
        window.calls += 1
        window.errors += 0 if ok else 1
        window.wait[bisect.bisect_left(contract.STATS_BUCKETS_MS, wait_ms)] += 1
        window.run[bisect.bisect_left(contract.STATS_BUCKETS_MS, run_ms)] += 1

    async def flush(self, redis: Redis, now: float | None = None) -> None:
        """Add what was counted to this minute's hashes (one round trip); nothing when idle."""
        if not self._tools:
            return
        tools, self._tools = self._tools, {}
        minute = int((now or time.time()) // 60)
        async with redis.pipeline(transaction=False) as pipe:
            for tool, window in tools.items():
                key = contract.stats_key(tool, minute)
                pipe.hincrby(key, "calls", window.calls)
                if window.errors:
                    pipe.hincrby(key, "errors", window.errors)
                for prefix, counts in (("w", window.wait), ("r", window.run)):
                    for index, count in enumerate(counts):
                        if count:
                            pipe.hincrby(key, f"{prefix}{index}", count)
                pipe.expire(key, contract.STATS_KEEP_SECONDS)
            await pipe.execute()


class WorkerMetrics:
    """The worker's Prometheus registry (`enabled=False`: nothing is recorded) and its recent
    per-tool figures."""

    def __init__(
        self,
        pool: str,
        worker_id: str,
        *,
        running: Callable[[], int],
        slots: int,
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self.pool = pool
        self.recent = RecentStats()
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.jobs = LabeledCounter(
            "toolq_jobs", "Jobs this worker ran, by tool and outcome.", ["pool", "tool", "outcome"]
        )
        self.queue_wait = LabeledHistogram(
            "toolq_job_queue_wait_seconds",
            "How long a job waited in its pool's queue before this worker claimed it.",
            ["pool", "tool"],
            SECONDS_BUCKETS,
        )
        self.run = LabeledHistogram(
            "toolq_job_run_seconds", "How long the tool ran for one job.", ["pool", "tool"], SECONDS_BUCKETS
        )
        for collector in (self.jobs, self.queue_wait, self.run):
            registry.register(collector)
        jobs_running = Gauge(
            "toolq_worker_jobs_running", "Jobs this worker runs now.", ["pool"], registry=registry
        )
        jobs_running.labels(pool).set_function(lambda: float(running()))
        Gauge(
            "toolq_worker_slots", "Jobs this worker runs at once, at most.", ["pool"], registry=registry
        ).labels(pool).set(slots)
        Gauge(
            "toolq_worker_info",
            "This worker: its pool and id (always 1).",
            ["pool", "worker_id"],
            registry=registry,
        ).labels(pool, worker_id).set(1)
        self.redis_errors, self.redis_reconnects = redis_trouble_counters(registry)

    def job_done(self, tool: str, outcome: str, wait_ms: float, run_ms: float) -> None:
        """One job finished (`outcome`: ok or the failure's kind)."""
        if not self.enabled:
            return
        self.jobs.child(self.pool, tool, outcome).inc()
        self.queue_wait.child(self.pool, tool).observe(wait_ms / 1000)
        self.run.child(self.pool, tool).observe(run_ms / 1000)
        self.recent.add(tool, outcome == "ok", wait_ms, run_ms)

    def redis_error(self, component: str) -> None:
        self.redis_errors.labels(component).inc()

    def redis_reconnect(self, component: str) -> None:
        self.redis_reconnects.labels(component).inc()

    def serve(self, host: str, port: int) -> None:
        """Serve /metrics on `host:port` from a thread of its own."""
        start_http_server(port, addr=host, registry=self.registry)
        log.info("metrics at http://%s:%d/metrics", host, port)
