"""Redis outages, dead workers and blocked event loops, on real processes: what ran, how often,
and what the caller was told.

Executions are counted through a side channel the tools write (a ledger file, see
tools_for_tests.tallied), never through toolq's own bookkeeping.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from real_processes import ROOT, Stack, running_stack, seed_post, wait_until
from tools_for_tests import read_ledger

pytestmark = pytest.mark.redis_server

TEST_TOOLS = {"PYTHONPATH": str(ROOT / "tests")}
#: Shorter than either outage: the jobs' leases lapse in Redis while it is away.
LEASE = {"TOOLQ_JOB_LEASE_SECONDS": "3"}


def start_pool(stack: Stack, pool: str, tools: str, *names: str, **env: str) -> None:
    for name in names:
        stack.worker(
            name,
            "--tools", tools,
            "--pool", pool,
            "--tool-modules", "tools_for_tests",
            "--concurrency", "50",
            **TEST_TOOLS, **env,
        )  # fmt: skip
    stack.wait_for_workers(*names)


async def timed_call(url: str, tool: str, params: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
    status, body = await seed_post(url, tool, params)
    return status, body, time.time()


def ledger_times(ledger: Path, event: str) -> dict[str, float]:
    times = {}
    for line in ledger.read_text().split("\n")[:-1]:
        kind, call, _pid, at = line.split()
        if kind == event:
            times[call] = float(at)
    return times


@pytest.mark.slow
@pytest.mark.parametrize(
    ("outage", "persistence"),
    [(5, "aof"), (15, "aof"), (5, "none"), (15, "none")],
    ids=["5s-aof", "15s-aof", "5s-no-persistence", "15s-no-persistence"],
)
async def test_calls_running_through_a_redis_outage_run_once_and_are_answered_when_it_returns(
    tmp_path: Path, outage: float, persistence: str
):
    """30 calls running on two workers, half of them not idempotent, Redis stopped for longer
    than their leases. Each ends before, during or after the outage. Whether Redis comes back with
    its data (AOF) or empty: every call ran once, and its caller gets its real result once Redis
    is back. A call made during the outage is refused at once as unavailable."""
    ledger = tmp_path / "ledger"
    redis_args = ("--appendonly", "yes") if persistence == "aof" else ()
    with running_stack(tmp_path, *redis_args, **LEASE) as stack:
        _, url = stack.facade()
        await asyncio.to_thread(
            start_pool, stack, "tally", "tallied,tallied_once", "tally-a", "tally-b", **LEASE
        )
        names = [f"call-{i}" for i in range(30)]
        calls = {
            name: asyncio.create_task(
                timed_call(
                    url,
                    "tallied" if i % 2 else "tallied_once",
                    {"ledger": str(ledger), "call": name, "seconds": 1.0 + i * (outage + 2) / 30},
                )
            )
            for i, name in enumerate(names)
        }
        await asyncio.to_thread(
            wait_until, lambda: len(read_ledger(ledger)) == len(names), 15, "every call to start"
        )
        await asyncio.sleep(0.5)
        stack.redis.stop()
        stopped_at = time.time()
        status, body = await asyncio.wait_for(
            seed_post(url, "tallied", {"ledger": "", "call": "x", "seconds": 0}), 5
        )
        assert status == 503, body  # unavailable, at once
        await asyncio.sleep(outage)
        stack.redis.start()
        back_at = time.time()
        answers = dict(zip(names, await asyncio.wait_for(asyncio.gather(*calls.values()), 60), strict=True))

    executions = read_ledger(ledger)
    ended = ledger_times(ledger, "end")
    for name, (status, body, _) in answers.items():
        assert (status, body.get("result", {}).get("call")) == (200, name), (name, body)
        assert executions[name] == {"start": 1, "end": 1}, (name, executions[name])
    during = [name for name in names if stopped_at <= ended[name] <= back_at]
    after = [name for name in names if ended[name] > back_at]
    assert during and after, "the calls did not end both during and after the outage"
    waits = sorted(answers[name][2] - back_at for name in during)
    print(
        f"\noutage {outage}s ({persistence}): {len(during)} calls ended during it, answered "
        f"{waits[0]:.2f}-{waits[-1]:.2f} s after Redis returned; {len(after)} ended after it; "
        f"executions per call: 1"
    )
    assert waits[-1] < 10, waits  # delivered from the worker's outbox, not waited out


async def test_a_tool_that_blocks_its_event_loop_keeps_its_lease_and_runs_once(tmp_path: Path):
    """An async tool that blocks its worker's loop for 5 s, with a 2 s lease and another idle
    worker in the pool: the lease is renewed from its own thread, so nobody runs it again."""
    ledger = tmp_path / "ledger"
    env = {"TOOLQ_JOB_LEASE_SECONDS": "2", "TOOLQ_IDLE_POLL_SECONDS": "0.3"}
    with running_stack(tmp_path, **env) as stack:
        _, url = stack.facade()
        await asyncio.to_thread(start_pool, stack, "blockers", "loop_blocker", "block-a", "block-b", **env)
        status, body = await asyncio.wait_for(
            seed_post(url, "loop_blocker", {"ledger": str(ledger), "call": "blocked", "seconds": 5}), 30
        )
        await asyncio.sleep(1)  # time for a second run to show in the ledger, were there one
    assert (status, body.get("result", {}).get("call")) == (200, "blocked"), body
    assert read_ledger(ledger) == {"blocked": {"start": 1, "end": 1}}


async def test_a_killed_worker_s_call_that_is_not_idempotent_runs_once_and_says_so(tmp_path: Path):
    """SIGKILL the worker running a non-idempotent call: the other worker of the pool does not
    run it again, and the caller is told it may or may not have taken effect, within a lease."""
    ledger = tmp_path / "ledger"
    env = {"TOOLQ_JOB_LEASE_SECONDS": "2", "TOOLQ_IDLE_POLL_SECONDS": "0.3"}
    with running_stack(tmp_path, **env) as stack:
        _, url = stack.facade()
        await asyncio.to_thread(start_pool, stack, "once", "tallied_once", "once-a", "once-b", **env)
        call = asyncio.create_task(
            timed_call(url, "tallied_once", {"ledger": str(ledger), "call": "doomed", "seconds": 20})
        )
        await asyncio.to_thread(wait_until, lambda: "doomed" in read_ledger(ledger), 10, "the call to start")
        pid = int(ledger.read_text().split()[2])
        os.kill(pid, signal.SIGKILL)
        killed_at = time.time()
        status, body, answered_at = await asyncio.wait_for(call, 30)
        await asyncio.sleep(1)
    assert status == 422, body  # the call failed, and says how
    assert "may or may not have taken effect" in body["error"], body
    assert read_ledger(ledger) == {"doomed": {"start": 1, "end": 0}}
    print(
        f"\nnon-idempotent call of a SIGKILLed worker answered {answered_at - killed_at:.2f} s after the kill"
    )
    assert answered_at - killed_at < 10  # within a lease and a poll, not at the tool's 40 s timeout


async def test_a_call_no_worker_holds_after_redis_restarts_empty_is_reported_lost(tmp_path: Path):
    """The worker running a call is SIGKILLed and Redis restarts empty: nobody holds the job any
    more, and the caller is told the queue lost it, soon after Redis is back, not at its deadline."""
    ledger = tmp_path / "ledger"
    with running_stack(tmp_path) as stack:
        _, url = stack.facade()
        await asyncio.to_thread(start_pool, stack, "lost", "tallied", "lost-a")
        call = asyncio.create_task(
            timed_call(url, "tallied", {"ledger": str(ledger), "call": "lost", "seconds": 30})
        )
        await asyncio.to_thread(wait_until, lambda: "lost" in read_ledger(ledger), 10, "the call to start")
        stack.services[-1].kill()
        stack.redis.stop()
        stack.redis.start()  # empty: the job is gone, and no worker holds it
        back_at = time.time()
        status, body, answered_at = await asyncio.wait_for(call, 20)  # its deadline is ~45 s away
    assert status == 503, body  # unavailable, not the tool's failure
    assert "The queue lost this call" in body["error"], body
    assert answered_at - back_at < 10
