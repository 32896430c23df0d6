"""Overload refused at once, rate limits and failed-authentication limits, shared through Redis."""

from __future__ import annotations

import asyncio

import tools_for_tests as test_tools
from mcp_http import McpHttp, StatelessMcpHttp


def slow_call(seconds: float) -> dict:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "patient", "arguments": {"seconds": seconds}},
    }


async def test_calls_beyond_what_a_pool_can_hold_are_refused_at_once(make_facade, start_worker, redis):
    await start_worker([test_tools.patient], concurrency=2)
    client: McpHttp = await make_facade(backlog_per_slot=2)  # 2 slots: at most 4 queued or running
    await client.initialize()
    answers = await asyncio.gather(*(client.post(slow_call(0.5)) for _ in range(10)))
    done = [body for status, body, _ in answers if status == 200 and "result" in body]
    refused = [(status, body, headers) for status, body, headers in answers if status == 503]
    assert len(done) == 4 and len(refused) == 6, answers
    assert all(body["result"]["structuredContent"] == {"slept": 0.5} for body in done)
    for _, body, headers in refused:
        assert body["error"]["code"] == -31001
        assert "overloaded" in body["error"]["message"]
        assert int(headers["Retry-After"]) >= 1
        assert body["error"]["data"]["retryAfterSeconds"] == int(headers["Retry-After"])
    assert await redis.keys("arq:job:*") == []  # refused calls left nothing behind


async def test_a_pool_holds_what_it_can_finish_within_the_deadline_at_the_tool_s_pace(
    make_facade, start_worker
):
    await start_worker([test_tools.patient], concurrency=1)
    # A 2 s deadline and a tool that takes 0.5 s: one slot finishes 4 calls in time.
    client: McpHttp = await make_facade(max_call_seconds=2.0, backlog_per_slot=100)
    await client.initialize()
    assert (await client.call("patient", {"seconds": 0.5}))["isError"] is False  # the pace is learnt
    answers = await asyncio.gather(*(client.post(slow_call(0.5)) for _ in range(8)))
    statuses = sorted(status for status, _, _ in answers)
    assert statuses.count(503) >= 3, answers
    retry_after = [int(headers["Retry-After"]) for status, _, headers in answers if status == 503]
    assert max(retry_after) >= 1


async def test_the_stateless_era_and_the_seed_format_are_refused_the_same_way(make_facade, start_worker):
    await start_worker([test_tools.patient], concurrency=1)
    handshake: McpHttp = await make_facade(backlog_per_slot=1)
    stateless = StatelessMcpHttp(handshake.client)
    message = stateless.message("tools/call", {"name": "patient", "arguments": {"seconds": 0.5}})
    first = asyncio.create_task(stateless.post(message))
    await asyncio.sleep(0.1)
    status, body, headers = await stateless.post(
        stateless.message("tools/call", {"name": "patient", "arguments": {"seconds": 0.5}})
    )
    assert (status, body["error"]["code"]) == (503, -31001)
    assert "Retry-After" in headers
    response = await handshake.client.post("/mcp", json={"tool": "patient", "params": {"seconds": 0.1}})
    assert response.status == 503 and "Retry-After" in response.headers
    assert (await response.json())["retry_after"] >= 1
    assert (await first)[0] == 200


async def test_a_principal_over_its_rate_is_refused_and_others_are_not(make_facade, start_worker):
    await start_worker(["add"])
    client: McpHttp = await make_facade(
        tokens=("alice:a-secret", "bob:b-secret"), principal_calls_per_second=0.5, principal_burst=2
    )
    statuses = {}
    for who in ("alice", "bob"):
        client.session_id = None
        bearer = {"Authorization": f"Bearer {who[0]}-secret"}
        _, _, headers = await client.post(
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}},
            session=False,
            headers=bearer,
        )
        session = {
            "Mcp-Session-Id": headers["Mcp-Session-Id"],
            "MCP-Protocol-Version": "2025-11-25",
            **bearer,
        }
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": 1, "b": 1}},
        }
        answers = [
            await client.post(call, session=False, headers=session) for _ in range(3 if who == "alice" else 1)
        ]
        statuses[who] = [(status, body.get("error", {}).get("code")) for status, body, _ in answers]
        if who == "alice":
            assert answers[2][2]["Retry-After"] == "2"
    assert statuses == {"alice": [(200, None), (200, None), (429, -31002)], "bob": [(200, None)]}


async def test_a_tool_over_its_rate_is_refused_for_everyone(make_facade, start_worker):
    await start_worker(["add", "weather"])
    client: McpHttp = await make_facade(tool_calls_per_second=1, tool_burst=1)
    await client.initialize()
    assert (await client.call("add", {"a": 1, "b": 1}))["isError"] is False
    status, body, headers = await client.post(
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": 1, "b": 1}},
        }
    )
    assert (status, body["error"]["code"]) == (429, -31002)
    assert "'add'" in body["error"]["message"] and headers["Retry-After"] == "1"


async def test_an_address_failing_authentication_too_often_is_refused_for_a_while(make_facade):
    client: McpHttp = await make_facade(tokens=("good-secret",), auth_failures_per_minute=3)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    statuses = [
        (await client.post(ping, session=False, headers={"Authorization": f"Bearer wrong-{i}"}))[0]
        for i in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]
    status, body, headers = await client.post(
        ping, session=False, headers={"Authorization": "Bearer good-secret"}
    )
    assert status == 429  # not even the right token is looked at until the window ends
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert body["error"] == "too_many_requests"


async def failures_then_good_token(client: McpHttp, failing: str, other: str) -> int:
    """`failing` (an X-Forwarded-For value) sends wrong tokens until refused; the status a
    request from `other` with the right token then gets."""
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    statuses = [
        (
            await client.post(
                ping, session=False, headers={"Authorization": f"Bearer wrong-{i}", **failing_as(failing)}
            )
        )[0]
        for i in range(4)
    ]
    assert statuses[-1] == 429, statuses
    good = {"Authorization": "Bearer good-secret", **failing_as(other)}
    initialize = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25"},
    }
    return (await client.post(initialize, session=False, headers=good))[0]


def failing_as(forwarded_for: str) -> dict[str, str]:
    return {"X-Forwarded-For": forwarded_for} if forwarded_for else {}


async def test_behind_a_trusted_proxy_failures_count_per_client_not_for_the_proxy(make_facade):
    # The test client connects from 127.0.0.1: here it plays the ingress every client comes through.
    behind = await make_facade(
        tokens=("good-secret",), auth_failures_per_minute=3, trusted_proxies=("127.0.0.1",)
    )
    assert await failures_then_good_token(behind, "203.0.113.5", "203.0.113.9") == 200
    # What a client writes itself is on the left: rotating it does not escape its own count.
    assert (
        await failures_then_good_token(behind, "198.51.100.1, 203.0.113.6", "198.51.100.2, 203.0.113.6")
        == 429
    )


async def test_without_trusting_the_peer_its_forwarded_for_is_ignored(make_facade):
    # The peer (127.0.0.1) is no trusted proxy: X-Forwarded-For could be anything it likes.
    spoofable = await make_facade(
        tokens=("good-secret",), auth_failures_per_minute=3, trusted_proxies=("10.0.0.0/8",)
    )
    assert await failures_then_good_token(spoofable, "203.0.113.5", "203.0.113.9") == 429
    unset = await make_facade(tokens=("good-secret",), auth_failures_per_minute=3)
    assert await failures_then_good_token(unset, "203.0.113.5", "203.0.113.9") == 429
