"""The 2026-07-28 era over HTTP: statuses, headers, SSE and cancellation through a real worker."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
import tools_for_tests as test_tools
from mcp_http import McpHttp, StatelessMcpHttp, sse_messages


@pytest.fixture
async def stateless(make_facade, start_worker) -> StatelessMcpHttp:
    """A facade with one worker serving every tool, spoken to in the stateless era."""
    await start_worker()
    return StatelessMcpHttp((await make_facade()).client)


async def test_discover_answers_200_json_without_a_session(stateless: StatelessMcpHttp):
    status, body, headers = await stateless.post(stateless.message("server/discover"))
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert "Mcp-Session-Id" not in headers
    assert body["result"]["supportedVersions"][0] == "2026-07-28"


async def test_add_through_a_worker_is_a_complete_result(stateless: StatelessMcpHttp):
    result = await stateless.call("add", {"a": 15, "b": 27})
    assert result["resultType"] == "complete"
    assert result["structuredContent"] == {"a": 15, "b": 27, "sum": 42}
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "toolq"
    assert result["_meta"]["toolq/worker"].startswith("test-worker-")


async def test_tools_list_has_the_served_tools_and_caching_hints(stateless: StatelessMcpHttp):
    result = (await stateless.rpc("tools/list"))["result"]
    names = [tool["name"] for tool in result["tools"]]
    assert {"add", "weather"} <= set(names)
    assert names == sorted(names)
    assert result["ttlMs"] == 0 and result["cacheScope"] == "public"


async def test_the_validation_ladder_has_its_http_statuses(stateless: StatelessMcpHttp):
    call = stateless.message("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}})
    cases = [
        (b"{not json", {}, 400, -32700),
        (json.dumps([call]), {}, 400, -32600),
        ({**call, "params": {"name": "add"}}, {}, 400, -32602),  # no envelope
        (call, {"Mcp-Method": "tools/list"}, 400, -32020),
        (call, {"Mcp-Name": "weather"}, 400, -32020),
        (stateless.message("initialize", {}), {}, 404, -32601),
        (stateless.message("ping"), {}, 404, -32601),
        (stateless.message("tools/call", {"name": "nope", "arguments": {}}), {}, 400, -32602),
    ]
    for payload, headers, status, code in cases:
        got_status, body, _ = await stateless.post(payload, **headers)
        assert (got_status, body["error"]["code"]) == (status, code), (payload, headers)
    future = stateless.message("server/discover", **{"io.modelcontextprotocol/protocolVersion": "2099-01-01"})
    got_status, body, _ = await stateless.post(future, **{"MCP-Protocol-Version": "2099-01-01"})
    assert (got_status, body["error"]["code"]) == (400, -32022)
    assert "2025-11-25" in body["error"]["data"]["supported"]


async def test_header_names_are_case_insensitive_and_values_are_not(stateless: StatelessMcpHttp):
    message = stateless.message("tools/list")
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    headers |= {"mcp-protocol-version": "2026-07-28", "MCP-METHOD": "tools/list"}
    response = await stateless.client.post("/mcp", data=json.dumps(message), headers=headers)
    assert response.status == 200
    status, body, _ = await stateless.post(message, **{"Mcp-Method": "TOOLS/LIST"})
    assert (status, body["error"]["code"]) == (400, -32020)


async def test_nesting_too_deep_or_integers_too_long_are_parse_errors_not_crashes(
    stateless: StatelessMcpHttp,
):
    for body in ("[" * 100_000 + "]" * 100_000, '{"n": ' + "9" * 5000 + "}"):
        status, answer, _ = await stateless.post(body)
        assert (status, answer["error"]["code"]) == (400, -32700)
    assert (await stateless.call("add", {"a": 1, "b": 1}))["structuredContent"]["sum"] == 2


async def test_notifications_get_202_and_get_delete_get_405_allowing_post(stateless: StatelessMcpHttp):
    status, body, _ = await stateless.post({"jsonrpc": "2.0", "method": "notifications/cancelled"})
    assert (status, body) == (202, None)
    for method in ("GET", "DELETE"):
        response = await stateless.client.request(
            method, "/mcp", headers={"MCP-Protocol-Version": "2026-07-28"}
        )
        assert (response.status, response.headers["Allow"]) == (405, "POST")


async def test_a_session_id_sent_in_the_stateless_era_is_ignored(stateless: StatelessMcpHttp):
    status, body, headers = await stateless.post(
        stateless.message("tools/list"), **{"Mcp-Session-Id": "stale"}
    )
    assert status == 200 and "result" in body
    assert "Mcp-Session-Id" not in headers


async def test_progress_travels_on_the_request_s_own_sse_stream(make_facade, start_worker):
    await start_worker([test_tools.steps])
    client = StatelessMcpHttp((await make_facade()).client)
    message = client.message("tools/call", {"name": "steps", "arguments": {"count": 3}}, progressToken="p")
    response = await client.client.post("/mcp", json=message, headers=client.headers(message))
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["X-Accel-Buffering"] == "no"
    events = sse_messages(await response.text())
    assert [e["params"]["progress"] for e in events[:-1]] == [1, 2, 3]
    assert all(e["params"]["progressToken"] == "p" for e in events[:-1])
    assert events[-1]["id"] == message["id"]
    assert events[-1]["result"]["resultType"] == "complete"


async def test_closing_the_response_cancels_the_worker_s_job(make_facade, start_worker):
    worker = await start_worker([test_tools.patient])
    client = StatelessMcpHttp((await make_facade()).client)
    message = client.message("tools/call", {"name": "patient", "arguments": {"seconds": 20}})
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await client.client.post(
            "/mcp", json=message, headers=client.headers(message), timeout=aiohttp.ClientTimeout(total=0.5)
        )
    assert worker.job_tasks or worker.jobs_failed, "the job never started"
    while worker.job_tasks:
        assert time.monotonic() - started < 3, "the job kept running after its caller left"
        await asyncio.sleep(0.02)


async def test_a_long_silent_call_switches_to_sse_and_keeps_the_stream_alive(make_facade, start_worker):
    await start_worker([test_tools.patient])
    client = StatelessMcpHttp((await make_facade(sse_keepalive_seconds=0.1)).client)
    message = client.message("tools/call", {"name": "patient", "arguments": {"seconds": 0.35}})
    response = await client.client.post("/mcp", json=message, headers=client.headers(message))
    text = await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert text.count(": keep-alive") >= 2
    assert sse_messages(text)[-1]["result"]["structuredContent"] == {"slept": 0.35}


async def test_a_client_that_takes_only_json_never_gets_a_stream(make_facade, start_worker):
    await start_worker([test_tools.patient])
    client = StatelessMcpHttp((await make_facade(sse_keepalive_seconds=0.1)).client)
    message = client.message(
        "tools/call", {"name": "patient", "arguments": {"seconds": 0.3}}, progressToken=1
    )
    status, body, headers = await client.post(message, Accept="application/json")
    assert (status, headers["Content-Type"].split(";")[0]) == (200, "application/json")
    assert body["result"]["structuredContent"] == {"slept": 0.3}


async def test_both_eras_on_one_facade(make_facade, start_worker):
    await start_worker(["add"])
    handshake: McpHttp = await make_facade()
    await handshake.initialize()
    stateless = StatelessMcpHttp(handshake.client)
    assert (await handshake.call("add", {"a": 1, "b": 2}))["structuredContent"]["sum"] == 3
    assert (await stateless.call("add", {"a": 2, "b": 2}))["structuredContent"]["sum"] == 4
    assert (await handshake.call("add", {"a": 3, "b": 3}))["structuredContent"]["sum"] == 6


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"


async def take_queued_job(redis) -> dict:
    """The arguments of the one job waiting in Redis, removing it."""
    for _ in range(200):
        keys = await redis.keys("arq:job:*")
        if keys:
            (key,) = keys
            job = json.loads(await redis.get(key))["a"][0]
            await redis.delete(key)
            return job  # type: ignore[no-any-return]
        await asyncio.sleep(0.01)
    raise AssertionError("no job was queued")


async def test_the_request_s_trace_context_travels_in_the_job_in_both_eras(make_facade, start_worker, redis):
    worker = await start_worker([test_tools.patient])
    worker.allow_pick_jobs = False  # the job stays in Redis to be read
    handshake: McpHttp = await make_facade(call_grace_seconds=0.2)
    await handshake.initialize()
    stateless = StatelessMcpHttp(handshake.client)
    arguments = {"name": "patient", "arguments": {"seconds": 0}}
    legacy = {"jsonrpc": "2.0", "id": 7, "method": "tools/call"}
    legacy["params"] = {**arguments, "_meta": {"traceparent": TRACEPARENT}}
    for call in (
        stateless.post(stateless.message("tools/call", arguments, traceparent=TRACEPARENT)),
        handshake.post(legacy),
    ):
        pending = asyncio.create_task(call)
        assert (await take_queued_job(redis))["traceparent"] == TRACEPARENT
        pending.cancel()
    pending = asyncio.create_task(
        stateless.post(stateless.message("tools/call", arguments, traceparent="junk"))
    )
    assert "traceparent" not in await take_queued_job(redis)
    pending.cancel()
