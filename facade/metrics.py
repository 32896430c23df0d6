"""The facade's metrics, in Prometheus' text format at GET /metrics.

Per request (recorded when its answer is ready, from facade/observed.py):
- `mcp_server_operation_duration_seconds`: OpenTelemetry's MCP metric `mcp.server.operation.
  duration` with its attributes `mcp.method.name`, `gen_ai.tool.name`, `error.type` and
  `mcp.protocol.version` as labels (its buckets, with three below 10 ms for quick calls);
- `toolq_calls_total{tool, era, outcome}` and a call's time split three ways:
  `toolq_call_queue_wait_seconds` (enqueued until a worker claimed it, by Redis's clock),
  `toolq_call_run_seconds` (the tool's run) and `toolq_call_delivery_seconds` (the rest:
  admission, hand-off, storing and pushing the result, answering);
- `toolq_refusals_total{reason}`: turned away before being queued (overloaded, rate_limited)
  or for too many failed authentications (auth_rate_limited).
Live: calls waiting here (`toolq_calls_in_flight`), tasks this replica follows, Redis errors
and reconnects. And, read from Redis when scraped (cached for a second; every replica reports
the same, so aggregate them with max): per pool its jobs waiting and running, the age of its
oldest waiting job, its workers and slots; live workers per tool; handshake-era sessions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.asyncio import Redis
from redis.exceptions import RedisError

from facade.catalog import Catalog
from facade.errors import StoreUnavailable
from facade.metrics_merge import merge_expositions
from facade.observed import Observed
from workers import contract
from workers.call_metrics import LabeledCounter, LabeledHistogram, redis_trouble_counters

#: OpenTelemetry's buckets for MCP operation durations, and three below its 10 ms for calls
#: that take about a millisecond.
OPERATION_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
SPLIT_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
#: Pool figures are read from Redis at most this often, whoever scrapes.
POOL_FIGURES_SECONDS = 1.0
#: Sessions are counted (a SCAN) at most this often.
SESSION_COUNT_SECONDS = 10.0


@dataclass
class PoolFigures:
    """What Redis says of the pools, at one moment."""

    waiting: dict[str, int] = field(default_factory=dict)
    running: dict[str, int] = field(default_factory=dict)
    oldest_waiting_seconds: dict[str, float] = field(default_factory=dict)
    workers: dict[str, int] = field(default_factory=dict)
    slots: dict[str, int] = field(default_factory=dict)
    #: (tool, pool) -> live workers serving it there.
    tool_workers: dict[tuple[str, str], int] = field(default_factory=dict)
    sessions: int | None = None


def pool_of(queue: str) -> str:
    return queue.removeprefix(contract.queue_name(""))


async def read_pool_figures(redis: Redis, catalog: Catalog, sessions: int | None) -> PoolFigures:
    """Every live pool's queue, read in two round trips (raises Redis errors)."""
    snapshot = await catalog.snapshot()
    queues = sorted(set(snapshot.workers) | {q for entry in snapshot.tools.values() for q in entry.queues})
    figures = PoolFigures(sessions=sessions)
    for name, entry in snapshot.tools.items():
        for queue in entry.queues:
            figures.tool_workers[(name, pool_of(queue))] = snapshot.workers.get(queue, 0)
    if not queues:
        return figures
    async with redis.pipeline(transaction=False) as pipe:
        for queue in queues:
            ready = contract.ready_list(queue)
            pipe.llen(ready)
            pipe.zcard(queue)
            pipe.lindex(ready, -1)  # the oldest id still waiting: the list's right end
        pipe.time()
        *answers, (seconds, micros) = await pipe.execute()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    oldest: dict[str, bytes] = {}
    for index, queue in enumerate(queues):
        waiting, jobs, oldest_id = answers[3 * index : 3 * index + 3]
        pool = pool_of(queue)
        figures.waiting[pool] = int(waiting)
        figures.running[pool] = max(0, int(jobs) - int(waiting))
        figures.workers[pool] = snapshot.workers.get(queue, 0)
        figures.slots[pool] = snapshot.slots.get(queue, 0)
        figures.oldest_waiting_seconds[pool] = 0.0
        if oldest_id is not None:
            oldest[queue] = oldest_id
    if oldest:
        async with redis.pipeline(transaction=False) as pipe:
            for queue, job_id in oldest.items():
                pipe.zscore(queue, job_id)
            scores = await pipe.execute()
        for (queue, _), score in zip(oldest.items(), scores, strict=True):
            if score is not None:
                figures.oldest_waiting_seconds[pool_of(queue)] = max(0.0, (now_ms - score) / 1000)
    return figures


async def count_sessions(redis: Redis) -> int:
    """Handshake-era sessions alive, over every principal's index."""
    total = 0
    async for key in redis.scan_iter(match=contract.session_index_key(None) + "*", count=500):
        total += int(await redis.zcard(key))
    return total


class _PoolCollector(Collector):
    def __init__(self, figures: Callable[[], PoolFigures | None]) -> None:
        self._figures = figures

    def collect(self) -> Iterator[Metric]:
        figures = self._figures()
        if figures is None:
            return
        for name, doc, values in (
            ("toolq_pool_jobs_waiting", "Jobs queued that no worker of the pool took yet.", figures.waiting),
            (
                "toolq_pool_jobs_running",
                "Jobs the pool's workers hold (running or storing).",
                figures.running,
            ),
            ("toolq_pool_workers", "Live workers of the pool.", figures.workers),
            ("toolq_pool_slots", "Jobs the pool's live workers run at once, together.", figures.slots),
        ):
            family = GaugeMetricFamily(name, doc, labels=["pool"])
            for pool, value in sorted(values.items()):
                family.add_metric([pool], value)
            yield family
        oldest = GaugeMetricFamily(
            "toolq_pool_oldest_waiting_seconds",
            "Age of the oldest job no worker of the pool took yet (0 when none waits).",
            labels=["pool"],
        )
        for pool, seconds in sorted(figures.oldest_waiting_seconds.items()):
            oldest.add_metric([pool], seconds)
        yield oldest
        tool_workers = GaugeMetricFamily(
            "toolq_tool_workers", "Live workers serving the tool, by pool.", labels=["tool", "pool"]
        )
        for (tool, pool), count in sorted(figures.tool_workers.items()):
            tool_workers.add_metric([tool, pool], count)
        yield tool_workers
        if figures.sessions is not None:
            yield GaugeMetricFamily(
                "toolq_sessions", "Handshake-era sessions alive (all replicas).", value=figures.sessions
            )


class FacadeMetrics:
    """The facade's registry. With `enabled=False` nothing is recorded per request (the cost of
    recording, measured by the benchmark, is what is left out); /metrics still answers."""

    def __init__(
        self,
        redis: Redis,
        catalog: Catalog,
        *,
        in_flight: Callable[[], int],
        tasks_followed: Callable[[], int],
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self._redis = redis
        self._catalog = catalog
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.operations = LabeledHistogram(
            "mcp_server_operation_duration_seconds",
            "MCP request duration as observed by the server, from receipt until the answer "
            "(OpenTelemetry mcp.server.operation.duration).",
            ["mcp_method_name", "gen_ai_tool_name", "error_type", "mcp_protocol_version"],
            OPERATION_BUCKETS,
        )
        self.calls = LabeledCounter(
            "toolq_calls", "Tool calls answered, by tool, era and outcome.", ["tool", "era", "outcome"]
        )
        registry.register(self.operations)
        registry.register(self.calls)
        self.queue_wait = self._split("toolq_call_queue_wait_seconds", "enqueued until a worker claimed it")
        self.run = self._split("toolq_call_run_seconds", "the tool's run on its worker")
        self.delivery = self._split(
            "toolq_call_delivery_seconds", "the rest: admission, hand-off, storing and pushing, answering"
        )
        self.refusals = Counter(
            "toolq_refusals",
            "Requests turned away before any work: by reason.",
            ["reason"],
            registry=registry,
        )
        self.redis_errors, self.redis_reconnects = redis_trouble_counters(registry)
        Gauge(
            "toolq_calls_in_flight", "Calls waiting here for their result.", registry=registry
        ).set_function(lambda: float(in_flight()))
        Gauge("toolq_tasks_followed", "MCP tasks this replica follows.", registry=registry).set_function(
            lambda: float(tasks_followed())
        )
        self._figures: PoolFigures | None = None
        self._figures_at = float("-inf")
        self._sessions: int | None = None
        self._sessions_at = float("-inf")
        self._refresh = asyncio.Lock()
        #: What Redis says, the same in every process and replica: never summed across them.
        self.shared = CollectorRegistry(auto_describe=True)
        self.shared.register(_PoolCollector(lambda: self._figures))

    def _split(self, name: str, what: str) -> LabeledHistogram:
        histogram = LabeledHistogram(name, f"A call's time: {what}.", ["tool"], SPLIT_BUCKETS)
        self.registry.register(histogram)
        return histogram

    def request_done(self, record: Observed) -> None:
        """A request answered: its operation, and for a tool call its outcome and time split."""
        if not self.enabled or record.method is None:
            return
        seconds = record.elapsed_ms() / 1000
        tool = record.tool or ""
        self.operations.child(
            record.method, tool, record.error_type or "", record.protocol_version or ""
        ).observe(seconds)
        if not tool or record.outcome is None:
            return
        self.calls.child(tool, record.era, record.outcome).inc()
        if record.outcome in ("overloaded", "rate_limited"):
            self.refused(record.outcome)
        if record.run_ms is not None:
            wait = (record.queue_wait_ms or 0.0) / 1000
            run = record.run_ms / 1000
            self.queue_wait.child(tool).observe(wait)
            self.run.child(tool).observe(run)
            self.delivery.child(tool).observe(max(0.0, seconds - wait - run))

    def refused(self, reason: str) -> None:
        if self.enabled:
            self.refusals.labels(reason).inc()

    def redis_error(self, component: str) -> None:
        self.redis_errors.labels(component).inc()

    def redis_trouble(self, component: str, reconnected: bool) -> None:
        """A Redis command failed (`reconnected`: a connection was made again after one failed)."""
        if reconnected:
            self.redis_reconnects.labels(component).inc()
        else:
            self.redis_errors.labels(component).inc()

    def render_own(self) -> bytes:
        """This process's own figures (what a sibling process adds to its own), text format."""
        return generate_latest(self.registry)

    async def render(self, siblings: list[bytes] | None = None) -> bytes:
        """The text format: this process's figures, summed with those of its `siblings` (the
        other processes of a facade started with TOOLQ_FACADE_PROCESSES), then the pool figures
        read from Redis (when stale)."""
        await self._refresh_figures()
        own = self.render_own()
        if siblings:
            own = merge_expositions([own, *siblings])
        return own + generate_latest(self.shared)

    async def _refresh_figures(self) -> None:
        async with self._refresh:
            now = time.monotonic()
            if now - self._figures_at < POOL_FIGURES_SECONDS:
                return
            try:
                if now - self._sessions_at >= SESSION_COUNT_SECONDS:
                    self._sessions = await count_sessions(self._redis)
                    self._sessions_at = now
                self._figures = await read_pool_figures(self._redis, self._catalog, self._sessions)
            except (RedisError, OSError, StoreUnavailable):
                self.redis_error("metrics")
                self._figures = None  # no figures rather than stale ones
            self._figures_at = now
