"""Tools that exist only for tests: slow, failing, crashing and progress-reporting ones."""

from __future__ import annotations

import asyncio

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


#: How many times `counted` ran for each key: a job must run exactly once.
RUNS: dict[str, int] = {}


@tool
async def counted(key: str) -> Done:
    """Count a run under `key`."""
    RUNS[key] = RUNS.get(key, 0) + 1
    await asyncio.sleep(0.01)
    return Done(done=True)
