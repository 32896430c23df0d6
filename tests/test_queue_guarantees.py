"""The queue's risky paths, each pinned by a test that fails when the path breaks: lease renewal,
the claim's checks, abort marks, and ending a session."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
import tools_for_tests as test_tools
from mcp_http import McpHttp
from waiting import eventually

from facade.queue_client import QueueClient
from workers import contract
from workers.runtime import CLAIM_HOLD_AFTER_GAP_SECONDS


async def test_a_job_running_past_its_lease_is_renewed_not_run_again(start_worker, redis):
    """Two workers of one pool, a 1 s lease, a 2.5 s job: renewal keeps the other one off it."""
    for _ in range(2):
        await start_worker([test_tools.slow_counted], pool="leases", lease_seconds=1, idle_poll_seconds=0.2)
    queue = QueueClient(redis)
    await queue.start()
    try:
        result = await queue.call(
            "toolq:queue:leases", "slow_counted", {"key": "lease", "seconds": 2.5}, timeout=10
        )
    finally:
        await queue.close()
    assert result["ok"] is True, result
    assert test_tools.RUNS["lease"] == 1


async def test_a_wake_up_for_a_job_not_yet_due_does_not_start_it(start_worker, redis):
    worker = await start_worker([test_tools.counted], idle_poll_seconds=60)
    job = await redis.enqueue_job(
        contract.job_function("counted"), {"arguments": {"key": "early"}, "progress": False},
        _queue_name=worker.queue_name, _defer_by=30,
    )  # fmt: skip
    assert job is not None
    await redis.lpush(contract.ready_list(worker.queue_name), job.job_id)
    await asyncio.sleep(0.3)
    assert "early" not in test_tools.RUNS
    assert await redis.zscore(worker.queue_name, job.job_id) is not None  # still queued, for later


async def test_a_claim_on_a_job_that_left_the_queue_does_not_run_it(start_worker, redis):
    worker = await start_worker([test_tools.counted], idle_poll_seconds=60)
    job_id = "gone-before-claim"
    await redis.psetex(contract.job_key(job_id), 5000, b"{}")  # a job key, but not in the queue
    await redis.lpush(contract.ready_list(worker.queue_name), job_id)
    await asyncio.sleep(0.3)
    assert worker.job_tasks == {} and not worker.jobs_complete
    assert await redis.exists(contract.IN_PROGRESS_KEY_PREFIX + job_id) == 0  # the claim was released


async def test_stale_abort_marks_are_cleaned_up_and_fresh_ones_kept(redis):
    now_ms = int(time.time() * 1000)
    await redis.zadd(contract.ABORT_JOBS, {"long-finished": now_ms - 3_600_000, "just-aborted": now_ms})
    queue = QueueClient(redis, sweep_seconds=0.05)
    await queue.start()
    try:
        for _ in range(100):
            if await redis.zscore(contract.ABORT_JOBS, "long-finished") is None:
                break
            await asyncio.sleep(0.02)
    finally:
        await queue.close()
    assert await redis.zscore(contract.ABORT_JOBS, "long-finished") is None
    assert await redis.zscore(contract.ABORT_JOBS, "just-aborted") is not None


async def test_ending_a_session_stops_its_calls_in_flight_and_their_jobs(make_facade, start_worker):
    worker = await start_worker([test_tools.patient])
    client: McpHttp = await make_facade()
    await client.initialize()
    request = {"jsonrpc": "2.0", "id": 3, "method": "tools/call"}
    request["params"] = {"name": "patient", "arguments": {"seconds": 20}}
    call = asyncio.create_task(client.post(request))
    deadline = time.monotonic() + 2
    while not worker.job_tasks:
        assert time.monotonic() < deadline, "the job never started"
        await asyncio.sleep(0.02)
    response = await client.client.delete("/mcp", headers=client.headers())
    assert response.status == 200
    status, body, _ = await asyncio.wait_for(call, 2)
    assert (status, body["error"]["code"]) == (200, -32800)
    while worker.job_tasks:
        assert time.monotonic() < deadline + 3, "the job kept running after its session ended"
        await asyncio.sleep(0.02)


@pytest.mark.timeout(20)
async def test_a_worker_that_just_finished_a_job_still_stops_when_cancelled(start_worker, redis):
    """With one slot, finishing a job wakes the loop; a cancel arriving with that wake-up must
    still stop the worker (asyncio.wait_for on Python 3.11 lost it: the fixture's teardown hung)."""
    worker = await start_worker([test_tools.patient], concurrency=1)
    queue = QueueClient(redis)
    await queue.start()
    try:
        result = await queue.call(worker.queue_name, "patient", {"seconds": 0.1}, timeout=5)
    finally:
        await queue.close()
    assert result["ok"] is True


async def test_a_worker_never_starts_a_job_it_is_still_running(start_worker, redis):
    """The running job's claim vanishes (as when Redis lost it) and a wake-up names the job: the
    worker running it does not start it a second time."""
    worker = await start_worker([test_tools.slow_counted], idle_poll_seconds=60)
    queue = QueueClient(redis)
    await queue.start()
    try:
        call = asyncio.create_task(
            queue.call(worker.queue_name, "slow_counted", {"key": "twice?", "seconds": 1.0}, timeout=10)
        )
        await eventually(lambda: test_tools.RUNS.get("twice?") == 1, "the job did not start", 5)
        (job_id,) = [key.decode().removeprefix(contract.IN_PROGRESS_KEY_PREFIX)
                     for key in await redis.keys(contract.IN_PROGRESS_KEY_PREFIX + "*")]  # fmt: skip
        await redis.delete(contract.IN_PROGRESS_KEY_PREFIX + job_id)
        await redis.lpush(contract.ready_list(worker.queue_name), job_id)
        result = await call
    finally:
        await queue.close()
    assert result["ok"] is True, result
    assert test_tools.RUNS["twice?"] == 1


async def test_after_a_redis_gap_a_worker_waits_before_claiming(start_worker, redis, fake_server):
    """Claims wait a moment after Redis returns, so that jobs still running on other workers have
    their leases back before anyone could take them. (A lower bound: noise only makes it later.)"""
    worker = await start_worker([test_tools.counted], idle_poll_seconds=0.1)
    fake_server.connected = False
    await asyncio.sleep(0.5)
    fake_server.connected = True
    back = time.monotonic()
    await redis.enqueue_job(
        contract.job_function("counted"), {"arguments": {"key": "after-gap"}, "progress": False},
        _queue_name=worker.queue_name,
    )  # fmt: skip
    await eventually(lambda: "after-gap" in test_tools.RUNS, "the job did not start after the gap", 10)
    started = time.monotonic()
    await eventually(lambda: worker.jobs_complete == 1, "the job did not finish", 5)
    assert started - back >= 0.9 * CLAIM_HOLD_AFTER_GAP_SECONDS


async def test_a_call_redis_forgot_is_not_declared_lost_while_a_worker_puts_its_lease_back(
    redis, fake_server
):
    """Redis comes back empty; a second later the worker running the job puts its lease back, and
    later still delivers the result. The facade waits for that instead of calling the job lost."""
    queue = QueueClient(redis)
    await queue.start()
    try:
        call = asyncio.create_task(queue.call("toolq:queue:nobody", "counted", {"key": "k"}, timeout=20))
        await eventually(lambda: redis.zcard("toolq:queue:nobody"), "the job was not queued")
        (job_id,) = [raw.decode() for raw in await redis.zrange("toolq:queue:nobody", 0, -1)]
        fake_server.connected = False
        await asyncio.sleep(1.5)  # longer than a sweep: the facade sees Redis gone
        fake_server.connected = True
        await redis.flushall()  # Redis restarted without its data
        await asyncio.sleep(1.0)
        await redis.set(contract.IN_PROGRESS_KEY_PREFIX + job_id, "worker-a", px=3000)  # the lease, back
        await asyncio.sleep(1.0)
        done = {
            "type": "done",
            "job_id": job_id,
            "result": {"ok": True, "worker": "worker-a", "duration_ms": 1},
        }
        await redis.publish(contract.events_channel(queue.facade_id), contract.dumps(done))
        result = await asyncio.wait_for(call, 5)
    finally:
        await queue.close()
    assert result["ok"] is True, result


async def test_a_stopping_worker_hands_its_running_job_back_to_the_pool(start_worker, redis):
    """A worker stopped without a drain period puts its running job's id back on the pool's ready
    list (and gives up its claim), where the pool's next worker takes it: not at a poll."""
    first = await start_worker([test_tools.slow_counted], pool="handover", idle_poll_seconds=60)
    queue = QueueClient(redis)
    await queue.start()
    try:
        call = asyncio.create_task(
            queue.call(first.queue_name, "slow_counted", {"key": "handed", "seconds": 0.5}, timeout=10)
        )
        await eventually(lambda: test_tools.RUNS.get("handed") == 1, "the job did not start", 5)
        (job_id,) = first.job_tasks
        first.handle_sig(signal.SIGTERM)  # what SIGTERM does with no drain period
        await eventually(lambda: not first.tasks, "the job was not stopped", 5)
        ready = contract.ready_list(first.queue_name)
        # (The stopping worker's own pop, still waiting, may take the id first: it puts it back.)
        await eventually(lambda: redis.lrange(ready, 0, -1), "the job was not put back on the ready list", 5)
        assert await redis.lrange(ready, 0, -1) == [job_id.encode()]
        assert await redis.exists(contract.IN_PROGRESS_KEY_PREFIX + job_id) == 0
        second = await start_worker([test_tools.slow_counted], pool="handover", idle_poll_seconds=60)
        result = await asyncio.wait_for(call, 5)
    finally:
        await queue.close()
    assert result["ok"] is True, result
    assert result["worker"] == second.settings.worker_id
    assert test_tools.RUNS["handed"] == 2  # idempotent: run again from the start


async def test_an_abort_whose_push_was_lost_is_found_by_the_safety_net_poll(start_worker, redis):
    worker = await start_worker([test_tools.patient], idle_poll_seconds=0.2)
    queue = QueueClient(redis)
    await queue.start()
    try:
        call = asyncio.create_task(queue.call(worker.queue_name, "patient", {"seconds": 20}, timeout=30))
        await eventually(lambda: worker.job_tasks, "the job did not start", 5)
        (job_id,) = worker.job_tasks
        await redis.zadd(contract.ABORT_JOBS, {job_id: int(time.time() * 1000)})  # marked, not pushed
        await eventually(lambda: not worker.job_tasks, "the marked job was not stopped", 5)
        call.cancel()
    finally:
        await queue.close()
    assert worker.jobs_failed == 1 and worker.jobs_complete == 0


async def test_a_job_whose_id_the_ready_list_lost_is_run_by_the_safety_net_poll(start_worker, redis):
    worker = await start_worker([test_tools.counted], idle_poll_seconds=0.2)
    job = await redis.enqueue_job(  # arq's own enqueue: in the queue, but not on the ready list
        contract.job_function("counted"), {"arguments": {"key": "polled"}, "progress": False},
        _queue_name=worker.queue_name,
    )  # fmt: skip
    assert job is not None
    await eventually(lambda: worker.jobs_complete == 1, "the job was not found", 5)
    assert test_tools.RUNS["polled"] == 1
