"""One tool call from the facade's point of view: look up, validate, queue, wait, explain.

Both wire formats (MCP `tools/call` and the seed's `{"tool", "params"}`) go through here, so
they validate and fail the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from facade.catalog import Catalog
from facade.errors import StoreUnavailable, UnknownTool
from facade.protocol.tool_calls import (
    CallOptions,
    LogEntry,
    ProgressUpdate,
    ToolEvent,
    ToolOutcome,
    ToolTerms,
)
from facade.queue_client import Admission, CallTimedOut, QueueClient, RateLimit
from workers import contract

__all__ = ["CallLimits", "QueuedToolCalls", "outcome_of", "tool_event"]

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
    ) -> None:
        self.catalog = catalog
        self.queue = queue
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
        options = options or CallOptions()
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
        timeout = min(entry.timeout + entry.recovery_seconds + self._grace_seconds, self._max_call_seconds)
        queue = entry.pick_queue()
        pool = PoolShape(
            slots=max(1, snapshot.slots.get(queue, 1)), workers=max(1, snapshot.workers.get(queue, 1))
        )
        budget = QUEUE_WAIT_SHARE * min(entry.timeout, timeout - self._grace_seconds)
        admission = self._admission(name, options.principal, pool, max(0.0, budget))
        listener = options.listener

        async def on_event(event: contract.ProgressEvent | contract.LogEvent) -> None:
            converted = tool_event(event)
            if converted is not None and listener is not None:
                await listener(converted)

        try:
            result = await self.queue.call(
                queue,
                name,
                arguments,
                timeout=timeout,
                on_event=on_event if listener is not None else None,
                progress=options.progress,
                log_level=options.log_level,
                traceparent=options.traceparent,
                admission=admission,
            )
        except StoreUnavailable as exc:
            return _failed("unavailable", f"toolq cannot serve calls right now: {exc}. Try again shortly.")
        except CallTimedOut:
            return _failed(
                "timeout",
                f"Tool {name!r} did not answer within {timeout:g} s (workers busy or unreachable); "
                "the call was cancelled.",
            )
        outcome = outcome_of(result)
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


def outcome_of(result: contract.CallResult) -> ToolOutcome:
    if result.get("ok"):
        structured = result.get("structured")
        content = result.get("content")
        return ToolOutcome(
            ok=True,
            structured=structured if structured is not None or content is not None else {},
            content=content,
            worker=result.get("worker"),
            duration_ms=result.get("duration_ms"),
        )
    error = result.get("error") or {"kind": "tool_error", "message": "The tool failed."}
    return ToolOutcome(
        ok=False,
        message=error["message"],
        kind=error["kind"],
        worker=result.get("worker") or None,
        duration_ms=result.get("duration_ms"),
    )


def _failed(kind: contract.ErrorKind, message: str) -> ToolOutcome:
    return ToolOutcome(ok=False, message=message, kind=kind)
