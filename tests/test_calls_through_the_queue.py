"""A call's path through the queue: failures, deadlines, aborts, progress and cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time

import aiohttp
import pytest
import tools_for_tests as test_tools
from arq.jobs import Job
from mcp_http import McpHttp
from waiting import eventually

import workers.claims
from facade.queue_client import QueueClient
from workers import contract


async def test_a_tool_error_is_a_result_with_is_error(make_facade, start_worker):
    await start_worker([test_tools.refuse])
    client = await make_facade()
    await client.initialize()
    result = await client.call("refuse", {"reason": "the moon is not made of cheese"})
    assert result["isError"] is True
    assert result["content"] == [{"type": "text", "text": "the moon is not made of cheese"}]
    assert "structuredContent" not in result


async def test_a_crashing_tool_is_reported_not_fatal(make_facade, start_worker):
    await start_worker([test_tools.explode, test_tools.bad_output, "add"])
    client = await make_facade()
    await client.initialize()
    crashed = await client.call("explode")
    assert crashed["isError"] is True
    assert "RuntimeError: kaboom" in crashed["content"][0]["text"]
    bad = await client.call("bad_output")
    assert bad["isError"] is True
    assert "does not match its output schema" in bad["content"][0]["text"]
    assert (await client.call("add", {"a": 1, "b": 1}))["structuredContent"]["sum"] == 2


async def test_invalid_arguments_never_reach_a_worker(mcp: McpHttp, redis):
    result = await mcp.call("add", {"a": 1})
    assert result["isError"] is True
    assert "'b' is a required property" in result["content"][0]["text"]
    result = await mcp.call("add", {"a": 1, "b": 2, "c": 3})
    assert "Additional properties are not allowed" in result["content"][0]["text"]
    assert await redis.keys("arq:job:*") == []
    assert await redis.keys("arq:result:*") == []


async def test_the_worker_validates_arguments_again(start_worker, redis):
    worker = await start_worker(["add"])
    queue = QueueClient(redis)
    await queue.start()
    try:
        result = await queue.call(worker.queue_name, "add", {"a": "x", "b": 1}, timeout=5)
    finally:
        await queue.close()
    assert result["ok"] is False
    assert result["error"]["kind"] == "invalid_arguments"
    assert result["error"]["message"].startswith("Invalid arguments for tool 'add': a")


async def test_a_tool_past_its_timeout_fails_with_a_clear_message(make_facade, start_worker):
    await start_worker([test_tools.sleepy])
    client = await make_facade()
    await client.initialize()
    result = await client.call("sleepy", {"seconds": 5})
    assert result["isError"] is True
    assert result["content"][0]["text"] == "Tool 'sleepy' did not finish within its 0.3 s timeout."


async def test_a_call_nobody_picks_up_times_out_and_is_aborted(make_facade, start_worker, redis):
    worker = await start_worker([test_tools.sleepy])
    worker.allow_pick_jobs = False  # alive in the registry, but takes no work
    client = await make_facade(call_grace_seconds=0.2)
    await client.initialize()
    started = time.monotonic()
    result = await client.call("sleepy", {"seconds": 0})
    assert time.monotonic() - started < 2
    assert result["isError"] is True
    assert "did not answer within 0.5 s" in result["content"][0]["text"]
    await asyncio.sleep(0.05)
    assert await redis.zcard(worker.queue_name) == 0  # unqueued: a backlog never runs it
    assert await redis.zcard(contract.ABORT_JOBS) == 1


async def test_jobs_are_arq_jobs_that_expire_at_the_call_deadline(start_worker, redis):
    worker = await start_worker([test_tools.sleepy])
    worker.allow_pick_jobs = False
    queue = QueueClient(redis)
    await queue.start()
    try:
        call = asyncio.create_task(queue.call(worker.queue_name, "sleepy", {"seconds": 0}, timeout=3))
        await asyncio.sleep(0.05)
        (job_id,) = [m.decode() for m in await redis.zrange(worker.queue_name, 0, -1)]
        assert 0 < await redis.pttl(f"arq:job:{job_id}") <= 3000
        # arq's own API reads what the facade wrote.
        info = await Job(job_id, redis, _queue_name=worker.queue_name, _deserializer=contract.loads).info()
        assert info is not None
        assert info.function == "tool:sleepy"
        assert info.args == [{"arguments": {"seconds": 0}, "progress": False}]
        call.cancel()
    finally:
        await queue.close()


async def test_an_expired_job_is_pushed_as_a_failure(start_worker, redis):
    worker = await start_worker([test_tools.sleepy], idle_poll_seconds=60)
    queue = QueueClient(redis, sweep_seconds=60)  # only the push can deliver the failure in time
    await queue.start()
    try:
        worker.allow_pick_jobs = False
        call = asyncio.create_task(queue.call(worker.queue_name, "sleepy", {"seconds": 0}, timeout=5))
        await asyncio.sleep(0.05)
        (job_id,) = [m.decode() for m in await redis.zrange(worker.queue_name, 0, -1)]
        await redis.delete(contract.job_key(job_id))  # what expiry does to a queued job
        worker.allow_pick_jobs = True
        await redis.lpush(contract.ready_list(worker.queue_name), job_id)
        result = await asyncio.wait_for(call, 2.0)
    finally:
        await queue.close()
    assert result["ok"] is False
    assert "no worker picked it up before its deadline" in result["error"]["message"]


async def test_results_whose_push_was_lost_are_found_by_the_sweep(start_worker, redis, monkeypatch):
    monkeypatch.setattr(workers.claims, "completion_channel", lambda _job_id: "toolq:events:nobody")
    worker = await start_worker(["add"])
    queue = QueueClient(redis, sweep_seconds=0.1)
    await queue.start()
    try:
        result = await queue.call(worker.queue_name, "add", {"a": 2, "b": 2}, timeout=5)
    finally:
        await queue.close()
    assert result["structured"] == {"a": 2, "b": 2, "sum": 4}


async def test_nothing_on_redis_is_pickled(mcp: McpHttp, redis, start_worker):
    worker = await start_worker([test_tools.patient])
    call = asyncio.create_task(mcp.call("patient", {"seconds": 0.3}))
    await asyncio.sleep(0.1)
    (job_key,) = await redis.keys("arq:job:*")
    job = json.loads(await redis.get(job_key))
    assert job["f"] == "tool:patient"
    assert job["a"] == [{"arguments": {"seconds": 0.3}, "progress": False, "log_level": "info"}]
    await call
    (result_key,) = await redis.keys("arq:result:*")
    assert json.loads(await redis.get(result_key))["r"]["structured"] == {"slept": 0.3}
    assert worker.queue_name == "toolq:queue:patient"


async def test_progress_travels_on_an_sse_stream(make_facade, start_worker):
    await start_worker([test_tools.steps])
    client = await make_facade()
    await client.initialize()
    response = await client.client.post(
        "/mcp",
        json={
            "jsonrpc": "2.0",
            "id": 9,
            "method": "tools/call",
            "params": {"name": "steps", "arguments": {"count": 3}, "_meta": {"progressToken": "p1"}},
        },
        headers=client.headers(),
    )
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = [
        json.loads(line[len("data: ") :])
        for line in (await response.text()).splitlines()
        if line.startswith("data: ")
    ]
    progress = [e["params"] for e in events if e.get("method") == "notifications/progress"]
    assert progress == [
        {"progressToken": "p1", "progress": step, "total": 3, "message": f"step {step}"} for step in (1, 2, 3)
    ]
    assert events[-1]["id"] == 9
    assert events[-1]["result"]["structuredContent"] == {"done": True}


async def test_without_a_progress_token_the_answer_is_plain_json(make_facade, start_worker):
    await start_worker([test_tools.steps])
    client = await make_facade()
    await client.initialize()
    result = await client.call("steps", {"count": 2})
    assert result["structuredContent"] == {"done": True}


async def test_notifications_cancelled_stops_the_call_and_its_job(make_facade, start_worker, redis):
    worker = await start_worker([test_tools.patient])
    client = await make_facade()
    await client.initialize()
    request = {
        "jsonrpc": "2.0",
        "id": "slow-1",
        "method": "tools/call",
        "params": {"name": "patient", "arguments": {"seconds": 20}},
    }
    call = asyncio.create_task(client.post(request))
    await eventually(lambda: worker.job_tasks, "the job never started")
    status, _, _ = await client.post(
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "slow-1"}}
    )
    assert status == 202
    status, body, _ = await asyncio.wait_for(call, 2)
    assert status == 200
    assert body["error"]["code"] == -32800
    await eventually(lambda: not worker.job_tasks, "the job is still running on its worker")


async def test_a_saturated_worker_takes_its_backlog_without_the_safety_net_poll(make_facade, start_worker):
    await start_worker([test_tools.patient], concurrency=1, idle_poll_seconds=60)
    client = await make_facade()
    await client.initialize()
    calls = [client.call("patient", {"seconds": 0.1}) for _ in range(4)]
    results = await asyncio.wait_for(asyncio.gather(*calls), 10)
    assert [r["structuredContent"] for r in results] == [{"slept": 0.1}] * 4


async def test_workers_racing_for_the_same_jobs_run_each_exactly_once(make_facade, start_worker):
    """Three workers, bursts of calls: each job runs once, and none waits for the safety-net poll
    (an hour away): ids a worker popped but had no room for go back to the ready list."""
    for _ in range(3):
        await start_worker([test_tools.counted], pool="racers", idle_poll_seconds=3600)
    client = await make_facade()
    await client.initialize()
    for burst in range(4):
        keys = [f"job-{burst}-{i}" for i in range(30)]
        results = await asyncio.gather(*(client.call("counted", {"key": key}) for key in keys))
        assert [r for r in results if r["isError"]] == []
        assert {key: test_tools.RUNS[key] for key in keys} == dict.fromkeys(keys, 1)


async def test_a_client_that_disconnects_cancels_its_job(make_facade, start_worker):
    worker = await start_worker([test_tools.patient])
    client = await make_facade()
    await client.initialize()
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
    request["params"] = {"name": "patient", "arguments": {"seconds": 20}}
    with pytest.raises(TimeoutError):
        await client.client.post(
            "/mcp", json=request, headers=client.headers(), timeout=aiohttp.ClientTimeout(total=0.5)
        )
    assert worker.job_tasks or worker.jobs_failed, "the job never started"
    await eventually(lambda: not worker.job_tasks, "the job kept running after its caller left")


async def test_a_cancellation_reaching_another_replica_still_stops_the_call(make_facade, start_worker):
    worker = await start_worker([test_tools.patient])
    serving, other = await make_facade(), await make_facade()
    await serving.initialize()
    other.session_id, other.protocol_version = serving.session_id, serving.protocol_version
    request = {"jsonrpc": "2.0", "id": 77, "method": "tools/call"}
    request["params"] = {"name": "patient", "arguments": {"seconds": 20}}
    call = asyncio.create_task(serving.post(request))
    await eventually(lambda: worker.job_tasks, "the job never started")
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 77}}
    assert (await other.post(cancel))[0] == 202
    status, body, _ = await asyncio.wait_for(call, 2)
    assert (status, body["error"]["code"]) == (200, -32800)


async def test_a_cancellation_with_a_malformed_request_id_is_ignored(mcp: McpHttp):
    for request_id in ({"a": 1}, [1], None, True):
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": request_id}}
        assert (await mcp.post(cancel))[0] == 202
    assert (await mcp.rpc("ping"))["result"] == {}


async def test_a_plain_def_tool_past_its_timeout_is_ended_and_its_slot_comes_back(
    make_facade, start_worker, tmp_path
):
    await start_worker([test_tools.stuck, test_tools.doubled])
    client = await make_facade()
    await client.initialize()
    markers = [tmp_path / f"stuck-{i}.pid" for i in range(8)]
    stuck = await asyncio.gather(*(client.call("stuck", {"seconds": 30, "marker": str(m)}) for m in markers))
    assert all("did not finish within its 0.3 s timeout" in r["content"][0]["text"] for r in stuck)
    # More overrunning calls than the worker has processes or threads, and still it serves.
    quick = await asyncio.wait_for(asyncio.gather(*(client.call("doubled", {"n": i}) for i in range(8))), 5)
    assert all(r["isError"] is False for r in quick)
    pids = {int(m.read_text()) for m in markers if m.exists()}
    assert pids, "no stuck call ever started"
    deadline = time.monotonic() + 3
    while any(_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, "a timed-out plain-def tool is still running"
        await asyncio.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False  # it ended; only its exit status was left to collect
    return True


async def test_system_exit_from_a_tool_is_its_failure_not_the_worker_s_end(make_facade, start_worker):
    await start_worker([test_tools.quits, test_tools.quits_async, "add"])
    client = await make_facade()
    await client.initialize()
    for name in ("quits", "quits_async"):
        result = await client.call(name)
        assert result["isError"] is True, result
        assert f"Tool {name!r}" in result["content"][0]["text"]
    assert (await client.call("add", {"a": 2, "b": 2}))["structuredContent"]["sum"] == 4
