"""Faults injected into real processes: a real redis-server, facade and worker subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
import redis as redis_sync
from real_processes import ROOT, running_stack, seed_post, wait_until
from redis.exceptions import OutOfMemoryError

from workers import contract

pytestmark = pytest.mark.redis_server


async def test_a_full_redis_refusing_writes_does_not_kill_the_worker(tmp_path: Path):
    with running_stack(
        tmp_path,
        "--maxmemory-policy",
        "noeviction",
        TOOLQ_IDLE_POLL_SECONDS="0.2",
    ) as stack:
        _, url = stack.facade()
        worker = stack.worker("add-1", "--tools", "add")
        await asyncio.to_thread(stack.wait_for_workers, "add-1")
        assert (await seed_post(url, "add", {"a": 1, "b": 2}))[1]["result"]["sum"] == 3

        client = redis_sync.Redis.from_url(stack.redis.url)
        try:
            # Full: every write is refused (OOM), the worker's heartbeat included (one comes
            # within HEARTBEAT_SECONDS).
            client.config_set("maxmemory", 1)
            with pytest.raises(OutOfMemoryError):
                client.set("probe", "x")
            await asyncio.sleep(contract.HEARTBEAT_SECONDS + 1.0)
            assert worker.alive(), worker.output()
            status, body = await seed_post(url, "add", {"a": 1, "b": 2})
            assert status == 503, body  # refused at once as unavailable, not lost
            client.config_set("maxmemory", 0)
        finally:
            client.close()

        def serves_again() -> bool:
            return worker.alive() and "add-1" in stack.live_workers()

        await asyncio.to_thread(wait_until, serves_again, 10, "the worker to serve again")
        assert (await seed_post(url, "add", {"a": 20, "b": 22}))[1]["result"]["sum"] == 42
        assert "maxmemory" in worker.output()  # it did meet the refusals, and went on


async def test_a_worker_process_ends_overrunning_plain_def_tools_and_stops_cleanly(tmp_path: Path):
    python_path = str(ROOT / "tests")
    with running_stack(tmp_path) as stack:
        _, url = stack.facade()
        worker = stack.worker(
            "sync-1", "--tools", "stuck,doubled", "--tool-modules", "tools_for_tests", PYTHONPATH=python_path
        )
        await asyncio.to_thread(stack.wait_for_workers, "sync-1")
        markers = [tmp_path / f"stuck-{i}.pid" for i in range(4)]
        calls = [seed_post(url, "stuck", {"seconds": 30, "marker": str(marker)}) for marker in markers]
        answers = await asyncio.gather(*calls)
        assert all(status == 504 or "timeout" in body["error"] for status, body in answers), answers
        assert (await seed_post(url, "doubled", {"n": 2}))[1]["result"] == {"done": True}
        pids = [int(marker.read_text()) for marker in markers if marker.exists()]
        assert pids
        await asyncio.to_thread(
            wait_until, lambda: not any(pid_alive(p) for p in pids), 5, "the stuck children to end"
        )
        assert worker.terminate() == 0, worker.output()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_killed_worker_s_job_runs_again_within_the_caller_s_deadline(tmp_path: Path):
    """A 3 s idempotent tool, its worker SIGKILLed half a second in: the other worker of the pool
    takes the job once the 2 s lease lapses, and the caller's deadline (the tool's timeout + one
    lease + the grace) leaves room for that run; without the lease in it the caller would time out."""
    python_path = str(ROOT / "tests")
    marker = tmp_path / "starts"
    with running_stack(
        tmp_path, TOOLQ_JOB_LEASE_SECONDS="2", TOOLQ_IDLE_POLL_SECONDS="0.3", TOOLQ_CALL_GRACE_SECONDS="0.5"
    ) as stack:
        _, url = stack.facade()
        for name in ("resume-a", "resume-b"):
            stack.worker(
                name,
                "--tools",
                "resumable",
                "--pool",
                "resume",
                "--tool-modules",
                "tools_for_tests",
                PYTHONPATH=python_path,
            )
        await asyncio.to_thread(stack.wait_for_workers, "resume-a", "resume-b")
        started = time.monotonic()
        call = asyncio.create_task(seed_post(url, "resumable", {"marker": str(marker), "seconds": 1.5}))
        await asyncio.to_thread(wait_until, marker.exists, 5, "the first run to start")
        await asyncio.sleep(0.5)
        os.kill(int(marker.read_text().split()[0]), signal.SIGKILL)
        killed = time.monotonic()
        status, body = await asyncio.wait_for(call, 15)
        answered_after = time.monotonic() - started
        after_kill = time.monotonic() - killed
        print(f"\nidempotent call of a SIGKILLed worker answered {after_kill:.2f} s after the kill")
    starts = marker.read_text().split()
    assert (status, body.get("result")) == (200, {"slept": 1.5}), body
    assert len(starts) == 2 and starts[0] != starts[1]  # ran again, on the other worker
    assert answered_after > 3.5  # later than a deadline without the lease in it would have allowed
