"""MCP tasks through the facade, the queue and an in-process worker on a fake Redis: both eras,
other replicas, cancellation, ownership, and a task nobody follows any more."""

from __future__ import annotations

import asyncio
import json

import tools_for_tests as test_tools
from arq.jobs import serialize_result
from mcp_http import McpHttp, StatelessMcpHttp
from sse_events import SseEvents
from waiting import eventually

from facade.app import CALLS
from facade.protocol.tasks import TaskRequest
from facade.queue_client import QueueClient
from facade.tasks import RedisTaskStore, task_key
from workers import contract

TASKS = "io.modelcontextprotocol/tasks"
TAKES_TASKS = {"io.modelcontextprotocol/clientCapabilities": {"extensions": {TASKS: {}}}}


async def stateless(make_facade, **overrides) -> StatelessMcpHttp:
    return StatelessMcpHttp((await make_facade(**overrides)).client)


async def task_call(client: StatelessMcpHttp, name: str, arguments: dict, **headers: str) -> dict:
    status, body, _ = await client.post(
        client.message("tools/call", {"name": name, "arguments": arguments}, **TAKES_TASKS), **headers
    )
    assert status == 200 and "result" in body, (status, body)
    return body["result"]


async def task_get(client: StatelessMcpHttp, task_id: str, **headers: str) -> dict:
    status, body, _ = await client.post(
        client.message("tasks/get", {"taskId": task_id}, **TAKES_TASKS), **headers
    )
    assert status == (200 if "result" in body else 400), (status, body)  # -32602 is a bad request
    return body


async def until_ended(client: StatelessMcpHttp, task_id: str, seconds: float = 10) -> dict:
    ended: dict = {}

    async def check() -> bool:
        ended.update((await task_get(client, task_id))["result"])
        return ended["status"] in ("completed", "failed", "cancelled")

    await eventually(check, f"task {task_id} did not end", seconds)
    return ended


async def test_a_handshake_task_runs_its_job_once_and_any_replica_returns_its_result(
    make_facade, start_worker
):
    await start_worker([test_tools.staged])
    first: McpHttp = await make_facade()
    second: McpHttp = await make_facade()  # another replica on the same Redis
    await first.initialize()
    arguments = {"key": "handshake-task", "stages": 2, "seconds": 0.3}
    created = await first.rpc(
        "tools/call", {"name": "staged", "arguments": arguments, "task": {"ttl": 600_000}}
    )
    task = created["result"]["task"]
    assert task["status"] == "working" and task["ttl"] >= 600_000
    got = await first.rpc("tasks/get", {"taskId": task["taskId"]})
    assert got["result"]["status"] == "working"
    final = await first.rpc("tasks/result", {"taskId": task["taskId"]})
    assert final["result"]["structuredContent"] == {"done": True}
    assert final["result"]["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task["taskId"]}
    listed = await first.rpc("tasks/list")
    assert task["taskId"] in [listed_task["taskId"] for listed_task in listed["result"]["tasks"]]
    assert test_tools.RUNS["handshake-task"] == 1
    # A session of another replica is the same session (it lives in Redis): it finds the task.
    second.session_id, second.protocol_version = first.session_id, first.protocol_version
    again = await second.rpc("tasks/get", {"taskId": task["taskId"]})
    assert again["result"]["status"] == "completed"


async def test_a_quick_call_of_a_task_client_is_inline_and_a_slow_one_a_task_with_its_progress(
    make_facade, start_worker
):
    await start_worker([test_tools.staged])
    client = await stateless(make_facade, task_inline_seconds=0.5)
    quick = await task_call(client, "staged", {"key": "quick", "stages": 1, "seconds": 0.01})
    assert quick["resultType"] == "complete" and quick["structuredContent"] == {"done": True}
    slow = await task_call(client, "staged", {"key": "slow", "stages": 3, "seconds": 0.4})
    assert slow["resultType"] == "task" and slow["status"] == "working"
    await eventually(
        lambda: _status_message(client, slow["taskId"]), "the task never showed its progress message", 5
    )
    ended = await until_ended(client, slow["taskId"])
    assert ended["status"] == "completed" and ended["result"]["structuredContent"] == {"done": True}
    assert test_tools.RUNS["slow"] == 1 and test_tools.RUNS["quick"] == 1


async def _status_message(client: StatelessMcpHttp, task_id: str) -> bool:
    result = (await task_get(client, task_id))["result"]
    return str(result.get("statusMessage", "")).startswith("stage ")


async def test_another_replica_serves_a_task_and_its_worker_ends_it_when_no_facade_follows(
    make_facade, start_worker
):
    await start_worker([test_tools.staged])
    maker = await make_facade(task_inline_seconds=0.0)
    other = StatelessMcpHttp((await make_facade()).client)
    created = await task_call(
        StatelessMcpHttp(maker.client), "staged", {"key": "orphan", "stages": 2, "seconds": 0.3}
    )
    await maker.client.app[CALLS].close()  # the facade that made it stops following it
    ended = await until_ended(other, created["taskId"])
    assert ended["status"] == "completed" and ended["result"]["structuredContent"] == {"done": True}
    assert test_tools.RUNS["orphan"] == 1


async def test_cancelling_a_task_stops_its_job_on_the_worker(make_facade, start_worker, tmp_path):
    await start_worker([test_tools.watched])
    client = await stateless(make_facade, task_inline_seconds=0.0)
    marker = tmp_path / "trail"
    created = await task_call(client, "watched", {"marker": str(marker), "seconds": 30})
    await eventually(lambda: "started" in test_tools.read_trail(marker), "the job did not start", 5)
    status, body, _ = await client.post(
        client.message("tasks/cancel", {"taskId": created["taskId"]}, **TAKES_TASKS)
    )
    assert status == 200 and body["result"]["resultType"] == "complete", body
    await eventually(lambda: "cancelled" in test_tools.read_trail(marker), "the job did not stop", 5)
    assert (await task_get(client, created["taskId"]))["result"]["status"] == "cancelled"


async def test_a_task_is_visible_only_to_the_principal_that_made_it(make_facade, start_worker):
    await start_worker([test_tools.staged])
    client = await stateless(
        make_facade, tokens=("alice:alice-secret", "bob:bob-secret"), task_inline_seconds=0.0
    )
    alice, bob = {"Authorization": "Bearer alice-secret"}, {"Authorization": "Bearer bob-secret"}
    created = await task_call(client, "staged", {"key": "alice's", "stages": 1, "seconds": 0.5}, **alice)
    assert (await task_get(client, created["taskId"], **alice))["result"]["taskId"] == created["taskId"]
    foreign = await task_get(client, created["taskId"], **bob)
    assert foreign["error"]["code"] == -32602
    status, body, _ = await client.post(
        client.message("tasks/cancel", {"taskId": created["taskId"]}, **TAKES_TASKS), **bob
    )
    assert (status, body["error"]["code"]) == (400, -32602), body
    assert (await task_get(client, created["taskId"], **alice))["result"]["status"] != "cancelled"


async def test_tools_that_always_or_never_run_as_tasks(make_facade, start_worker):
    await start_worker([test_tools.always_a_task, test_tools.never_a_task])
    client = await stateless(make_facade, task_inline_seconds=5.0)
    always = await task_call(client, "always_a_task", {"seconds": 0.01})
    assert always["resultType"] == "task"  # even a quick call: the tool asks for a task
    never = await task_call(client, "never_a_task", {"seconds": 0.2})
    assert never["resultType"] == "complete"
    listed = McpHttp(client.client)
    await listed.initialize()
    modes = {
        tool["name"]: tool["execution"]["taskSupport"]
        for tool in (await listed.rpc("tools/list"))["result"]["tools"]
    }
    assert modes == {"always_a_task": "required", "never_a_task": "forbidden"}


async def test_a_task_whose_job_nobody_holds_fails_and_one_whose_job_ended_unseen_completes(redis):
    """No facade follows these tasks and no worker ended them: the next look at each finds out
    from Redis. A job neither queued, nor held, nor answered was lost: the task fails. A job
    whose result is stored completes its task with that result."""
    store = RedisTaskStore(redis, QueueClient(redis))
    lost = await store.create(
        "lost-task", TaskRequest(owner=None), ttl_ms=60_000, queue="q", job_id="lost-job"
    )
    ended = await store.create(
        "ended-task", TaskRequest(owner=None), ttl_ms=60_000, queue="q", job_id="done-job"
    )
    result = {"ok": True, "structured": {"done": True}, "worker": "w", "duration_ms": 1.0}
    record = serialize_result(
        "tool_x",
        ({},),
        {},
        1,
        0,
        True,
        result,
        0,
        1,
        "ref",
        "q",
        job_id="done-job",
        serializer=contract.dumps,
    )
    await redis.set(contract.result_key("done-job"), record)
    for task in (lost, ended):  # made long enough ago to be looked into
        await redis.hset(task_key(task.task_id), "created", task.created_ms - 10_000)
    assert (await store.get("lost-task", None)).status == "failed"
    completed = await store.get("ended-task", None)
    assert completed.status == "completed" and completed.outcome.structured == {"done": True}


async def test_tasks_of_instant_jobs_end_at_once(make_facade, start_worker):
    """An instant job may end before or after its task is made: either way whoever sees it end
    (the worker, or the facade following the job) ends the task, so tasks/result answers at once
    rather than at the next look for lost jobs, seconds later."""
    await start_worker([test_tools.staged])
    client: McpHttp = await make_facade()
    await client.initialize()
    for attempt in range(5):
        arguments = {"key": f"instant-{attempt}", "stages": 0, "seconds": 0}
        created = await client.rpc("tools/call", {"name": "staged", "arguments": arguments, "task": {}})
        task_id = created["result"]["task"]["taskId"]
        final = await asyncio.wait_for(client.rpc("tasks/result", {"taskId": task_id}), 2)
        assert final["result"]["structuredContent"] == {"done": True}


async def test_a_handshake_session_hears_on_its_get_stream_that_its_task_ended(make_facade, start_worker):
    await start_worker([test_tools.staged])
    client: McpHttp = await make_facade()
    await client.initialize()
    response = await client.client.get("/mcp", headers=client.headers())
    assert response.status == 200, await response.text()
    events = SseEvents(response)
    arguments = {"key": "told", "stages": 1, "seconds": 0.3}
    created = await client.rpc("tools/call", {"name": "staged", "arguments": arguments, "task": {}})
    task_id = created["result"]["task"]["taskId"]
    status = await events.next(5)
    assert status is not None and status["method"] == "notifications/tasks/status", status
    assert status["params"]["taskId"] == task_id and status["params"]["status"] == "completed"
    events.close()


async def test_a_stateless_watcher_on_another_replica_hears_its_task_end_with_the_result(
    make_facade, start_worker
):
    await start_worker([test_tools.staged])
    maker = StatelessMcpHttp((await make_facade(task_inline_seconds=0.0)).client)
    watcher = StatelessMcpHttp((await make_facade()).client)
    created = await task_call(maker, "staged", {"key": "watched-task", "stages": 2, "seconds": 0.4})
    message = watcher.message(
        "subscriptions/listen", {"notifications": {"taskIds": [created["taskId"]]}}, **TAKES_TASKS
    )
    response = await watcher.client.post("/mcp", data=json.dumps(message), headers=watcher.headers(message))
    events = SseEvents(response)
    ack = await events.next()
    assert ack is not None and ack["params"]["notifications"] == {"taskIds": [created["taskId"]]}, ack
    ended = await events.next(5)
    assert ended is not None and ended["method"] == "notifications/tasks", ended
    assert ended["params"]["status"] == "completed"
    assert ended["params"]["result"]["structuredContent"] == {"done": True}
    events.close()


async def test_a_task_of_another_principal_cannot_be_watched(make_facade, start_worker):
    await start_worker([test_tools.staged])
    client = await stateless(
        make_facade, tokens=("alice:alice-secret", "bob:bob-secret"), task_inline_seconds=0.0
    )
    alice, bob = {"Authorization": "Bearer alice-secret"}, {"Authorization": "Bearer bob-secret"}
    created = await task_call(client, "staged", {"key": "private", "stages": 1, "seconds": 0.5}, **alice)
    message = client.message(
        "subscriptions/listen", {"notifications": {"taskIds": [created["taskId"]]}}, **TAKES_TASKS
    )
    response = await client.client.post(
        "/mcp", data=json.dumps(message), headers={**client.headers(message), **bob}
    )
    events = SseEvents(response)
    ack = await events.next()
    assert ack is not None and ack["params"]["notifications"] == {"taskIds": []}, ack  # bob gets nothing
    events.close()
