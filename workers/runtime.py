"""The worker runtime: arq's Worker, handed each job and pushing completions.

arq out of the box polls its queue every 0.5 s and leaves callers to poll the result key.
toolq keeps arq's claim protocol and result storage but:
- each enqueued job's id is pushed on its pool's ready list, and one worker with a free slot
  pops it (a blocking pop; a safety-net poll every few seconds remains), so a job starts within
  a round trip of being enqueued and costs one claim however large the pool; aborts reach every
  worker on the pool's wake-up channel;
- the job pushes its result to the waiting facade's events channel the moment it has one,
  and every early-exit failure arq writes without running a hook is pushed as well;
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
from typing import Any, cast

import redis
from arq.connections import ArqRedis, create_pool
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Function, Worker, func
from pydantic import ValidationError
from redis.exceptions import RedisError

from workers import contract
from workers.definition import SyncRunner, ToolContext, ToolDefinition, ToolError, ToolUnavailable
from workers.leases import LeaseKeeper, sync_client
from workers.registry import Registration
from workers.settings import WorkerSettings, redis_settings
from workers.sync_tools import SyncToolRunner, ToolProcessDied

log = logging.getLogger("toolq.worker")
loop_time = time.monotonic

#: arq's own job timeout sits this far behind the tool's, so the tool's timeout (which returns
#: a clean error) always fires first.
ARQ_TIMEOUT_MARGIN_SECONDS = 5.0
#: Tries for idempotent tools: a job whose worker died is run again elsewhere.
IDEMPOTENT_MAX_TRIES = 3

#: Every way Redis can fail a command: unreachable, too slow, or refusing it (e.g. OOM when it
#: is full). The worker's loops back off and go on through all of them, never die of one.
REDIS_ERRORS = (RedisError, ConnectionError, OSError)
#: Reconnect back-off cap: once Redis is back, every loop is back within this.
MAX_BACKOFF_SECONDS = 1.0
#: After a Redis gap, claims wait this long, so that every worker's lease keeper (which retries
#: every 0.2 s) has put back the leases of the jobs it is still running before anyone claims.
CLAIM_HOLD_AFTER_GAP_SECONDS = 1.0


def describe_validation_error(tool_name: str, error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "arguments"
        problems.append(f"{where}: {item['msg']}")
    return f"Invalid arguments for tool {tool_name!r}: " + "; ".join(problems)


def failure(kind: contract.ErrorKind, message: str, worker_id: str, started: float) -> contract.CallResult:
    return contract.failed_result(kind, message, worker_id, round((time.perf_counter() - started) * 1000, 3))


async def run_tool(
    definition: ToolDefinition,
    arguments: dict[str, Any],
    context: ToolContext,
    worker_id: str,
    run_sync: SyncRunner | None = None,
) -> contract.CallResult:
    """Run one call to completion; every outcome but cancellation becomes a CallResult."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(definition.timeout) as deadline:
            output = await definition.invoke(arguments, context, run_sync=run_sync)
    except ValidationError as exc:
        return failure(
            "invalid_arguments", describe_validation_error(definition.name, exc), worker_id, started
        )
    except ToolUnavailable as exc:
        return failure("unavailable", str(exc), worker_id, started)
    except ToolError as exc:
        return failure("tool_error", str(exc), worker_id, started)
    except TimeoutError:
        if not deadline.expired():
            log.exception("tool %s raised TimeoutError", definition.name)
            return failure(
                "tool_error", f"Tool {definition.name!r} timed out inside the tool.", worker_id, started
            )
        return failure(
            "timeout",
            f"Tool {definition.name!r} did not finish within its {definition.timeout:g} s timeout.",
            worker_id,
            started,
        )
    except ToolProcessDied as exc:
        log.warning("the process running tool %s died: %s", definition.name, exc)
        return failure(
            "tool_error",
            f"Tool {definition.name!r} ended the process running it ({exc}) before it answered.",
            worker_id,
            started,
        )
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        # SystemExit and KeyboardInterrupt from a tool are its failure, never the worker's end.
        log.exception("tool %s crashed", definition.name)
        return failure(
            "tool_error",
            f"Tool {definition.name!r} failed unexpectedly ({type(exc).__name__}: {exc}).",
            worker_id,
            started,
        )
    result: contract.CallResult = {
        "ok": True,
        "worker": worker_id,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    result.update(output)  # type: ignore[typeddict-item]
    return result


async def push_event(
    redis: ArqRedis, job_id: str, event: contract.DoneEvent | contract.ProgressEvent | contract.LogEvent
) -> None:
    facade_id = contract.facade_of(job_id)
    if facade_id is None:
        return
    try:
        await redis.publish(contract.events_channel(facade_id), contract.dumps(event))
    except RedisError:
        # The facade's fallback check of the result key still finds the result.
        log.warning("could not push event for job %s", job_id, exc_info=True)


async def run_scripts(redis: ArqRedis, script: str, keys: list[str], *args: str | int | bytes) -> Any:
    """A Lua script on its keys, sent by its SHA (loaded once per Redis, not sent on every call)."""
    return await redis.register_script(script)(keys=keys, args=list(args))


async def note_task_message(redis: ArqRedis, task: contract.TaskRef, message: str) -> None:
    """A working task's status message is its tool's latest progress message."""
    try:
        await run_scripts(redis, contract.TASK_MESSAGE_SCRIPT, [task["key"]], message[:1000], timestamp_ms())
    except RedisError:
        log.warning("could not note a task's status message", exc_info=True)


#: Set in a job's ctx when its result is too large to push: after_job_end announces it instead.
ANNOUNCE_AFTER_STORE = "toolq_announce_after_store"


def job_for(
    definition: ToolDefinition,
    worker_id: str,
    run_sync: SyncRunner | None = None,
    max_result_bytes: int = 4 * 1024 * 1024,
    task_jobs: dict[str, contract.TaskRef] | None = None,
) -> Function:
    """The arq function that runs `definition` for one job and pushes the result. A job that
    carries out an MCP task is noted in `task_jobs` (the worker ends the task when it stores the
    result), and its progress messages become the task's status message."""

    async def run(ctx: dict[str, Any], call: contract.JobArguments) -> contract.CallResult:
        redis: ArqRedis = ctx["redis"]
        job_id: str = ctx["job_id"]
        wants_progress = bool(call.get("progress"))
        log_level = call.get("log_level")
        task = call.get("task")
        if task is not None and task_jobs is not None:
            task_jobs[job_id] = task

        async def report(progress: float, total: float | None, message: str | None) -> None:
            if task is not None and message is not None:
                await note_task_message(redis, task, message)
            if not wants_progress:
                return
            event: contract.ProgressEvent = {"type": "progress", "job_id": job_id, "progress": progress}
            if total is not None:
                event["total"] = total
            if message is not None:
                event["message"] = message
            await push_event(redis, job_id, event)

        async def write_log(level: str, data: Any, logger: str | None) -> None:
            if log_level is None or not contract.log_level_at_least(level, log_level):
                return
            event: contract.LogEvent = {"type": "log", "job_id": job_id, "level": level, "data": data}
            if logger is not None:
                event["logger"] = logger
            await push_event(redis, job_id, event)

        context = ToolContext(report, write_log)
        started = time.perf_counter()
        result = await run_tool(definition, call.get("arguments") or {}, context, worker_id, run_sync)
        # One serialization checks both what JSON cannot say and how large the result is.
        try:
            size = len(contract.dumps(result))
        except ValueError:
            result = failure(
                "tool_error",
                f"Tool {definition.name!r} returned a number that JSON cannot carry (infinity or NaN).",
                worker_id,
                started,
            )
            size = 0
        if size > max_result_bytes:
            result = failure(
                "tool_error",
                f"Tool {definition.name!r} returned {size:,} bytes, more than the {max_result_bytes:,} "
                "a result may have (TOOLQ_MAX_RESULT_BYTES).",
                worker_id,
                started,
            )
            size = 0
        if size <= contract.INLINE_RESULT_BYTES:
            await push_event(redis, job_id, contract.DoneEvent(type="done", job_id=job_id, result=result))
        else:
            ctx[ANNOUNCE_AFTER_STORE] = True  # announced once arq has stored it (after_job_end)
        return result

    run.__qualname__ = run.__name__ = f"tool_{definition.name}"
    return func(
        run,
        name=contract.job_function(definition.name),
        timeout=definition.timeout + ARQ_TIMEOUT_MARGIN_SECONDS,
        max_tries=IDEMPOTENT_MAX_TRIES if definition.idempotent else 1,
    )


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
        )
        self._extra_shutdown = on_shutdown
        self.sync_runner = SyncToolRunner(settings.sync_processes)
        #: The running jobs that carry out MCP tasks, and where their tasks live.
        self._task_jobs: dict[str, contract.TaskRef] = {}
        super().__init__(
            functions=[
                job_for(
                    d, settings.worker_id, self.sync_runner.run, settings.max_result_bytes, self._task_jobs
                )
                for d in definitions
            ],
            queue_name=queue,
            redis_pool=redis_pool,
            redis_settings=None if redis_pool else redis_settings(settings.redis_url),
            max_jobs=settings.concurrency,
            poll_delay=settings.idle_poll_seconds,
            health_check_interval=settings.health_check_seconds,
            job_completion_wait=math.ceil(settings.drain_seconds),
            allow_abort_jobs=True,
            handle_signals=handle_signals,
            keep_result=max(60, int(max(d.timeout for d in definitions) * 2)),
            job_serializer=contract.dumps,
            job_deserializer=contract.loads,
            on_shutdown=self._on_shutdown,
            after_job_end=self._announce_stored_result,
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
        #: How long a claimed job's lease is renewed: its tool's timeout and arq's margin.
        self._job_seconds = max(d.timeout for d in definitions) + ARQ_TIMEOUT_MARGIN_SECONDS
        #: Set when this worker saw Redis fail: claims wait for the leases to be back first.
        self._redis_gap = False
        self._wake = asyncio.Event()
        self._abort_hinted = False
        #: Set while this worker has a free slot: only then does it take jobs from the ready list.
        self._slot_free = asyncio.Event()
        self._slot_free.set()
        self._background: list[asyncio.Task[None]] = []
        #: The registry heartbeat (started by main): while it runs, the worker is listed as live.
        self.heartbeat: asyncio.Task[None] | None = None

    # --- the loop -------------------------------------------------------------------------

    async def main(self) -> None:
        """arq's Worker.main, with the ready list in place of its fixed 0.5 s poll.

        Mirrors arq 0.28's main: create the pool when none was given (`create_pool` with the
        worker's serializers), log, set `ctx["redis"]`, then loop on `_poll_iteration`; arq's
        on_startup hook is not used. Added: the ready-list taker (`_take_ready_jobs`), the abort
        listener, the registry heartbeat, the lease keeper, and a back-off on Redis
        errors instead of dying. tests/test_arq_fence.py pins the arq members this relies on.
        """
        if self._pool is None:
            self._pool = await create_pool(
                self.redis_settings,
                job_deserializer=self.job_deserializer,
                job_serializer=self.job_serializer,
                default_queue_name=self.queue_name,
                expires_extra_ms=self.expires_extra_ms,
            )
        log.info(
            "worker %s serving %s on queue %s (%s)",
            self.settings.worker_id,
            ", ".join(d.name for d in self.definitions),
            self.queue_name,
            type(asyncio.get_running_loop()).__module__.split(".")[0],
        )
        self.ctx["redis"] = self.pool
        self.heartbeat = asyncio.create_task(self.registration.keep_alive(self.pool), name="toolq-heartbeat")
        self._background = [
            asyncio.create_task(self._listen_for_wakeups(), name="toolq-wake"),
            asyncio.create_task(self._take_ready_jobs(), name="toolq-ready"),
            self.heartbeat,
        ]
        self.leases.start()
        backoff = 0.1
        last_full_poll = float("-inf")
        while True:
            self._wake.clear()
            try:
                if self._redis_gap:
                    await self._hold_claims_after_gap()
                abort_hinted, self._abort_hinted = self._abort_hinted, False
                if abort_hinted:
                    await self._cancel_aborted_jobs()
                if not abort_hinted or loop_time() - last_full_poll >= self.poll_delay_s:
                    # The safety net, and arq's housekeeping (health key, finished tasks).
                    last_full_poll = loop_time()
                    await self._poll_iteration()
                backoff = 0.1
            except REDIS_ERRORS as exc:
                if not self._redis_gap:
                    log.warning("Redis unavailable (%s); retrying", exc)
                self._redis_gap = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            idle = max(0.0, self.poll_delay_s - (loop_time() - last_full_poll))
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancel that arrives
            # as the wake-up does, and the worker would never stop (tests/test_queue_guarantees.py).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle):
                    await self._wake.wait()

    async def _hold_claims_after_gap(self) -> None:
        """Redis failed: once it answers again, wait a moment before claiming anything, so the
        leases of jobs still running on any worker of the pool are back first. Raises the Redis
        error while it does not answer."""
        await self.pool.ping()
        log.info("Redis is back: claims resume in %.1f s", CLAIM_HOLD_AFTER_GAP_SECONDS)
        await asyncio.sleep(CLAIM_HOLD_AFTER_GAP_SECONDS)
        self._redis_gap = False

    async def _take_ready_jobs(self) -> None:
        """Pop job ids from the pool's ready list while this worker has free slots: one blocking
        pop, then as many more as there are free slots, claimed together. Each id goes to one
        worker of the pool (the one that has waited longest), so a job costs the pool one claim,
        however many workers it has; a full worker pops nothing."""
        ready = contract.ready_list(self.queue_name)
        backoff = 0.1
        while True:
            try:
                await self._slot_free.wait()
                if self._redis_gap or not self.allow_pick_jobs:
                    await asyncio.sleep(0.1)  # the main loop holds claims after a gap
                    continue
                job_ids = await self._pop_ready(ready, self.max_jobs - self.job_counter)
                if not job_ids:
                    continue
                if not self.allow_pick_jobs:  # stopping since the pop: the pool's next worker takes them
                    await cast(Awaitable[int], self.pool.rpush(ready, *job_ids))
                    continue
                await self.start_jobs(job_ids)
                backoff = 0.1
            except REDIS_ERRORS as exc:
                log.debug("ready list unavailable (%s); retrying in %.1f s", exc, backoff)
                self._redis_gap = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _pop_ready(self, ready: str, free: int) -> list[bytes]:
        """Up to `free` ids from the ready list, waiting (up to the poll interval) for the first:
        one BLMPOP (Redis 7.0 or newer)."""
        wait = max(1, math.ceil(self.poll_delay_s))
        popped = await cast(
            Awaitable[Any],
            self.pool.blmpop(wait, 1, ready, direction="RIGHT", count=free),  # type: ignore[arg-type]  # keys are *args
        )
        return list(popped[1]) if popped else []

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """Claim and start jobs: arq's start_jobs, with every claim of the batch in one round trip.

        arq claims with WATCH, EXISTS, ZSCORE and MULTI (four round trips per job). Here one
        MULTI holds, per job, `SET in-progress NX PX` and `ZSCORE`: a claim holds only if the
        in-progress key was ours to set and the job is still queued and due; claims that do not
        hold are released at once. The key holds this worker's id (arq only asks whether it
        exists), which the lease keeper renews. A job this worker still holds (running, or its
        result waiting for Redis) is never started here again. Ids beyond the free slots wait for
        another worker, or the safety-net poll.
        """
        chosen: list[str] = []
        for raw_id in job_ids:
            job_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            if self.leases.holds(job_id) or job_id in chosen:
                continue
            if self.job_counter >= self.max_jobs:
                break
            await self.sem.acquire()
            self.job_counter += 1
            chosen.append(job_id)
        if not chosen:
            return
        self._note_slots()
        lease_ms = int(self.in_progress_timeout_s * 1000)
        try:
            async with self.pool.pipeline(transaction=True) as pipe:
                for job_id in chosen:
                    pipe.set(in_progress_key_prefix + job_id, self.settings.worker_id, px=lease_ms, nx=True)
                    pipe.zscore(self.queue_name, job_id)
                answers = await pipe.execute()
        except BaseException:
            for _ in chosen:  # the slots were not used: give them back
                self._release_sem_dec_counter_on_complete()
            raise
        now = timestamp_ms()
        released = []
        for index, job_id in enumerate(chosen):
            claimed, score = answers[2 * index], answers[2 * index + 1]
            if not claimed or not score or score > now:
                if claimed:
                    released.append(in_progress_key_prefix + job_id)
                self._release_sem_dec_counter_on_complete()
                continue
            self.leases.take(job_id, self._job_seconds)
            task = self.loop.create_task(self.run_job(job_id, int(score)))
            task.add_done_callback(functools.partial(self._job_done, job_id))
            self.tasks[job_id] = task
        if released:
            await self.pool.delete(*released)

    def _note_slots(self) -> None:
        """Keep `_slot_free` true exactly while this worker can start another job."""
        if self.job_counter < self.max_jobs:
            self._slot_free.set()
        else:
            self._slot_free.clear()

    def _job_done(self, job_id: str, _task: asyncio.Task[None]) -> None:
        self.leases.release(job_id)
        self._release_sem_dec_counter_on_complete()

    def _release_sem_dec_counter_on_complete(self) -> None:
        super()._release_sem_dec_counter_on_complete()
        self._note_slots()

    def _hint(self, data: bytes | str) -> None:
        """The wake-up channel carries aborts: look for the jobs to cancel at once."""
        text = data.decode() if isinstance(data, bytes) else data
        if text.startswith(contract.WAKE_ABORT_PREFIX):
            self._abort_hinted = True
            self._wake.set()

    async def _listen_for_wakeups(self) -> None:
        channel = contract.wake_channel(self.queue_name)
        backoff = 0.1
        while True:
            pubsub = self.pool.pubsub()
            try:
                await pubsub.subscribe(channel)
                # Aborts sent while we were not listening are found by this poll.
                self._wake.set()
                backoff = 0.1
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                    if message is not None:
                        self._hint(message["data"])
            except REDIS_ERRORS as exc:
                log.warning("wake-up channel lost (%s); reconnecting in %.1f s", exc, backoff)
                self._redis_gap = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _announce_stored_result(self, ctx: dict[str, Any]) -> None:
        """A large result is announced only now, when arq has stored it: the facade reads it."""
        if ctx.get(ANNOUNCE_AFTER_STORE):
            job_id: str = ctx["job_id"]
            await push_event(self.pool, job_id, contract.DoneEvent(type="done", job_id=job_id))

    # --- storing results, across Redis gaps -------------------------------------------------------

    async def finish_job(  # noqa: PLR0917 - arq's signature
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        """arq's finish_job (store the result, end the job), kept until Redis takes it. A job
        that carries out a task ends the task, too."""
        task = self._task_jobs.pop(job_id, None)
        finish_in_arq = super().finish_job

        async def store() -> None:
            await finish_in_arq(
                job_id,
                finish,
                result_data,
                result_timeout_s,
                keep_result_forever,
                incr_score,
                keep_in_progress,
            )
            if task is not None and finish and result_data is not None:
                await self._end_task(job_id, task, result_data)

        late = await self._until_stored(job_id, store)
        if late and finish and result_data is not None:
            await self._push_stored(job_id, result_data)  # the push the tool made was lost with Redis

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        """arq records these failures without running a hook: toolq pushes them, too."""
        fail_in_arq = super().finish_failed_job
        task = contract.task_of_arq_record(result_data) if result_data is not None else None

        async def store() -> None:
            await fail_in_arq(job_id, result_data)
            if task is not None and result_data is not None:
                await self._end_task(job_id, task, result_data)

        await self._until_stored(job_id, store)
        if result_data is not None:
            await self._push_stored(job_id, result_data)

    async def _end_task(self, job_id: str, task: contract.TaskRef, result_data: bytes) -> None:
        """Record the job's outcome in its task (unless the task ended already) and announce it."""
        result = contract.call_result_from_arq_record(result_data, self.settings.worker_id)
        await run_scripts(
            self.pool,
            contract.FINISH_TASK_SCRIPT,
            [task["key"], contract.result_key(job_id)],
            contract.task_status(result),
            contract.dumps(result),
            timestamp_ms(),
            contract.TASKS_CHANNEL,
        )

    async def _until_stored(self, job_id: str, store: Callable[[], Awaitable[None]]) -> bool:
        """Run `store` until Redis takes it: the worker's outbox. While Redis is away the finished
        job keeps its worker slot (so the outbox is bounded by the worker's concurrency) and its
        lease (so no other worker runs it again). True when it took more than one try."""
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
                    return tries > 1
                except REDIS_ERRORS as exc:
                    if loop_time() > give_up:
                        log.error("job %s: result not stored, Redis away too long (%s)", job_id, exc)
                        return False
                    if tries == 1:
                        log.warning("job %s: Redis away (%s); its result waits here", job_id, exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        finally:
            self.leases.release(job_id, delivered=True)

    async def _push_stored(self, job_id: str, result_data: bytes) -> None:
        if len(result_data) > contract.INLINE_RESULT_BYTES:
            await push_event(self.pool, job_id, contract.DoneEvent(type="done", job_id=job_id))
            return
        result = contract.call_result_from_arq_record(result_data, self.settings.worker_id)
        await push_event(self.pool, job_id, contract.DoneEvent(type="done", job_id=job_id, result=result))

    # --- shutdown -------------------------------------------------------------------------------

    def handle_sig_wait_for_completion(self, signum: Any) -> None:
        # Leave the registry at once so facades stop routing here while running jobs drain.
        log.info(
            "worker %s stopping: %d running job(s) get up to %g s to finish",
            self.settings.worker_id,
            len(self.job_tasks),
            self._job_completion_wait,
        )
        super().handle_sig_wait_for_completion(signum)
        self.loop.create_task(self.leave())

    def handle_sig(self, signum: Any) -> None:
        # Without a drain period running jobs are cancelled now and go back to the queue.
        log.info(
            "worker %s stopping: %d running job(s) handed back", self.settings.worker_id, len(self.job_tasks)
        )
        super().handle_sig(signum)
        self.loop.create_task(self.leave())

    async def leave(self) -> None:
        """Leave the registry and stop the background tasks: what a stopping worker does first,
        so that facades stop routing calls here."""
        for task in self._background:
            task.cancel()
        if self._pool is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.registration.leave(self.pool)

    async def _on_shutdown(self, ctx: dict[str, Any]) -> None:
        await self.leave()
        await asyncio.to_thread(self.leases.stop)  # every job has ended: no lease left to keep
        self.sync_runner.close()
        if self._extra_shutdown is not None:
            await self._extra_shutdown(ctx)
