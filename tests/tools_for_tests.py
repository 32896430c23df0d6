"""Tools that exist only for tests: slow, failing, crashing, progress-reporting and logging ones.

Served in-process by the fast suite, and by worker processes with `python -m workers
--tool-modules tools_for_tests` (tests/ on PYTHONPATH).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from pydantic import BaseModel

from workers.definition import ToolContext, ToolError, tool


class Slept(BaseModel):
    slept: float


class Done(BaseModel):
    done: bool


@tool(timeout=0.3)
async def sleepy(seconds: float) -> Slept:
    """Sleep, past its own 0.3 s timeout if asked."""
    await asyncio.sleep(seconds)
    return Slept(slept=seconds)


@tool(timeout=30)
async def patient(seconds: float) -> Slept:
    """Sleep for as long as asked, within a 30 s timeout."""
    await asyncio.sleep(seconds)
    return Slept(slept=seconds)


@tool
async def refuse(reason: str) -> Done:
    """Always fail with the reason given."""
    raise ToolError(reason)


@tool
def explode() -> Done:
    """Crash with an unexpected exception."""
    raise RuntimeError("kaboom")


@tool
async def bad_output() -> Done:
    """Return something that does not match the output schema."""
    return {"done": "not a bool at all"}  # type: ignore[return-value]


@tool
async def steps(count: int, ctx: ToolContext) -> Done:
    """Report progress count times, then finish."""
    for step in range(1, count + 1):
        await ctx.report_progress(step, count, f"step {step}")
        await asyncio.sleep(0.01)
    return Done(done=True)


@tool(timeout=0.3)
def stuck(seconds: float, marker: str) -> Slept:
    """A plain function that overruns its 0.3 s timeout; it leaves the pid running it in `marker`."""
    Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)
    return Slept(slept=seconds)


@tool
def doubled(n: int) -> Done:
    """A quick plain function."""
    return Done(done=n * 2 > n)


@tool
def quits() -> Done:
    """A plain function that raises SystemExit."""
    raise SystemExit(3)


@tool
async def quits_async() -> Done:
    """An async tool that raises SystemExit."""
    raise SystemExit(4)


def _note_start(marker: Path) -> None:
    with marker.open("a") as starts:
        starts.write(f"{os.getpid()}\n")


@tool(timeout=3, idempotent=True)
async def resumable(marker: str, seconds: float) -> Slept:
    """Note each start (with the pid of the worker running it) in `marker`, then sleep."""
    _note_start(Path(marker))
    await asyncio.sleep(seconds)
    return Slept(slept=seconds)


#: How many times `counted` ran for each key: a job must run exactly once.
RUNS: dict[str, int] = {}


@tool
async def counted(key: str) -> Done:
    """Count a run under `key`."""
    RUNS[key] = RUNS.get(key, 0) + 1
    await asyncio.sleep(0.01)
    return Done(done=True)


@tool(timeout=30, idempotent=True)
async def slow_counted(key: str, seconds: float) -> Done:
    """Count a run under `key`, then take `seconds`: long enough to need its lease renewed."""
    RUNS[key] = RUNS.get(key, 0) + 1
    await asyncio.sleep(seconds)
    return Done(done=True)


@tool
async def narrated(count: int, ctx: ToolContext) -> Done:
    """Log and report progress count times (after one debug message), then finish."""
    await ctx.debug(f"narrated counting to {count}")
    for step in range(1, count + 1):
        await ctx.info(f"narrated step {step} of {count}")
        await ctx.report_progress(step, count, f"step {step}")
        await asyncio.sleep(0.01)
    return Done(done=True)


def _leave_trail(marker: Path, event: str) -> None:
    with marker.open("a") as trail:
        trail.write(f"{event} {time.time()}\n")


def read_trail(marker: Path) -> dict[str, float]:
    """The events `watched` left in `marker` so far, each with its time.time()."""
    if not marker.exists():
        return {}
    lines = marker.read_text().split("\n")[:-1]  # a line still being written has no newline yet
    return {event: float(at) for event, at in (line.split() for line in lines)}


@tool(timeout=60)
async def watched(marker: str, seconds: float) -> Slept:
    """Sleep for `seconds`, leaving a trail in the file `marker`: "started <time>", then
    "cancelled <time>" or "finished <time>". A test reads it to see whether cancelling a call
    really stopped its job on the worker, wherever that worker runs."""
    trail = Path(marker)
    _leave_trail(trail, "started")
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        _leave_trail(trail, "cancelled")
        raise
    _leave_trail(trail, "finished")
    return Slept(slept=seconds)


def _tally(ledger: str, event: str, call: str) -> None:
    # One short line per write, appended: lines from concurrent processes never interleave.
    with Path(ledger).open("a") as book:
        book.write(f"{event} {call} {os.getpid()} {time.time()}\n")


def read_ledger(ledger: Path) -> dict[str, dict[str, int]]:
    """Per call name, how many times `tallied`/`tallied_once` started and ended it."""
    counts: dict[str, dict[str, int]] = {}
    if not ledger.exists():
        return counts
    for line in ledger.read_text().split("\n")[:-1]:
        event, call, _pid, _at = line.split()
        per_call = counts.setdefault(call, {"start": 0, "end": 0})
        per_call[event] += 1
    return counts


class Tallied(BaseModel):
    call: str
    pid: int


@tool(timeout=40, idempotent=True)
async def tallied(ledger: str, call: str, seconds: float) -> Tallied:
    """Idempotent: note "start <call>" in the file `ledger`, sleep, note "end <call>". The side
    channel that counts real executions, whatever toolq's own bookkeeping says."""
    _tally(ledger, "start", call)
    await asyncio.sleep(seconds)
    _tally(ledger, "end", call)
    return Tallied(call=call, pid=os.getpid())


@tool(timeout=40)
async def tallied_once(ledger: str, call: str, seconds: float) -> Tallied:
    """`tallied`, not idempotent: toolq must never start it twice."""
    _tally(ledger, "start", call)
    await asyncio.sleep(seconds)
    _tally(ledger, "end", call)
    return Tallied(call=call, pid=os.getpid())


@tool(timeout=10, idempotent=True)
async def loop_blocker(ledger: str, call: str, seconds: float) -> Tallied:
    """An async tool that wrongly blocks its worker's event loop for `seconds` (time.sleep)."""
    _tally(ledger, "start", call)
    time.sleep(seconds)  # noqa: ASYNC251 - the point of this tool
    _tally(ledger, "end", call)
    return Tallied(call=call, pid=os.getpid())


@tool(timeout=30, idempotent=True)
async def staged(key: str, stages: int, seconds: float, ctx: ToolContext) -> Done:
    """Count a run under `key`, then go through `stages` stages of `seconds` each, reporting
    progress ("stage 2 of 3") at the start of each."""
    RUNS[key] = RUNS.get(key, 0) + 1
    for stage in range(1, stages + 1):
        await ctx.report_progress(stage, stages, f"stage {stage} of {stages}")
        await asyncio.sleep(seconds)
    return Done(done=True)


@tool(timeout=30, task="always")
async def always_a_task(seconds: float) -> Slept:
    """Sleep; every call is an MCP task."""
    await asyncio.sleep(seconds)
    return Slept(slept=seconds)


@tool(timeout=30, task="never")
async def never_a_task(seconds: float) -> Slept:
    """Sleep; no call is ever an MCP task."""
    await asyncio.sleep(seconds)
    return Slept(slept=seconds)
