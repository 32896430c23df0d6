"""One tool call from the facade's point of view: look up, validate, queue, wait, explain.

Both wire formats (MCP `tools/call` and the seed's `{"tool", "params"}`) go through here, so
they validate and fail the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from facade.catalog import Catalog
from facade.errors import Refused, StoreUnavailable, UnknownTool, store_unavailable
from facade.observed import current
from facade.outcomes import outcome_of
from facade.protocol.tasks import TaskRecord, TaskRequest
from facade.protocol.tool_calls import (
    CallOptions,
    LogEntry,
    ProgressUpdate,
    ToolEvent,
    ToolOutcome,
    ToolTerms,
)
from facade.queue_client import Admission, CallTimedOut, QueueClient, RateLimit
from facade.tasks import RedisTaskStore, TaskListener, new_task_id, task_key
from workers import contract

__all__ = ["CallLimits", "QueuedToolCalls", "tool_event"]

log = logging.getLogger("toolq.calls")


class QueuedToolCalls:
    """The protocol core's `ToolCalls`, on the catalog and the queue."""

    def __init__(
        self,
        catalog: Catalog,
        queue: QueueClient,
        *,
        max_call_seconds: float,
        grace_seconds: float,
        limits: CallLimits | None = None,
        tasks: RedisTaskStore | None = None,
        task_ttl_seconds: float = 3600.0,
        task_max_ttl_seconds: float = 86400.0,
        on_task_change: TaskListener | None = None,
    ) -> None:
        """`on_task_change` hears of every change to a task this facade made and follows."""
        self.catalog = catalog
        self.queue = queue
        self.tasks = tasks or RedisTaskStore(queue.redis, queue)
        self._task_ttl_seconds = task_ttl_seconds
        self._task_max_ttl_seconds = task_max_ttl_seconds
        self._on_task_change = on_task_change
        self._carrying_on: set[asyncio.Task[None]] = set()
        self._max_call_seconds = max_call_seconds
        self._grace_seconds = grace_seconds
        self._limits = limits or CallLimits()
        #: Seconds a call of each tool has taken lately (a moving average), seen from here.
        self._seconds_per_call: dict[str, float] = {}

    async def list_tools(self) -> list[dict[str, Any]]:
        return (await self.catalog.snapshot()).listed()

    async def terms(self, name: str) -> ToolTerms:
        try:
            entry = (await self.catalog.snapshot()).tools.get(name)
        except StoreUnavailable:
            return ToolTerms()  # the call itself will say that the store is down
        return entry.terms if entry is not None else ToolTerms()

    async def call(
        self, name: str, arguments: dict[str, Any], options: CallOptions | None = None
    ) -> ToolOutcome:
        """Raises UnknownTool for a name no worker ever served, Refused for a call its pool or a
        rate limit turns away; every other failure is an outcome."""
        with _observing(name):
            outcome = await self._call(name, arguments, options or CallOptions())
            _observed_outcome(outcome)
            return outcome

    async def _call(self, name: str, arguments: dict[str, Any], options: CallOptions) -> ToolOutcome:
        planned = await self._plan(name, arguments, options)
        if isinstance(planned, ToolOutcome):
            return planned
        try:
            result = await self.queue.call(
                planned.queue,
                name,
                arguments,
                timeout=planned.timeout,
                on_event=planned.forward if options.listener is not None else None,
                progress=options.progress,
                log_level=options.log_level,
                traceparent=options.traceparent,
                admission=planned.admission,
            )
        except StoreUnavailable as exc:
            return _failed("unavailable", f"toolq cannot serve calls right now: {exc}. Try again shortly.")
        except CallTimedOut:
            return outcome_of(planned.timed_out())
        return self._learn(name, outcome_of(result))

    async def call_as_task(
        self, name: str, arguments: dict[str, Any], options: CallOptions, request: TaskRequest
    ) -> ToolOutcome | TaskRecord:
        """A call that may become a task: answered inline if it ends within the request's window,
        else a task, made durably before it is returned, which this facade ends when the result
        reaches it (or the worker does, when it stores it). A task has no deadline of
        max_call_seconds: nobody holds a connection open for it."""
        with _observing(name):
            ended = await self._call_as_task(name, arguments, options, request)
            _observed_outcome(ended)
            return ended

    @property
    def following(self) -> int:
        """Tasks this facade follows after their request was answered."""
        return len(self._carrying_on)

    async def _call_as_task(
        self, name: str, arguments: dict[str, Any], options: CallOptions, request: TaskRequest
    ) -> ToolOutcome | TaskRecord:
        planned = await self._plan(name, arguments, options, for_task=True)
        task_id = new_task_id()
        if isinstance(planned, ToolOutcome):
            if request.inline_seconds > 0:
                return planned
            return await self._ended_task(task_id, request, planned)
        ttl_ms = self._task_ttl_ms(request, planned.timeout)
        job = await self.queue.submit(
            planned.queue,
            name,
            arguments,
            timeout=planned.timeout,
            progress=options.progress and options.listener is not None,
            log_level=options.log_level if options.listener is not None else None,
            traceparent=options.traceparent,
            admission=planned.admission,
            task={"key": task_key(task_id)},
        )
        inline = request.inline_seconds > 0

        async def forward_while_inline(event: contract.ProgressEvent | contract.LogEvent) -> None:
            if inline and options.listener is not None:
                await planned.forward(event)  # once it is a task, its caller is told nothing more

        follow = asyncio.ensure_future(
            self.queue.outcome(job, on_event=forward_while_inline, abort_on_cancel=False)
        )
        try:
            if inline:
                await asyncio.wait({follow}, timeout=request.inline_seconds)
                if follow.done():
                    return self._learn(name, outcome_of(_result_of(follow, planned)))
                inline = False
            record = await self.tasks.create(
                task_id, request, ttl_ms=ttl_ms, queue=job.queue, job_id=job.job_id
            )
        except BaseException:
            follow.cancel()
            self.queue.abort_soon(job)  # the caller never learns of this task: stop its job
            raise
        carry_on = asyncio.create_task(self._carry_on(task_id, job.job_id, request, follow, planned))
        self._carrying_on.add(carry_on)
        carry_on.add_done_callback(self._carrying_on.discard)
        return record

    async def close(self) -> None:
        """Stop following tasks (their workers, or whoever asks next, end them)."""
        for task in list(self._carrying_on):
            task.cancel()

    async def _carry_on(
        self, task_id: str, job_id: str, request: TaskRequest, follow: asyncio.Future[Any], planned: Planned
    ) -> None:
        try:
            await asyncio.wait({follow})
        except asyncio.CancelledError:
            follow.cancel()  # this facade stops following; the job goes on (its worker ends the task)
            raise
        if follow.cancelled():
            return
        result = _result_of(follow, planned)
        self._learn(planned.tool, outcome_of(result))
        try:
            # The worker has usually ended the task already (when it stored the result).
            record = await self.tasks.finish(task_id, job_id, result) or await self.tasks.read(task_id)
        except (RedisError, OSError) as exc:
            log.warning("could not end task %s here (%s): its worker, or the next look, will", task_id, exc)
            return
        if record is not None and record.terminal and self._on_task_change is not None:
            try:
                await self._on_task_change(record, request)
            except Exception:
                log.exception("telling the client of task %s failed", task_id)

    async def _ended_task(self, task_id: str, request: TaskRequest, outcome: ToolOutcome) -> TaskRecord:
        """A task for a call that failed before it was queued: made, and ended at once."""
        ttl_ms = self._task_ttl_ms(request, 0.0)
        await self.tasks.create(task_id, request, ttl_ms=ttl_ms, queue="", job_id="")
        failure = contract.failed_result(outcome.kind or "tool_error", outcome.message or "The call failed.")
        record = await self.tasks.finish(task_id, "", failure)
        if record is None:
            raise store_unavailable("the task store", RuntimeError("the task vanished"))
        return record

    def _task_ttl_ms(self, request: TaskRequest, deadline: float) -> int:
        """The client's TTL (or the default), within the maximum, and never shorter than the
        call's deadline plus a minute: a task outlives its job."""
        asked = request.ttl_ms if request.ttl_ms is not None else int(self._task_ttl_seconds * 1000)
        floor = int((deadline + 60) * 1000)
        return max(floor, min(asked, int(self._task_max_ttl_seconds * 1000)))

    async def _plan(
        self, name: str, arguments: dict[str, Any], options: CallOptions, *, for_task: bool = False
    ) -> Planned | ToolOutcome:
        """Where and how the call goes, or the outcome of a call that cannot be queued."""
        try:
            snapshot = await self.catalog.snapshot()
        except StoreUnavailable as exc:
            return _failed("unavailable", f"toolq cannot serve calls right now: {exc}. Try again shortly.")
        entry = snapshot.tools.get(name)
        if entry is None:
            if name in snapshot.orphaned:
                return _failed(
                    "unavailable",
                    f"Tool {name!r} has no live worker right now; start one "
                    f"(python -m workers --tools {name}) or try again shortly.",
                )
            raise UnknownTool(name)
        problems = entry.argument_errors(arguments)
        if problems:
            return _failed(
                "invalid_arguments", f"Invalid arguments for tool {name!r}: " + "; ".join(problems)
            )
        # Room for one re-run of an idempotent tool after its worker died: its lease, then the run.
        timeout = entry.timeout + entry.recovery_seconds + self._grace_seconds
        if not for_task:
            timeout = min(timeout, self._max_call_seconds)
        queue = entry.pick_queue()
        pool = PoolShape(
            slots=max(1, snapshot.slots.get(queue, 1)), workers=max(1, snapshot.workers.get(queue, 1))
        )
        budget = QUEUE_WAIT_SHARE * min(entry.timeout, timeout - self._grace_seconds)
        listener = options.listener

        async def forward(event: contract.ProgressEvent | contract.LogEvent) -> None:
            converted = tool_event(event)
            if converted is not None and listener is not None:
                await listener(converted)

        return Planned(
            tool=name,
            queue=queue,
            timeout=timeout,
            admission=self._admission(name, options.principal, pool, max(0.0, budget)),
            forward=forward,
        )

    def _learn(self, name: str, outcome: ToolOutcome) -> ToolOutcome:
        """Keep up the tool's pace (for admission) from an outcome."""
        if outcome.duration_ms is not None:
            seconds = outcome.duration_ms / 1000
            previous = self._seconds_per_call.get(name, seconds)
            self._seconds_per_call[name] = previous + (seconds - previous) * 0.2
        return outcome

    def _admission(self, tool: str, principal: str | None, pool: PoolShape, budget: float) -> Admission:
        """What this call must pass to be queued.

        A call queued behind `backlog` others waits about `backlog x seconds per queued call`; a
        pool is allowed the backlog it can work off within `budget` seconds (half the time the
        call may take: the rest is for its own run, a re-run, and machines busier than usual).
        A queued call costs the pool the tool's recent run time over the pool's slots, and at
        least WORKER_SECONDS_PER_JOB over its worker processes (a worker's own work per job
        bounds a trivial tool's pace). The backlog is also capped at `max_queue_depth`, and at
        `backlog_per_slot` per slot while the tool's pace is not known yet.
        """
        limits = self._limits
        pace = self._seconds_per_call.get(tool)
        per_queued_call = None
        if pace is not None:
            per_queued_call = max(pace / pool.slots, WORKER_SECONDS_PER_JOB / pool.workers)
            cap = budget / per_queued_call
        else:
            cap = float(pool.slots * limits.backlog_per_slot)
        rates: list[RateLimit] = []
        if limits.principal_per_second > 0:
            who = principal or "(no token)"
            rates.append(
                RateLimit(
                    contract.rate_key("principal", principal or ""),
                    limits.principal_per_second,
                    limits.principal_burst or max(1, int(limits.principal_per_second * 2)),
                    f"{limits.principal_per_second:g} calls/s for {who}",
                )
            )
        if limits.tool_per_second > 0:
            rates.append(
                RateLimit(
                    contract.rate_key("tool", tool),
                    limits.tool_per_second,
                    limits.tool_burst or max(1, int(limits.tool_per_second * 2)),
                    f"{limits.tool_per_second:g} calls/s for tool {tool!r}",
                )
            )
        return Admission(
            max_backlog=max(pool.slots, int(min(cap, limits.max_queue_depth))),
            rates=tuple(rates),
            seconds_per_queued_call=per_queued_call,
        )


#: The share of a call's time it may spend queued: admission keeps backlogs within it.
QUEUE_WAIT_SHARE = 0.5
#: A worker process's own time per job (claim, start, store, push: about 1 ms measured on two
#: cores), doubled: however fast a tool, one worker process finishes at most ~500 jobs a second.
WORKER_SECONDS_PER_JOB = 0.002


@dataclass(frozen=True)
class Planned:
    """A call that can be queued: where, with what deadline and admission."""

    tool: str
    queue: str
    timeout: float
    admission: Admission
    #: Hands a job's progress and log events on to the caller's listener.
    forward: Callable[[contract.ProgressEvent | contract.LogEvent], Awaitable[None]]

    def timed_out(self) -> contract.CallResult:
        return contract.failed_result(
            "timeout",
            f"Tool {self.tool!r} did not answer within {self.timeout:g} s (workers busy or unreachable); "
            "the call was cancelled.",
        )


def _result_of(follow: asyncio.Future[Any], planned: Planned) -> contract.CallResult:
    """The result a finished `QueueClient.outcome` gave: its value, or a timeout."""
    if isinstance(follow.exception(), CallTimedOut):
        return planned.timed_out()
    result: contract.CallResult = follow.result()
    return result


@dataclass(frozen=True)
class PoolShape:
    """A pool's live capacity: its worker processes and their slots, together."""

    slots: int
    workers: int


@dataclass(frozen=True)
class CallLimits:
    """Admission control and rate limits (settings TOOLQ_MAX_QUEUE_DEPTH and friends)."""

    #: The most calls one pool's queue holds, queued and running, whatever the pace.
    max_queue_depth: int = 10_000
    #: Calls per worker slot a pool may hold while the tool's pace is not known.
    backlog_per_slot: int = 100
    #: Calls per second per principal (token name), and the burst; 0: no limit.
    principal_per_second: float = 0.0
    principal_burst: int = 0
    #: Calls per second per tool, over all callers, and the burst; 0: no limit.
    tool_per_second: float = 0.0
    tool_burst: int = 0


def tool_event(event: contract.ProgressEvent | contract.LogEvent) -> ToolEvent | None:
    """A worker's event as the protocol core's value; None (and a warning) if it is malformed."""
    try:
        if event["type"] == "log":
            return LogEntry(level=event["level"], data=event["data"], logger=event.get("logger"))
        return ProgressUpdate(
            progress=float(event["progress"]), total=event.get("total"), message=event.get("message")
        )
    except (KeyError, TypeError, ValueError):
        log.warning("ignoring a malformed event from a worker: %r", event)
        return None


@contextmanager
def _observing(tool: str) -> Iterator[None]:
    """The current request's record (facade/observed.py) learns the tool and, when the call is
    turned away, why."""
    record = current()
    if record is None:
        yield
        return
    record.tool = tool
    try:
        yield
    except UnknownTool:
        record.outcome = "unknown_tool"
        raise
    except Refused as exc:
        record.outcome = exc.reason
        raise


def _observed_outcome(ended: ToolOutcome | TaskRecord) -> None:
    record = current()
    if record is None:
        return
    if isinstance(ended, TaskRecord):
        record.outcome = "task"
        return
    record.outcome = "ok" if ended.ok else (ended.kind or "tool_error")
    record.run_ms = ended.duration_ms
    record.queue_wait_ms = ended.queued_ms


def _failed(kind: contract.ErrorKind, message: str) -> ToolOutcome:
    return ToolOutcome(ok=False, message=message, kind=kind)
