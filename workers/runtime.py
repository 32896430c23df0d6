"""The worker runtime: arq's Worker, handed each job by its pool and storing it in one trip.

arq out of the box polls its queue every 0.5 s, spends four Redis round trips on a job besides
running it, and leaves callers to poll the result key. toolq keeps arq's job and result
records, its keys, abort marks and retries, and its signal handling and shutdown, but:
- each enqueued job's id is pushed on its pool's ready list, and one worker with free slots
  pops as many ids as it has slots (one blocking pop), so a job starts within a round trip of
  being enqueued and costs one claim however large the pool;
- the popped jobs are claimed and read in one round trip, and a finished job is stored, ended
  and pushed to the waiting facade in one more (workers/claims.py); the job's lease is renewed
  from a thread (workers/leases.py);
- aborts reach every worker of the pool on its wake-up channel, naming the job;
- a safety-net poll (every few seconds, sooner while the pool has work) finds jobs whose id
  the ready list lost or whose worker died, and abort marks whose push was lost;
- results are JSON (workers/contract.py), never pickle.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from arq.connections import ArqRedis, create_pool
from arq.constants import retry_key_prefix
from arq.jobs import SerializationError, deserialize_job_raw, serialize_result
from arq.utils import timestamp_ms
from arq.worker import JobExecutionFailed, Worker
from redis.exceptions import RedisError

from workers import contract, tracing
from workers.claims import ClaimedJob, JobRecords, Outcome
from workers.definition import ToolDefinition
from workers.jobs import ARQ_TIMEOUT_MARGIN_SECONDS, QUEUED_MS, RESULT_JSON, job_for
from workers.leases import LeaseKeeper, sync_client
from workers.logs import fields, trace_id_of
from workers.metrics import WorkerMetrics
from workers.pipelined_redis import HotPath, hot_path
from workers.registry import Registration
from workers.settings import WorkerSettings, redis_settings
from workers.sync_tools import SyncToolRunner

log = logging.getLogger("toolq.worker")
#: One line per job (TOOLQ_LOG_CALLS).
call_log = logging.getLogger("toolq.jobs")
loop_time = time.monotonic

#: Every way Redis can fail a command: unreachable, too slow, or refusing it (e.g. OOM when it
#: is full). The worker's loops back off and go on through all of them, never die of one.
REDIS_ERRORS = (RedisError, ConnectionError, OSError)
#: Reconnect back-off cap: once Redis is back, every loop is back within this.
MAX_BACKOFF_SECONDS = 1.0
#: After a Redis gap, claims wait this long, so that every worker's lease keeper (which retries
#: every 0.2 s) has put back the leases of the jobs it is still running before anyone claims.
CLAIM_HOLD_AFTER_GAP_SECONDS = 1.0
#: How long one blocking pop of the ready list waits: an idle worker costs Redis one command
#: per this many seconds for it.
READY_WAIT_SECONDS = 10
#: While the pool's queue holds jobs (running or waiting), the safety-net poll comes this often
#: (or at the idle interval, if that is shorter): a job whose worker died is picked up this soon
#: after its lease ran out.
BUSY_POLL_SECONDS = 2.0
#: How many of the queue's due jobs one safety-net poll reads: more than the pool runs at once,
#: so that a job the ready list lost is not hidden behind the ones running.
POLL_READ_LIMIT = 1000
#: The most jobs a worker takes from the ready list as it finishes one (its free slots bound it
#: too): enough to fill a busy worker, few enough to leave some for the pool's other workers.
TAKE_ON_FINISH = 16
#: A busy worker takes its next jobs as it finishes others (with no round trip of their own);
#: only when none of its jobs has finished for this long does it wait on the ready list too.
#: An idle worker always waits on it.
LINGER_SECONDS = 0.002
#: arq's retry counter lives this long (arq's run_job sets the same).
RETRY_KEY_SECONDS = 88400


@dataclass
class JobRun:
    """One run of a job, as arq's result record describes it besides its outcome."""

    job_id: str
    job_try: int
    start_ms: int
    #: When the job was enqueued and when it was claimed, by Redis's clock.
    enqueued_ms: int = 0
    claimed_ms: int = 0
    function_name: str = "<unknown>"
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    enqueue_time_ms: int = 0

    @property
    def queued_ms(self) -> int:
        """How long the job waited in the queue before it was claimed."""
        return max(0, self.claimed_ms - self.enqueued_ms)

    def result_record(self, success: bool, result: Any, queue: str) -> bytes:
        """arq's result record of this run, in JSON. A result JSON cannot say is recorded as
        arq's "unable to serialize result"; the arguments came from JSON, so they always can."""
        record = serialize_result(
            self.function_name,
            self.args,
            self.kwargs,
            self.job_try,
            self.enqueue_time_ms,
            success,
            result,
            self.start_ms,
            timestamp_ms(),
            f"{self.job_id}:{self.function_name}",
            queue,
            job_id=self.job_id,
            serializer=contract.dumps_finite,  # the result was checked by the job (jobs.py)
        )
        if record is None:
            raise SerializationError(f"job {self.job_id}: arq could not record its outcome")
        return record


class ToolWorker(Worker):
    """An arq Worker that takes jobs from its pool's ready list instead of polling every 0.5 s."""

    def __init__(
        self,
        definitions: list[ToolDefinition],
        settings: WorkerSettings,
        *,
        redis_pool: ArqRedis | None = None,
        handle_signals: bool = True,
        on_shutdown: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
        lease_client: redis.Redis | None = None,
    ) -> None:
        """`lease_client` is the blocking client the lease keeper's thread uses; by default one
        to `settings.redis_url`."""
        self.settings = settings
        self.definitions = definitions
        self.pool_label = settings.pool_name([d.name for d in definitions])
        queue = contract.queue_name(self.pool_label)
        self.registration = Registration(
            worker_id=settings.worker_id,
            pool=self.pool_label,
            queue=queue,
            specs=[d.spec() for d in definitions],
            host=socket.gethostname(),
            pid=os.getpid(),
            concurrency=settings.concurrency,
            lease_seconds=settings.lease_seconds,
            running=lambda: len(self.tasks),
        )
        self.metrics = WorkerMetrics(
            self.pool_label,
            settings.worker_id,
            running=lambda: len(self.tasks),
            slots=settings.concurrency,
            enabled=settings.metrics,
        )
        self._extra_shutdown = on_shutdown
        self.sync_runner = SyncToolRunner(settings.sync_processes)
        super().__init__(
            functions=[
                job_for(d, settings.worker_id, self.sync_runner.run, settings.max_result_bytes)
                for d in definitions
            ],
            queue_name=queue,
            redis_pool=redis_pool,
            redis_settings=None if redis_pool else redis_settings(settings.redis_url),
            max_jobs=settings.concurrency,
            poll_delay=settings.idle_poll_seconds,
            job_completion_wait=math.ceil(settings.drain_seconds),
            allow_abort_jobs=True,
            handle_signals=handle_signals,
            keep_result=max(60, int(max(d.timeout for d in definitions) * 2)),
            job_serializer=contract.dumps,
            job_deserializer=contract.loads,
            on_shutdown=self._on_shutdown,
        )
        # arq keeps a job's in-progress key for its longest timeout + 10 s, so a job whose worker
        # died waits that long to run again; a renewed lease frees it within lease_seconds.
        self.in_progress_timeout_s = settings.lease_seconds
        self.leases = LeaseKeeper(
            lease_client
            or sync_client(redis_settings(settings.redis_url), timeout=min(2.0, settings.lease_seconds / 3)),
            settings.worker_id,
            settings.lease_seconds,
        )
        self._lease_ms = int(settings.lease_seconds * 1000)
        #: Set whenever a job of this worker finishes (and whenever one ends, its slot free).
        self._finished = asyncio.Event()
        #: Finished jobs whose slot went to the jobs their store took (not to be freed again).
        self._slot_passed_on: set[str] = set()
        #: How long a claimed job's lease is renewed: its tool's timeout and arq's margin.
        self._job_seconds = max(d.timeout for d in definitions) + ARQ_TIMEOUT_MARGIN_SECONDS
        self.records: JobRecords | None = None
        self.hot: HotPath | None = None
        self.pops: HotPath | None = None
        self._owns_pool = redis_pool is None
        #: Set when this worker saw Redis fail: claims wait for the leases to be back first.
        self._redis_gap = False
        #: Set to have the main loop poll now rather than at its next interval.
        self._poll_now = asyncio.Event()
        #: Claimed here but not started yet when their abort arrived: they start as aborted.
        self._aborted_before_start: set[str] = set()
        #: Set while this worker has a free slot: only then does it take jobs from the ready list.
        self._slot_free = asyncio.Event()
        self._slot_free.set()
        self._background: list[asyncio.Task[None]] = []
        #: The registry heartbeat (started by main): while it runs, the worker is listed as live.
        self.heartbeat: asyncio.Task[None] | None = None
        #: The ready-list taker (started by main), and whether the worker is stopping (it ends).
        self._taker: asyncio.Task[None] | None = None
        self._stopping = False

    # --- the loop -------------------------------------------------------------------------

    async def main(self) -> None:
        """arq's Worker.main, with the ready list and a slow safety-net poll in place of its
        fixed 0.5 s poll.

        Mirrors arq 0.28's main: create the pool when none was given (`create_pool` with the
        worker's serializers), log, set `ctx["redis"]`, then loop; arq's on_startup hook, cron
        jobs and health-check key are not used (liveness is the registry entry). Added: the
        ready-list taker (`_take_ready_jobs`), the abort listener, the registry heartbeat, the
        lease keeper, and a back-off on Redis errors instead of dying. tests/test_arq_fence.py
        pins the arq members this relies on.
        """
        if self._pool is None:
            self._pool = await create_pool(
                self.redis_settings,
                job_deserializer=self.job_deserializer,
                job_serializer=self.job_serializer,
                default_queue_name=self.queue_name,
                expires_extra_ms=self.expires_extra_ms,
            )
        # The pool made from settings has a socket a PipelinedRedis can share the Redis of; one
        # handed in (an in-process fake Redis in tests) runs the scripts itself.
        settings = self.redis_settings if self._owns_pool else None
        self.hot = hot_path(settings, self.pool)
        self.pops = hot_path(settings, self.pool, timeout=None)
        self.records = JobRecords(self.pool, self.hot, self.pops, self.queue_name, self.settings.worker_id)
        log.info(
            "worker %s serving %s on queue %s (%s)",
            self.settings.worker_id,
            ", ".join(d.name for d in self.definitions),
            self.queue_name,
            type(asyncio.get_running_loop()).__module__.split(".")[0],
        )
        self.ctx["redis"] = self.pool
        self.heartbeat = asyncio.create_task(self.registration.keep_alive(self.pool), name="toolq-heartbeat")
        self._taker = asyncio.create_task(self._take_ready_jobs(), name="toolq-ready")
        self._background = [
            asyncio.create_task(self._listen_for_wakeups(), name="toolq-wake"),
            self._taker,
            self.heartbeat,
        ]
        if self.settings.metrics:
            self._background.append(asyncio.create_task(self._flush_stats(), name="toolq-stats"))
            if self.settings.metrics_port:
                self.metrics.serve(self.settings.metrics_host, self.settings.metrics_port)
        self.leases.start()
        backoff = 0.1
        next_poll = loop_time()
        while True:
            self._poll_now.clear()
            try:
                if self._redis_gap:
                    await self._hold_claims_after_gap()
                busy = await self._safety_poll()
                interval = min(BUSY_POLL_SECONDS, self.poll_delay_s) if busy else self.poll_delay_s
                next_poll = loop_time() + interval
                backoff = 0.1
            except REDIS_ERRORS as exc:
                if not self._redis_gap:
                    log.warning("Redis unavailable (%s); retrying", exc)
                self.metrics.redis_error("worker")
                self._redis_gap = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancel that arrives
            # as the wake-up does, and the worker would never stop (tests/test_queue_guarantees.py).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_poll - loop_time())):
                    await self._poll_now.wait()

    def _note_gap(self) -> None:
        """Redis failed a command: claims hold until it answers again (the main loop sees to it
        at once)."""
        self.metrics.redis_error("worker")
        self._redis_gap = True
        self._poll_now.set()

    async def _hold_claims_after_gap(self) -> None:
        """Redis failed: once it answers again, wait a moment before claiming anything, so the
        leases of jobs still running on any worker of the pool are back first. Raises the Redis
        error while it does not answer."""
        await self.pool.ping()
        log.info("Redis is back: claims resume in %.1f s", CLAIM_HOLD_AFTER_GAP_SECONDS)
        await asyncio.sleep(CLAIM_HOLD_AFTER_GAP_SECONDS)
        self._redis_gap = False

    async def _safety_poll(self) -> bool:
        """The safety net under the pushes: abort marks for the jobs running here whose push was
        lost, and due jobs nobody holds (their id was lost from the ready list, or their worker
        died and its lease ran out), claimed if this worker has room. True while the pool's
        queue holds jobs, so the next poll comes sooner."""
        assert self.records is not None
        running = list(self.job_tasks)
        if running:
            for job_id in await self.records.abort_marked(running):
                self._abort(job_id)
        if not self.allow_pick_jobs or self.job_counter >= self.max_jobs:
            return True
        due = await self.records.queued(POLL_READ_LIMIT)
        waiting = [job_id for job_id in due if job_id not in self.tasks and not self.leases.holds(job_id)]
        if waiting:
            await self.start_jobs(waiting)
        return bool(due)

    async def _take_ready_jobs(self) -> None:
        """Pop job ids from the pool's ready list while this worker has free slots: one blocking
        pop for as many ids as there are free slots, claimed together. Each id goes to one
        worker of the pool (the one that has waited longest), so a job costs the pool one claim,
        however many workers it has; a full worker pops nothing.

        A stopping worker's pop ends by itself (its ids, its own handed-back jobs among them, go
        back to the list) rather than being cancelled: a pop cancelled as Redis answers it would
        lose the ids it took.

        A worker with jobs running waits on the list only when none of them has finished for
        LINGER_SECONDS: while they keep finishing, each finish takes the next jobs waiting
        (workers/claims.py), so jobs meet in batches rather than each waking a worker of its own.
        """
        backoff = 0.1
        while not self._stopping:
            try:
                await self._slot_free.wait()
                if self._redis_gap or not self.allow_pick_jobs or self.records is None:
                    await asyncio.sleep(0.1)  # the main loop holds claims after a gap
                    continue
                if self.job_counter and await self._jobs_keep_finishing():
                    continue  # its next jobs come with its finishes
                free = self.max_jobs - self.job_counter
                if free <= 0:
                    continue  # finishing jobs took the slots meanwhile
                job_ids = await self.records.pop_ready(free, READY_WAIT_SECONDS)
                if not job_ids:
                    continue
                if not self.allow_pick_jobs:  # stopping since the pop: the pool's next worker takes them
                    await self.records.give_back(job_ids)
                    continue
                await self.start_jobs(job_ids, popped=True)
                # Let the jobs just started run up to their first wait (a quick tool: to the store
                # of its result) before the next pop is sent: the pop can wait, the caller cannot.
                await asyncio.sleep(0)
                backoff = 0.1
            except REDIS_ERRORS as exc:
                log.debug("ready list unavailable (%s); retrying in %.1f s", exc, backoff)
                self._note_gap()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _jobs_keep_finishing(self) -> bool:
        """Whether one of this worker's jobs finishes within LINGER_SECONDS (a busy worker then
        takes its next jobs with its finishes instead of waiting on the ready list)."""
        self._finished.clear()
        try:
            async with asyncio.timeout(LINGER_SECONDS):
                await self._finished.wait()
        except TimeoutError:
            return False
        return True

    async def start_jobs(self, job_ids: list[Any], *, popped: bool = False) -> None:
        """Claim and start jobs: arq's start_jobs, with the jobs claimed and read together in one
        round trip (workers/claims.py) instead of four round trips each.

        A slot is taken for each id before the claim and given back for each claim that did not
        hold (another worker has the job, it left the queue, it is not due yet). The claim holds
        this worker's id in the job's in-progress key, which the lease keeper renews. A job this
        worker still holds (running, or its result waiting for Redis) is never started here
        again. Ids `popped` from the ready list beyond the free slots (finishing jobs took some
        while the pop waited) go back to it, for the pool's next worker.
        """
        assert self.records is not None
        candidates: list[str] = []
        for raw_id in job_ids:
            job_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            if job_id not in candidates and job_id not in self.tasks and not self.leases.holds(job_id):
                candidates.append(job_id)
        room = await self._reserve(len(candidates))
        if popped and room < len(candidates):
            surplus, candidates = candidates[room:], candidates[:room]
            await self.records.give_back(surplus)
        if not room:
            return
        try:
            claimed = await self.records.claim(candidates, room, self._lease_ms)
        except BaseException:
            self._start_claimed([], room)  # the slots were not used: give them back
            raise
        self._start_claimed(claimed, room)

    async def _reserve(self, wanted: int) -> int:
        """Take up to `wanted` free slots for jobs about to be claimed; how many were taken."""
        room = max(0, min(wanted, self.max_jobs - self.job_counter))
        for _ in range(room):
            await self.sem.acquire()  # free: it does not wait
            self.job_counter += 1
        self._note_slots()
        return room

    def _start_claimed(self, claimed: list[ClaimedJob], reserved: int) -> None:
        """Start the jobs claimed into `reserved` slots; give back the slots left over."""
        for _ in range(reserved - len(claimed)):
            self._release_sem_dec_counter_on_complete()
        for job in claimed:
            self.leases.take(job.job_id, self._job_seconds)
            task = self.loop.create_task(self._run_claimed(job))
            task.add_done_callback(functools.partial(self._job_done, job.job_id))
            self.tasks[job.job_id] = task

    def _note_slots(self) -> None:
        """Keep `_slot_free` true exactly while this worker can start another job."""
        if self.job_counter < self.max_jobs:
            self._slot_free.set()
        else:
            self._slot_free.clear()

    def _job_done(self, job_id: str, task: asyncio.Task[None]) -> None:
        self.tasks.pop(job_id, None)
        self._aborted_before_start.discard(job_id)
        self.leases.release(job_id)
        if job_id in self._slot_passed_on:
            self._slot_passed_on.discard(job_id)
        else:
            self._release_sem_dec_counter_on_complete()
        self._finished.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("job %s: the worker failed running it", job_id, exc_info=task.exception())

    def _release_sem_dec_counter_on_complete(self) -> None:
        super()._release_sem_dec_counter_on_complete()
        self._note_slots()

    # --- one job ----------------------------------------------------------------------------

    async def _run_claimed(self, job: ClaimedJob) -> None:
        """arq's Worker.run_job for a job already claimed and read (workers/claims.py).

        Mirrors arq 0.28's run_job step by step: an expired job, an undecodable record, a job
        aborted before it started, an unknown function and a job past its tries each fail with
        arq's own exception in arq's result record; otherwise the function runs under its
        timeout (in this task, which an abort cancels: arq starts another for it). A cancellation
        that is not an abort (the worker is stopping) hands the job back to the pool; anything
        else is stored.
        Left out: cron jobs, the on_job_start/on_job_end hooks, and the log lines arq writes at
        INFO for every job (toolq keeps arq.worker at WARNING).
        """
        run = JobRun(job.job_id, job.job_try, timestamp_ms(), job.score, job.claimed_at_ms)
        if job.record is None:
            log.warning("job %s expired", run.job_id)
            return await self._fail(run, JobExecutionFailed(contract.ARQ_EXPIRED))
        try:
            decoded = deserialize_job_raw(job.record, deserializer=self.job_deserializer)
            run.function_name, run.args, run.kwargs, enqueue_job_try, run.enqueue_time_ms = decoded
        except SerializationError as exc:
            log.exception("deserializing job %s failed", run.job_id)
            return await self._fail(run, exc)
        if job.aborted or run.job_id in self._aborted_before_start:
            return await self._fail(run, asyncio.CancelledError())
        function = self.functions.get(run.function_name)
        if function is None:
            log.warning("job %s, function %r not found", run.job_id, run.function_name)
            return await self._fail(run, JobExecutionFailed(f"function {run.function_name!r} not found"))
        if enqueue_job_try and enqueue_job_try > run.job_try:
            run.job_try = enqueue_job_try
            await self.pool.setex(retry_key_prefix + run.job_id, RETRY_KEY_SECONDS, str(run.job_try))
        max_tries = self.max_tries if function.max_tries is None else function.max_tries
        if run.job_try > max_tries:
            log.warning("job %s: max %d retries exceeded", run.job_id, max_tries)
            return await self._fail(run, JobExecutionFailed(f"max {max_tries} retries exceeded"))

        timeout_s = self.job_timeout_s if function.timeout_s is None else function.timeout_s
        ctx = {
            **self.ctx,
            "job_id": run.job_id,
            "job_try": run.job_try,
            "score": job.score,
            QUEUED_MS: job.queued_ms,
        }
        run.start_ms = timestamp_ms()
        # The job runs in this task (arq starts a task of its own for it): an abort cancels this
        # task, and so does a stopping worker; `aborting_tasks` tells the two apart.
        this_task = asyncio.current_task()
        assert this_task is not None
        self.job_tasks[run.job_id] = this_task
        try:
            try:
                async with asyncio.timeout(timeout_s):
                    result = await function.coroutine(ctx, *run.args, **run.kwargs)
            finally:
                del self.job_tasks[run.job_id]
        except asyncio.CancelledError as exc:
            this_task.uncancel()  # handled here: what follows must not be cancelled by it
            if run.job_id not in self.aborting_tasks:
                # Not an abort: the worker is stopping. The pool's next worker runs it (or, for
                # a tool that is not idempotent, reports that it may or may not have run).
                self.jobs_retried += 1
                await asyncio.shield(self._hand_back(run.job_id))
                return None
            self.aborting_tasks.discard(run.job_id)
            return await self._fail(run, exc)
        except Exception as exc:  # arq's own timeout, or a job function that raised
            log.exception("job %s (%s) failed", run.job_id, run.function_name)
            return await self._fail(run, exc)
        self.jobs_complete += 1
        await self._store(run, True, result, ctx.get(RESULT_JSON))
        return None

    async def _fail(self, run: JobRun, exc: BaseException) -> None:
        self.jobs_failed += 1
        await self._store(run, False, exc)

    async def _store(self, run: JobRun, success: bool, result: Any, result_json: bytes | None = None) -> None:
        """Store the job's outcome as arq's result record, end the job (and its task), push the
        outcome to the waiting facade and take the pool's next waiting jobs into this worker's
        free slots, in one round trip, kept until Redis takes it."""
        assert self.records is not None
        records = self.records
        record = run.result_record(success, result, self.queue_name)
        if result_json is not None and isinstance(result, dict):
            call_result: contract.CallResult = result  # type: ignore[assignment]
        else:
            call_result = contract.call_result_from_arq_record(record, self.settings.worker_id)
            result_json = contract.dumps(call_result)
        call = run.args[0] if run.args and isinstance(run.args[0], dict) else {}
        outcome = Outcome(
            run.job_id,
            record,
            int(self.keep_result_s * 1000),
            call_result,
            result_json,
            call.get("task"),
            timestamp_ms(),
        )
        taking = self.allow_pick_jobs and not self._stopping and not self._redis_gap
        reserved = 0
        if taking:
            # This job's slot goes to the jobs it takes (a full worker takes as it finishes).
            self._slot_passed_on.add(run.job_id)
            self._release_sem_dec_counter_on_complete()
            reserved = await self._reserve(TAKE_ON_FINISH)
        taken: list[ClaimedJob] = []

        async def store() -> None:
            nonlocal reserved, taken
            try:
                taken = await records.store(outcome, reserved, self._lease_ms)
            except REDIS_ERRORS:
                self._start_claimed([], reserved)  # a retry takes nothing: Redis is struggling
                reserved = 0
                raise

        async def store_and_start() -> None:
            await self._until_stored(run.job_id, store)
            self._start_claimed(taken, reserved)
            self._finished.set()

        await asyncio.shield(store_and_start())
        # Once the result is on its way: the metrics, span and log line are nobody's wait.
        self._record(run, call_result, call)

    def _record(self, run: JobRun, result: contract.CallResult, call: dict[str, Any]) -> None:
        """The job's metrics, recent figures and log line."""
        tool = run.function_name.removeprefix(contract.job_function(""))
        error = result.get("error")
        outcome = "ok" if result.get("ok") else (error["kind"] if error else "tool_error")
        run_ms = float(result.get("duration_ms") or 0.0)
        self.metrics.job_done(tool, outcome, run.queued_ms, run_ms)
        tracer = tracing.tracer()
        if tracer is not None:
            tracing.job_spans(
                tracer,
                call.get("traceparent"),
                tool,
                {
                    "toolq.job_id": run.job_id,
                    "toolq.pool": self.pool_label,
                    "toolq.worker": self.settings.worker_id,
                },
                enqueued_ms=run.enqueued_ms,
                claimed_ms=run.claimed_ms,
                started_ms=run.start_ms,
                ran_ms=run_ms,
                failed=None if outcome == "ok" else outcome,
            )
        if self.settings.log_calls:
            call_log.info(
                "job %s %s %s",
                tool,
                outcome,
                run.job_id,
                extra=fields(
                    event="job",
                    job_id=run.job_id,
                    tool=tool,
                    pool=self.pool_label,
                    worker=self.settings.worker_id,
                    outcome=outcome,
                    job_try=run.job_try,
                    queue_wait_ms=run.queued_ms,
                    run_ms=round(run_ms, 3),
                    trace_id=trace_id_of(call.get("traceparent")),
                ),
            )

    async def _flush_stats(self) -> None:
        """The recent per-tool figures to Redis, every heartbeat (nothing when idle)."""
        while True:
            await asyncio.sleep(contract.HEARTBEAT_SECONDS)
            try:
                await self.metrics.recent.flush(self.pool)
            except REDIS_ERRORS as exc:
                log.debug("recent figures not written (%s)", exc)

    async def _hand_back(self, job_id: str) -> None:
        assert self.records is not None
        try:
            await self.records.hand_back(job_id)
        except REDIS_ERRORS as exc:
            # Its lease runs out instead, and a safety-net poll of the pool finds it.
            log.warning("job %s: could not hand it back (%s)", job_id, exc)

    async def _until_stored(self, job_id: str, store: Callable[[], Awaitable[None]]) -> None:
        """Run `store` until Redis takes it: the worker's outbox. While Redis is away the finished
        job keeps its worker slot (so the outbox is bounded by the worker's concurrency) and its
        lease (so no other worker runs it again)."""
        self.leases.deliver(job_id)
        backoff = 0.05
        give_up = loop_time() + max(60.0, float(self.keep_result_s))
        tries = 0
        try:
            while True:
                tries += 1
                try:
                    await store()
                    if tries > 1:
                        log.info("job %s: result stored after %d tries", job_id, tries)
                    return
                except REDIS_ERRORS as exc:
                    if loop_time() > give_up:
                        log.error("job %s: result not stored, Redis away too long (%s)", job_id, exc)
                        return
                    if tries == 1:
                        log.warning("job %s: Redis away (%s); its result waits here", job_id, exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        finally:
            self.leases.release(job_id, delivered=True)

    # --- aborts ---------------------------------------------------------------------------------

    def _abort(self, job_id: str) -> None:
        """Stop a job if it is this worker's: cancel it if it runs, or start it as aborted."""
        running = self.job_tasks.get(job_id)
        if running is not None:
            self.aborting_tasks.add(job_id)
            running.cancel()
        elif job_id in self.tasks:
            self._aborted_before_start.add(job_id)

    def _hint(self, data: bytes | str) -> None:
        """The wake-up channel carries aborts, each naming its job."""
        text = data.decode() if isinstance(data, bytes) else data
        if text.startswith(contract.WAKE_ABORT_PREFIX):
            self._abort(text.removeprefix(contract.WAKE_ABORT_PREFIX))

    async def _listen_for_wakeups(self) -> None:
        channel = contract.wake_channel(self.queue_name)
        backoff = 0.1
        while True:
            pubsub = self.pool.pubsub()
            try:
                await pubsub.subscribe(channel)
                if backoff > 0.1:
                    self.metrics.redis_reconnect("wake")
                # Aborts sent while we were not listening are found by this poll.
                self._poll_now.set()
                backoff = 0.1
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                    if message is not None:
                        self._hint(message["data"])
            except REDIS_ERRORS as exc:
                log.warning("wake-up channel lost (%s); reconnecting in %.1f s", exc, backoff)
                self._note_gap()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    # --- shutdown -------------------------------------------------------------------------------

    def handle_sig_wait_for_completion(self, signum: Any) -> None:
        # Leave the registry at once so facades stop routing here while running jobs drain.
        log.info(
            "worker %s stopping: %d running job(s) get up to %g s to finish",
            self.settings.worker_id,
            len(self.job_tasks),
            self._job_completion_wait,
        )
        self._stopping = True
        super().handle_sig_wait_for_completion(signum)
        self.loop.create_task(self.leave())

    def handle_sig(self, signum: Any) -> None:
        # Without a drain period running jobs are cancelled now and go back to the queue.
        log.info(
            "worker %s stopping: %d running job(s) handed back", self.settings.worker_id, len(self.job_tasks)
        )
        self._stopping = True
        self.allow_pick_jobs = False  # the jobs it hands back are for the pool's other workers
        super().handle_sig(signum)
        self.loop.create_task(self.leave())

    async def leave(self) -> None:
        """Leave the registry and stop the heartbeat and the abort listener: what a stopping
        worker does first, so that facades stop routing calls here. The ready-list taker ends by
        itself once the worker takes no more jobs (see _take_ready_jobs)."""
        for task in self._background:
            if task is not self._taker:
                task.cancel()
        if self._pool is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.registration.leave(self.pool)

    async def _on_shutdown(self, ctx: dict[str, Any]) -> None:
        await self.leave()
        await asyncio.to_thread(tracing.shutdown)  # the spans not exported yet
        if self._taker is not None:
            self._taker.cancel()
        for connection in (self.hot, self.pops):
            if connection is not None:
                await connection.close()
        await asyncio.to_thread(self.leases.stop)  # every job has ended: no lease left to keep
        self.sync_runner.close()
        if self._extra_shutdown is not None:
            await self._extra_shutdown(ctx)
