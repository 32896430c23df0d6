"""The facade's side of the queue: enqueue a call, wait for its pushed result, abort it.

One pub/sub connection per facade process receives every completion and progress event for
the calls it is waiting on (workers publish to this facade's own events channel, named in the
job id). The waiter is registered before the job is enqueued, so no completion can be missed;
a slow sweep of the result keys catches what pub/sub drops (a Redis restart, a worker dying
between storing and publishing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arq.connections import ArqRedis
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from redis.exceptions import RedisError

from facade.errors import Refused, store_unavailable
from facade.observed import current
from workers import contract
from workers.pipelined_redis import HotPath, RedisPyCommands, Script

log = logging.getLogger("toolq.queue")

#: Receives what a running job reports before its result: progress and log entries.
EventCallback = Callable[[contract.ProgressEvent | contract.LogEvent], Awaitable[None]]


ENQUEUE_SCRIPT = Script((Path(__file__).parent / "scripts" / "enqueue.lua").read_text())
#: Reconnect back-off cap: once Redis is back, the events channel is back within this.
MAX_BACKOFF_SECONDS = 1.0
#: After a reconnect, a call whose job Redis no longer has is declared lost only this much later:
#: a worker still running it puts its lease back within a fraction of a second (workers/leases.py).
LOST_AFTER_SECONDS = 3.0


class CallTimedOut(Exception):
    """No result arrived before the call's deadline; the job was aborted."""


@dataclass(frozen=True)
class RateLimit:
    """A token bucket in Redis, shared by every facade replica."""

    key: str
    per_second: float
    burst: int
    #: Whose limit, for the message: "100 calls/s for principal alice".
    what: str


@dataclass(frozen=True)
class Admission:
    """What a call must pass to be queued: room in its pool, and a token of each rate limit."""

    #: The most jobs (queued and running) the pool's queue may hold; 0: no limit.
    max_backlog: int = 0
    rates: tuple[RateLimit, ...] = ()
    #: How long one queued call keeps the pool busy (the tool's pace over the pool's slots),
    #: for the retry-after hint; None while the pace is not known.
    seconds_per_queued_call: float | None = None

    def retry_after(self, backlog: int) -> int:
        """Seconds until the pool has worked off enough of its backlog to take more."""
        if not self.seconds_per_queued_call:
            return 1
        excess = max(1, backlog - self.max_backlog + 1)
        return max(1, min(60, math.ceil(excess * self.seconds_per_queued_call)))


@dataclass(frozen=True)
class SubmittedJob:
    job_id: str
    queue: str
    #: time.monotonic() at which the call gives up on it.
    deadline: float


@dataclass
class _Waiter:
    queue: str
    events: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    registered: float = field(default_factory=time.monotonic)
    #: Set once the job is in Redis: only then can it be found missing.
    enqueued: bool = False


class QueueClient:
    def __init__(
        self,
        redis: ArqRedis,
        facade_id: str | None = None,
        *,
        sweep_seconds: float = 1.0,
        on_registry_change: Callable[[], None] | None = None,
        scripts: HotPath | None = None,
    ) -> None:
        """`on_registry_change` runs when a worker joins or leaves (and after a reconnect);
        `scripts` runs the enqueue script (a PipelinedRedis; by default `redis` itself)."""
        self.redis = redis
        self.scripts = scripts or RedisPyCommands(redis)
        self.facade_id = facade_id or contract.new_facade_id()
        self._channel = contract.events_channel(self.facade_id)
        self._sweep_seconds = sweep_seconds
        self._broadcasts: dict[str, Callable[[bytes], None]] = {
            contract.REGISTRY_CHANNEL: lambda _payload: self._registry_changed()
        }
        self._on_registry_change = on_registry_change
        self._waiters: dict[str, _Waiter] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._lost_checks: set[asyncio.Task[None]] = set()
        self._subscribed = asyncio.Event()
        #: Told when a Redis command fails (component, False) and when the events channel is
        #: connected again after a failure (component, True): for the metrics.
        self.on_redis_trouble: Callable[[str, bool], None] | None = None

    def on_broadcast(self, channel: str, handler: Callable[[bytes], None]) -> None:
        """Call `handler(payload)` for every message on `channel` (register before start())."""
        self._broadcasts[channel] = handler

    async def broadcast(self, channel: str, payload: bytes) -> None:
        """Publish to every facade process; raises StoreUnavailable."""
        try:
            await self.redis.publish(channel, payload)
        except (RedisError, OSError) as exc:
            raise store_unavailable("the queue", exc) from exc

    @property
    def pending(self) -> int:
        return len(self._waiters)

    async def start(self, *, wait_seconds: float = 5.0) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="toolq-events"),
            asyncio.create_task(self._sweep(), name="toolq-sweep"),
        ]
        # Serve even if Redis is down at start: calls fail clearly until it is back.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_seconds):
                await self._subscribed.wait()

    async def close(self) -> None:
        self._tasks += self._lost_checks
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def call(
        self,
        queue: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        timeout: float,  # noqa: ASYNC109 - the deadline is also the job's expiry in the queue
        on_event: EventCallback | None = None,
        progress: bool = False,
        log_level: str | None = None,
        traceparent: str | None = None,
        admission: Admission | None = None,
    ) -> contract.CallResult:
        """Run `tool` on `queue` and return its result; raises CallTimedOut, Refused or
        StoreUnavailable.

        The job reports progress when `progress` is set and log entries at or above `log_level`;
        `on_event` receives them.
        """
        job = await self.submit(
            queue,
            tool,
            arguments,
            timeout=timeout,
            progress=progress and on_event is not None,
            log_level=log_level if on_event is not None else None,
            traceparent=traceparent,
            admission=admission,
        )
        return await self.outcome(job, on_event=on_event)

    async def submit(
        self,
        queue: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        timeout: float,  # noqa: ASYNC109 - the deadline is also the job's expiry in the queue
        progress: bool = False,
        log_level: str | None = None,
        traceparent: str | None = None,
        admission: Admission | None = None,
        task: contract.TaskRef | None = None,
    ) -> SubmittedJob:
        """Queue a job, listening for its result from before it is queued; raises Refused or
        StoreUnavailable. Its result is `outcome(job)`, which must be awaited (or the job aborted)."""
        job_id = contract.new_job_id(self.facade_id)
        record = current()
        if record is not None:
            record.job_id = job_id
            traceparent = record.traceparent or traceparent  # the facade's span, when tracing
        waiter = _Waiter(queue)
        self._waiters[job_id] = waiter
        job: contract.JobArguments = {"arguments": arguments, "progress": progress}
        if log_level is not None:
            job["log_level"] = log_level
        if traceparent is not None:
            job["traceparent"] = traceparent
        if task is not None:
            job["task"] = task
        try:
            await self._enqueue(
                queue,
                job_id,
                contract.job_function(tool),
                job,
                expires=timeout,
                admission=admission or Admission(),
            )
        except (RedisError, OSError) as exc:
            self._waiters.pop(job_id, None)
            self._trouble("enqueue")
            raise store_unavailable("the queue", exc) from exc
        except BaseException:
            self._waiters.pop(job_id, None)
            raise
        waiter.enqueued = True
        return SubmittedJob(job_id, queue, time.monotonic() + timeout)

    async def outcome(
        self, job: SubmittedJob, *, on_event: EventCallback | None = None, abort_on_cancel: bool = True
    ) -> contract.CallResult:
        """The result of a submitted job; raises CallTimedOut at its deadline (and aborts it).
        Cancelled, it aborts the job too, unless `abort_on_cancel` is off (the job carries on
        for a task whose facade is stopping)."""
        waiter = self._waiters[job.job_id]
        try:
            return await self._wait(job.job_id, waiter, job.deadline, on_event)
        except TimeoutError:
            self._abort_soon(job.queue, job.job_id)
            raise CallTimedOut("no result before the deadline") from None
        except BaseException:
            # Cancelled (the client left or cancelled) or the progress stream broke: nobody will
            # read this result, so stop the job.
            if abort_on_cancel:
                self._abort_soon(job.queue, job.job_id)
            raise
        finally:
            self._waiters.pop(job.job_id, None)

    async def _wait(
        self, job_id: str, waiter: _Waiter, deadline: float, on_event: EventCallback | None
    ) -> contract.CallResult:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining):  # not wait_for: it can lose a cancel (3.11)
                event = await waiter.events.get()
            if event["type"] == "done":
                if "result" in event:
                    result: contract.CallResult = event["result"]
                    return result
                stored = await self._stored_result(job_id)
                if stored is not None:
                    return stored
                continue  # announced but not readable now: the sweep reads it later
            if on_event is not None:
                await on_event(event)  # type: ignore[arg-type]

    async def _enqueue(
        self,
        queue: str,
        job_id: str,
        function: str,
        job: contract.JobArguments,
        *,
        expires: float,
        admission: Admission,
    ) -> None:
        """Admit the call and put an arq job on `queue` and wake its workers, in one round trip.

        The job is exactly what arq's `enqueue_job` writes (its serializer, keys and score), minus
        enqueue_job's duplicate-id check (WATCH, EXISTS, then MULTI: three round trips), which
        guards nothing here: every job id is fresh and random. The job key expires at the call's
        deadline, so a backlog never runs a call nobody waits for ("job expired"). One script
        (scripts/enqueue.lua) decides admission and enqueues, atomically: a refused call leaves
        nothing behind. Raises Refused.
        """
        payload = serialize_job(function, (job,), {}, None, timestamp_ms(), serializer=contract.dumps_finite)
        keys = [contract.job_key(job_id), queue, *(limit.key for limit in admission.rates)]
        args: list[Any] = [max(1, int(expires * 1000)), payload, job_id]
        args += [contract.ready_list(queue), admission.max_backlog]
        for limit in admission.rates:
            args += [limit.burst, limit.per_second / 1000]
        admitted, backlog, wait_ms = await self.scripts.run_script(ENQUEUE_SCRIPT, keys, args)
        if admitted == 0:
            raise Refused(
                "overloaded",
                f"toolq is overloaded: {backlog} calls are queued or running for this tool's workers, "
                "more than they can finish in time",
                admission.retry_after(backlog),
            )
        if admitted == -1:
            limit = admission.rates[backlog - 1]
            raise Refused(
                "rate_limited", f"rate limit reached: {limit.what}", max(1, math.ceil(wait_ms / 1000))
            )

    async def _stored_result(self, job_id: str) -> contract.CallResult | None:
        """A result announced without its data (too large to push): read from arq's result key."""
        try:
            raw = await self.redis.get(contract.result_key(job_id))
        except (RedisError, OSError) as exc:
            log.debug("could not read the result of %s: %s", job_id, exc)
            return None
        return contract.call_result_from_arq_record(raw) if raw is not None else None

    # --- abort ------------------------------------------------------------------------------

    def abort_soon(self, job: SubmittedJob) -> None:
        """Stop a submitted job in the background."""
        self._abort_soon(job.queue, job.job_id)

    def _abort_soon(self, queue: str, job_id: str) -> None:
        task = asyncio.create_task(self.abort(queue, job_id))
        task.add_done_callback(_log_failure)

    async def abort(self, queue: str, job_id: str) -> None:
        """Stop a job: unqueue it if it has not started, cancel it on its worker if it has."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(queue, job_id)
            pipe.zadd(contract.ABORT_JOBS, {job_id: int(time.time() * 1000)})
            pipe.publish(contract.wake_channel(queue), contract.wake_message(job_id, abort=True))
            await pipe.execute()

    # --- events ------------------------------------------------------------------------------

    def _deliver(self, event: dict[str, Any]) -> None:
        waiter = self._waiters.get(event.get("job_id", ""))
        if waiter is not None:
            waiter.events.put_nowait(event)

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self._channel, *self._broadcasts)
                self._subscribed.set()
                if backoff > 0.1:
                    self._trouble("events", reconnected=True)
                    # Events published while we were away are lost: look at the result keys now,
                    # and a little later fail the calls whose jobs Redis no longer has and no
                    # worker holds (it restarted empty).
                    await self._check_results(min_age=0.0)
                    self._find_lost_soon()
                    self._registry_changed()
                backoff = 0.1
                async for message in pubsub.listen():
                    if message["type"] != "message":
                        continue
                    channel = message["channel"]
                    channel = channel.decode() if isinstance(channel, bytes) else channel
                    if channel in self._broadcasts:
                        self._broadcasts[channel](message["data"])
                        continue
                    try:
                        self._deliver(contract.loads(message["data"]))
                    except (ValueError, TypeError, AttributeError):
                        log.warning("ignoring a malformed event on %s", self._channel)
            except (RedisError, OSError) as exc:
                self._subscribed.clear()
                self._trouble("events")
                log.warning("events channel lost (%s); reconnecting in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _trouble(self, component: str, *, reconnected: bool = False) -> None:
        if self.on_redis_trouble is not None:
            self.on_redis_trouble(component, reconnected)

    def _find_lost_soon(self) -> None:
        if self._lost_checks:
            return  # one is on its way

        async def find_lost() -> None:
            await asyncio.sleep(LOST_AFTER_SECONDS)
            try:
                await self._check_results(min_age=0.0, find_lost=True)
            except (RedisError, OSError) as exc:
                log.debug("looking for lost calls failed: %s", exc)  # the next reconnect looks again

        task = asyncio.create_task(find_lost(), name="toolq-find-lost")
        self._lost_checks.add(task)
        task.add_done_callback(self._lost_checks.discard)

    def _registry_changed(self) -> None:
        if self._on_registry_change is not None:
            self._on_registry_change()

    async def _sweep(self) -> None:
        """The safety net: results whose push never arrived are read from their result keys."""
        last_cleanup = 0.0
        failing = False
        while True:
            await asyncio.sleep(self._sweep_seconds)
            try:
                await self._check_results(min_age=self._sweep_seconds)
                if failing:
                    failing = False
                    self._find_lost_soon()  # Redis is back, perhaps without its data
                if time.monotonic() - last_cleanup > 60:
                    last_cleanup = time.monotonic()
                    # arq never removes abort marks for jobs that finished before the mark.
                    stale = int((time.time() - 300) * 1000)
                    await self.redis.zremrangebyscore(contract.ABORT_JOBS, "-inf", stale)
            except (RedisError, OSError) as exc:
                failing = True
                log.debug("result sweep skipped: %s", exc)

    async def _check_results(self, *, min_age: float, find_lost: bool = False) -> None:
        now = time.monotonic()
        job_ids = [job_id for job_id, w in self._waiters.items() if now - w.registered >= min_age]
        if not job_ids:
            return
        # Jobs (queued, or held by a worker) first, then results: a job finishing in between is
        # seen by the second read.
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids if find_lost else ():
                pipe.exists(contract.job_key(job_id), contract.IN_PROGRESS_KEY_PREFIX + job_id)
            pipe.mget([contract.result_key(job_id) for job_id in job_ids])
            *queued, records = await pipe.execute()
        if not find_lost:
            queued = [1] * len(job_ids)
        for job_id, job_exists, raw in zip(job_ids, queued, records, strict=True):
            waiter = self._waiters.get(job_id)
            if raw is not None:
                result = contract.call_result_from_arq_record(raw)
            elif not job_exists and waiter is not None and waiter.enqueued:
                result = contract.failed_result(
                    "unavailable",
                    "The queue lost this call (Redis restarted without its data); it may or may not "
                    "have run. Try again.",
                )
            else:
                continue
            self._deliver({"type": "done", "job_id": job_id, "result": result})


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("aborting a job failed: %s", task.exception())
