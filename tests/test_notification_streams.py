"""Notification streams: the handshake era's GET stream, the stateless era's subscriptions/listen,
tool-list changes from the registry, and notifications for sessions and tasks across replicas.

Facades and in-process workers on one fakeredis; two facade apps on it are two replicas.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest
import tools_for_tests as test_tools
from conftest import stop_worker
from mcp_http import McpHttp, StatelessMcpHttp
from mcp_types.methods import parse_server_notification, validate_server_result
from real_processes import free_port
from sse_events import SseEvents
from waiting import eventually

from facade.app import LISTENERS, connect_redis
from facade.catalog import Catalog
from facade.listeners import Listeners, anyone_may_watch
from facade.protocol.envelope import read_envelope
from facade.protocol.jsonrpc import JsonRpcError, Request, notification
from facade.protocol.subscriptions import Subscription, read_subscription
from facade.queue_client import QueueClient
from facade.tool_list_changes import ToolListChanges
from workers import contract

SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"
TASKS = "io.modelcontextprotocol/tasks"
WITH_TASKS = {"io.modelcontextprotocol/clientCapabilities": {"extensions": {TASKS: {}}}}
CHANGED = "notifications/tools/list_changed"


def listeners_of(facade: McpHttp) -> Listeners:
    app = facade.client.app
    assert app is not None
    return app[LISTENERS]


async def listen(
    client: StatelessMcpHttp, notifications: dict[str, Any], **meta: Any
) -> tuple[int, SseEvents]:
    """Open a subscriptions/listen stream; its request id and its events."""
    message = client.message("subscriptions/listen", {"notifications": notifications}, **meta)
    response = await client.client.post("/mcp", data=json.dumps(message), headers=client.headers(message))
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "text/event-stream"
    return message["id"], SseEvents(response)


async def acknowledged(
    client: StatelessMcpHttp, notifications: dict[str, Any], **meta: Any
) -> tuple[int, SseEvents, dict[str, Any]]:
    """A listen stream past its acknowledgement (checked against the 2026-07-28 schema)."""
    subscription_id, events = await listen(client, notifications, **meta)
    ack = await events.next()
    assert ack is not None and ack["method"] == "notifications/subscriptions/acknowledged", ack
    parse_server_notification(ack["method"], "2026-07-28", ack["params"])
    assert ack["params"]["_meta"][SUBSCRIPTION_ID] == subscription_id
    return subscription_id, events, ack["params"]["notifications"]


async def get_stream(client: McpHttp, **headers: str) -> SseEvents:
    response = await client.client.get("/mcp", headers={**client.headers(), **headers})
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "text/event-stream"
    return SseEvents(response)


async def stateless_facade(make_facade, **settings: Any) -> StatelessMcpHttp:
    return StatelessMcpHttp((await make_facade(**settings)).client)


async def open_session(make_facade, **settings: Any) -> McpHttp:
    client = await make_facade(**settings)
    await client.initialize()
    return client


# --- what is declared ------------------------------------------------------------------------


async def test_both_eras_declare_that_the_tool_list_tells_its_changes(make_facade):
    stateless = await stateless_facade(make_facade)
    discovered = (await stateless.rpc("server/discover"))["result"]
    initialized = await (await make_facade()).initialize()
    assert discovered["capabilities"]["tools"] == {"listChanged": True}
    assert initialized["capabilities"]["tools"] == {"listChanged": True}


# --- the stateless era: subscriptions/listen --------------------------------------------------


async def test_listen_is_acknowledged_first_with_the_subset_toolq_serves(make_facade):
    client = await stateless_facade(make_facade)
    wanted = {"toolsListChanged": True, "promptsListChanged": True, "resourceSubscriptions": ["file:///a"]}
    _, events, agreed = await acknowledged(client, wanted)
    assert agreed == {"toolsListChanged": True}
    events.close()


async def test_a_new_workers_tool_is_told_on_the_listen_stream_tagged_with_its_subscription(
    make_facade, start_worker
):
    await start_worker(["add"])
    client = await stateless_facade(make_facade)
    subscription_id, events, _ = await acknowledged(client, {"toolsListChanged": True})
    started = time.monotonic()
    await start_worker([test_tools.doubled])
    changed = await events.next(seconds=2)
    assert changed is not None and changed["method"] == CHANGED, changed
    assert changed["params"]["_meta"][SUBSCRIPTION_ID] == subscription_id
    parse_server_notification(CHANGED, "2026-07-28", changed["params"])
    assert time.monotonic() - started < 1.5
    names = [tool["name"] for tool in (await client.rpc("tools/list"))["result"]["tools"]]
    assert "doubled" in names
    events.close()


async def test_a_listen_stream_that_did_not_ask_for_tool_changes_hears_none(make_facade, start_worker):
    client = await stateless_facade(make_facade)
    _, events, agreed = await acknowledged(client, {"promptsListChanged": True})
    assert agreed == {}
    await start_worker([test_tools.doubled])
    assert await events.silent_for(1.0)
    events.close()


async def test_a_burst_of_workers_with_new_tools_is_told_once(make_facade, start_worker):
    client = await stateless_facade(make_facade)
    _, events, _ = await acknowledged(client, {"toolsListChanged": True})
    for tool in (test_tools.doubled, test_tools.refuse, test_tools.steps, test_tools.explode):
        await start_worker([tool])
    changed = await events.next(seconds=2)
    assert changed is not None and changed["method"] == CHANGED
    assert await events.silent_for(1.5), "one burst of workers was told more than once"
    events.close()


async def test_a_worker_bringing_tools_already_listed_tells_nobody(make_facade, start_worker):
    await start_worker([test_tools.doubled])
    client = await stateless_facade(make_facade)
    _, events, _ = await acknowledged(client, {"toolsListChanged": True})
    await start_worker([test_tools.doubled])
    assert await events.silent_for(1.5)
    events.close()


async def test_the_last_worker_of_a_tool_leaving_is_told_but_not_the_one_before(make_facade, start_worker):
    first = await start_worker([test_tools.doubled])
    last = await start_worker([test_tools.doubled])
    client = await stateless_facade(make_facade)
    _, events, _ = await acknowledged(client, {"toolsListChanged": True})
    await stop_worker(first)
    assert await events.silent_for(1.0), "a tool still served by another worker was told as gone"
    await stop_worker(last)
    changed = await events.next(seconds=2)
    assert changed is not None and changed["method"] == CHANGED
    events.close()


async def test_a_worker_that_died_without_a_word_is_told_once_its_heartbeat_expired(
    make_facade, start_worker, redis
):
    worker = await start_worker([test_tools.doubled])
    client = await stateless_facade(make_facade)
    _, events, _ = await acknowledged(client, {"toolsListChanged": True})
    assert worker.heartbeat is not None
    worker.heartbeat.cancel()  # as a SIGKILLed process's heartbeat stops: no leave, no announcement
    await redis.zadd(contract.WORKERS_LIVE, {worker.settings.worker_id: int(time.time() * 1000) - 1})
    expired = time.monotonic()
    changed = await events.next(seconds=3)
    assert changed is not None and changed["method"] == CHANGED
    # Seen by the periodic look: every half second, on a catalog read at most a second old.
    assert time.monotonic() - expired < 2.0
    events.close()


async def test_task_ids_need_the_tasks_extension(make_facade):
    client = await stateless_facade(make_facade)
    message = client.message("subscriptions/listen", {"notifications": {"taskIds": ["t-1"]}})
    status, body, _ = await client.post(message)
    assert (status, body["error"]["code"]) == (400, -32021)
    assert body["error"]["data"] == {"requiredCapabilities": {"extensions": {TASKS: {}}}}
    assert body["id"] == message["id"]


@pytest.mark.parametrize(
    "notifications",
    [None, [], {"toolsListChanged": "yes"}, {"taskIds": "t-1"}, {"resourceSubscriptions": [1]}],
)
async def test_a_filter_that_is_not_one_is_invalid_params(make_facade, notifications):
    client = await stateless_facade(make_facade)
    params = {} if notifications is None else {"notifications": notifications}
    status, body, _ = await client.post(client.message("subscriptions/listen", params, **WITH_TASKS))
    assert (status, body["error"]["code"]) == (400, -32602)


async def test_listen_without_accepting_a_stream_is_refused(make_facade):
    client = await stateless_facade(make_facade)
    message = client.message("subscriptions/listen", {"notifications": {"toolsListChanged": True}})
    status, body, _ = await client.post(message, Accept="application/json")
    assert (status, body["error"]["code"]) == (400, -32600)


async def test_task_status_reaches_watchers_on_another_replica_and_refused_ids_are_left_out(make_facade):
    sender = await make_facade()
    watcher = await make_facade()
    asked: list[tuple[str, str | None]] = []

    async def may_watch(task_id: str, principal: str | None) -> bool:
        asked.append((task_id, principal))
        return task_id != "not-yours"

    listeners_of(watcher).may_watch_task = may_watch
    client = StatelessMcpHttp(watcher.client)
    subscription_id, events, agreed = await acknowledged(
        client, {"taskIds": ["t-1", "not-yours", "t-2"], "toolsListChanged": True}, **WITH_TASKS
    )
    assert agreed == {"toolsListChanged": True, "taskIds": ["t-1", "t-2"]}
    assert asked == [("t-1", None), ("not-yours", None), ("t-2", None)]

    task = {"taskId": "t-2", "status": "working", "createdAt": "2026-12-01T10:00:00Z", "ttlMs": 60000}
    await listeners_of(sender).to_task_watchers("not-yours", {**task, "taskId": "not-yours"})
    await listeners_of(sender).to_task_watchers("t-3", {**task, "taskId": "t-3"})
    await listeners_of(sender).to_task_watchers("t-2", task)
    status = await events.next()
    assert status is not None and status["method"] == "notifications/tasks", status
    assert status["params"] == {**task, "_meta": {SUBSCRIPTION_ID: subscription_id}}
    assert await events.silent_for(0.5)  # nothing about the refused or the unwatched task
    events.close()


async def test_a_stopping_facade_ends_listen_streams_with_their_closing_result(make_facade):
    facade = await make_facade()
    subscription_id, events, _ = await acknowledged(
        StatelessMcpHttp(facade.client), {"toolsListChanged": True}
    )
    await facade.client.server.close()
    closing = await events.next()
    assert closing == {
        "jsonrpc": "2.0",
        "id": subscription_id,
        "result": {"resultType": "complete", "_meta": closing["result"]["_meta"]},
    }
    assert closing["result"]["_meta"][SUBSCRIPTION_ID] == subscription_id
    validate_server_result("subscriptions/listen", "2026-07-28", closing["result"])
    assert await events.next() is None
    events.close()


async def test_a_listen_stream_sends_keep_alive_comments(make_facade):
    client = await stateless_facade(make_facade, sse_keepalive_seconds=0.1)
    _, events, _ = await acknowledged(client, {"toolsListChanged": True})
    assert await events.silent_for(0.5)
    assert "keep-alive" in events.comments
    events.close()


async def test_a_closed_listen_stream_is_let_go(make_facade):
    facade = await make_facade()
    _, events, _ = await acknowledged(StatelessMcpHttp(facade.client), {"toolsListChanged": True})
    assert listeners_of(facade).open_streams == 1
    events.close()
    await eventually(lambda: listeners_of(facade).open_streams == 0, "the closed stream is still held")


async def test_a_subscription_that_falls_too_far_behind_is_ended_with_an_error(redis):
    queue = QueueClient(redis)
    listeners = Listeners(queue, ToolListChanges(Catalog(redis)), max_backlog=5)

    class StuckSink:
        """A client that reads nothing: every write waits."""

        def __init__(self) -> None:
            self.sent: list[dict[str, Any]] = []
            self.release = asyncio.Event()

        async def send(self, message: dict[str, Any]) -> None:
            self.sent.append(message)
            await self.release.wait()

    sink = StuckSink()
    subscription = Subscription(id=7, task_ids=("t-1",), asked_tasks=True)
    listening = asyncio.create_task(listeners.listen(subscription, None, sink))
    await eventually(lambda: sink.sent, "no acknowledgement was sent")
    for step in range(6):
        await listeners.to_task_watchers("t-1", {"taskId": "t-1", "status": "working", "step": step})
    sink.release.set()
    with pytest.raises(JsonRpcError) as failure:
        await asyncio.wait_for(listening, 2)
    assert (failure.value.code, failure.value.id) == (-32603, 7)
    assert [message["method"] for message in sink.sent] == ["notifications/subscriptions/acknowledged"]
    assert listeners.open_streams == 0


async def test_a_task_notification_that_is_not_json_is_dropped_and_the_stream_goes_on(make_facade):
    facade = await make_facade()
    listeners_of(facade).may_watch_task = anyone_may_watch  # a made-up task id, watched all the same
    subscription_id, events, _ = await acknowledged(
        StatelessMcpHttp(facade.client), {"taskIds": ["t-1"]}, **WITH_TASKS
    )
    await listeners_of(facade).to_task_watchers("t-1", {"status": "working", "progress": float("nan")})
    await listeners_of(facade).to_task_watchers("t-1", {"status": "completed"})
    status = await events.next()
    assert status is not None
    assert status["params"] == {
        "status": "completed",
        "taskId": "t-1",
        "_meta": {SUBSCRIPTION_ID: subscription_id},
    }
    events.close()


def test_a_filter_keeps_at_most_a_hundred_task_ids_each_of_a_sane_length():
    ids = ["", "x" * 257, *(f"t-{n}" for n in range(150)), "t-0"]
    request = Request(id=1, method="subscriptions/listen", params={"notifications": {"taskIds": ids}})
    envelope = read_envelope(
        {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", **WITH_TASKS}}, 1
    )
    subscription = read_subscription(request, envelope)
    assert subscription.task_ids == tuple(f"t-{n}" for n in range(100))
    assert subscription.asked_tasks and not subscription.tools_list_changed


# --- the handshake era: the GET stream --------------------------------------------------------


async def test_the_get_stream_tells_its_session_when_a_new_tool_comes(make_facade, start_worker):
    client = await open_session(make_facade)
    events = await get_stream(client)
    await start_worker([test_tools.doubled])
    changed = await events.next(seconds=2)
    assert changed == {"jsonrpc": "2.0", "method": CHANGED}
    events.close()


async def test_the_get_stream_needs_a_live_session_of_the_same_principal(make_facade):
    alice = await make_facade(tokens=("alice:A-SECRET", "bob:B-SECRET"))
    headers = {"Authorization": "Bearer A-SECRET"}
    status, body, answer = await alice.post(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t"}},
        },
        session=False,
        headers=headers,
    )
    assert status == 200, body
    session = answer["Mcp-Session-Id"]
    sse = {"Accept": "text/event-stream"}
    without = await alice.client.get("/mcp", headers={**sse, **headers})
    unknown = await alice.client.get("/mcp", headers={**sse, **headers, "Mcp-Session-Id": "no-such-session"})
    bobs = await alice.client.get(
        "/mcp", headers={**sse, "Authorization": "Bearer B-SECRET", "Mcp-Session-Id": session}
    )
    nobody = await alice.client.get("/mcp", headers={**sse, "Mcp-Session-Id": session})
    assert [without.status, unknown.status, bobs.status, nobody.status] == [400, 404, 404, 401]
    assert (await bobs.json())["error"]["code"] == -32001
    own = await alice.client.get("/mcp", headers={**sse, **headers, "Mcp-Session-Id": session})
    assert (own.status, own.headers["Content-Type"]) == (200, "text/event-stream")
    own.close()


async def test_a_get_that_does_not_accept_a_stream_is_406(make_facade):
    client = await open_session(make_facade)
    response = await client.client.get("/mcp", headers={**client.headers(), "Accept": "application/json"})
    assert response.status == 406


async def test_delete_through_another_replica_ends_the_sessions_get_stream(make_facade):
    here = await open_session(make_facade)
    there = await make_facade()
    there.session_id, there.protocol_version = here.session_id, here.protocol_version
    events = await get_stream(there)
    response = await here.client.delete("/mcp", headers=here.headers())
    assert response.status == 200
    assert await events.next(seconds=2) is None  # the stream ended
    events.close()


async def test_a_newer_get_stream_of_a_session_ends_the_older_on_another_replica(make_facade):
    here = await open_session(make_facade)
    there = await make_facade()
    there.session_id, there.protocol_version = here.session_id, here.protocol_version
    older = await get_stream(here)
    newer = await get_stream(there)
    assert await older.next(seconds=2) is None
    assert await newer.silent_for(0.3)  # the newer one stays open
    older.close()
    newer.close()


async def test_the_get_stream_sends_keep_alive_comments(make_facade):
    client = await open_session(make_facade, sse_keepalive_seconds=0.1)
    events = await get_stream(client)
    assert await events.silent_for(0.5)
    assert "keep-alive" in events.comments
    events.close()


async def test_to_session_reaches_the_get_stream_on_another_replica_naming_no_session_id_on_redis(
    make_facade, redis
):
    here = await open_session(make_facade)
    there = await make_facade()
    there.session_id, there.protocol_version = here.session_id, here.protocol_version
    assert here.session_id is not None
    events = await get_stream(there)
    pubsub = redis.pubsub()
    await pubsub.subscribe(contract.NOTIFY_CHANNEL)
    status = notification("notifications/tasks/status", {"taskId": "t-9", "status": "completed"})

    await listeners_of(here).to_session(here.session_id, status)

    assert await events.next() == status
    published = [
        message async for message in _messages(pubsub) if message["type"] == "message"
    ]  # what crossed Redis
    assert published and all(here.session_id.encode() not in message["data"] for message in published)
    await pubsub.aclose()
    events.close()


async def test_notifications_with_redis_away_are_logged_not_raised(caplog: pytest.LogCaptureFixture):
    unreachable = connect_redis(f"redis://127.0.0.1:{free_port()}/0")
    listeners = Listeners(QueueClient(unreachable), ToolListChanges(Catalog(unreachable)))
    with caplog.at_level(logging.WARNING, logger="toolq.listeners"):
        await listeners.to_session("some-session", notification("notifications/message", {}))
        await listeners.to_task_watchers("t-1", {"status": "working"})
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2 and all("could not pass" in warning for warning in warnings), warnings
    await unreachable.aclose()


async def test_a_stopping_facade_ends_get_streams(make_facade):
    client = await open_session(make_facade)
    events = await get_stream(client)
    await client.client.server.close()
    assert await events.next() is None
    events.close()


async def _messages(pubsub: Any, seconds: float = 0.3):  # type: ignore[no-untyped-def]
    """What a pubsub received within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        message = await pubsub.get_message(timeout=0.05)
        if message is not None:
            yield message
