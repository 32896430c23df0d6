"""The tool registry: tools/list is what live workers serve, and it follows them."""

from __future__ import annotations

import asyncio
import time

import tools_for_tests as test_tools
from conftest import FAST_FACADE, stop_worker
from mcp_http import StatelessMcpHttp
from real_processes import free_port

from facade.app import connect_redis, create_app
from workers import contract


async def tool_names(client) -> list[str]:
    return [t["name"] for t in (await client.rpc("tools/list"))["result"]["tools"]]


async def test_with_no_worker_no_tools_are_listed(make_facade):
    client = await make_facade()
    await client.initialize()
    assert await tool_names(client) == []


async def test_a_worker_started_later_adds_its_tools_without_a_restart(make_facade, start_worker):
    await start_worker(["add"])
    client = await make_facade()
    await client.initialize()
    assert await tool_names(client) == ["add"]
    await start_worker(["weather"])
    assert await tool_names(client) == ["add", "weather"]


async def test_a_tool_whose_last_worker_left_fails_fast(make_facade, start_worker):
    await start_worker(["add"])
    leaving = await start_worker([test_tools.patient])
    client = await make_facade()
    await client.initialize()
    assert await tool_names(client) == ["add", "patient"]
    await stop_worker(leaving)
    assert await tool_names(client) == ["add"]
    started = time.monotonic()
    result = await client.call("patient", {"seconds": 0})
    assert time.monotonic() - started < 0.5
    assert result["isError"] is True
    assert "has no live worker" in result["content"][0]["text"]


async def test_a_worker_whose_heartbeat_lapsed_is_not_listed(make_facade, start_worker, redis):
    worker = await start_worker([test_tools.refuse])
    client = await make_facade()
    await client.initialize()
    assert "refuse" in await tool_names(client)
    assert worker.heartbeat is not None
    worker.heartbeat.cancel()  # as a frozen process's heartbeat stops
    await redis.zadd(contract.WORKERS_LIVE, {worker.settings.worker_id: int(time.time() * 1000) - 1})
    await asyncio.sleep(1.1)  # the catalog's cache lives one second
    assert "refuse" not in await tool_names(client)


async def test_workers_of_one_pool_share_a_queue(start_worker):
    first = await start_worker(["add"], pool="math")
    second = await start_worker(["add"], pool="math")
    assert first.queue_name == second.queue_name == "toolq:queue:math"


async def test_calls_spread_over_pools_serving_the_same_tool(make_facade, start_worker):
    await start_worker(["add"], pool="blue", worker_id="blue-1")
    await start_worker(["add"], pool="green", worker_id="green-1")
    client = await make_facade()
    await client.initialize()
    workers = {(await client.call("add", {"a": i, "b": 0}))["_meta"]["toolq/worker"] for i in range(40)}
    assert workers == {"blue-1", "green-1"}


async def test_the_registry_entry_describes_the_worker(start_worker, redis):
    worker = await start_worker(["add"], worker_id="described")
    info = contract.loads(await redis.get(contract.worker_key("described")))
    assert info["queue"] == worker.queue_name
    assert [spec["name"] for spec in info["tools"]] == ["add"]
    assert info["tools"][0]["x-toolq"] == {"timeout": 30.0, "idempotent": True, "task": "optional"}
    assert await redis.sismember(contract.TOOLS_EVER_SERVED, "add")


async def test_without_redis_tools_list_is_unavailable_and_says_not_where_redis_is(aiohttp_client):
    unreachable = connect_redis(f"redis://127.0.0.1:{free_port()}/0")
    app = create_app(FAST_FACADE, redis=unreachable)
    client = StatelessMcpHttp(await aiohttp_client(app))
    status, body, _ = await client.post(client.message("tools/list"))
    assert (status, body["error"]["code"]) == (503, -32603)
    assert "Redis" in body["error"]["message"]
    assert "127.0.0.1" not in body["error"]["message"]
    response = await client.client.get("/readyz")
    assert response.status == 503
    assert "127.0.0.1" not in await response.text()
    await unreachable.aclose()
