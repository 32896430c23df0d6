"""The handshake era on /mcp: every status code and JSON-RPC error code the facade gives."""

from __future__ import annotations

import json
import re

from mcp_http import McpHttp


async def test_initialize_negotiates_each_supported_version(make_facade, start_worker):
    await start_worker()
    client = await make_facade()
    for version in ("2025-03-26", "2025-06-18", "2025-11-25"):
        result = await client.initialize(version)
        assert result["protocolVersion"] == version


async def test_initialize_answers_an_unknown_version_with_the_newest(make_facade):
    client = await make_facade()
    result = await client.initialize("1999-01-01")
    assert result["protocolVersion"] == "2025-11-25"
    assert result["capabilities"]["tools"] == {"listChanged": True}
    assert set(result["capabilities"]) == {"tools", "logging", "tasks"}
    assert result["serverInfo"]["name"] == "toolq"


async def test_session_id_is_visible_ascii_and_fresh(make_facade):
    client = await make_facade()
    await client.initialize()
    first = client.session_id
    await client.initialize()
    assert first != client.session_id
    assert re.fullmatch(r"[\x21-\x7e]{20,}", client.session_id or "")


async def test_notifications_get_202_with_an_empty_body(mcp: McpHttp):
    for method in ("notifications/initialized", "notifications/roots/list_changed", "notifications/whatever"):
        status, body, _ = await mcp.post({"jsonrpc": "2.0", "method": method})
        assert (status, body) == (202, None)


async def test_a_client_response_gets_202(mcp: McpHttp):
    status, body, _ = await mcp.post({"jsonrpc": "2.0", "id": "s-1", "result": {}})
    assert (status, body) == (202, None)


async def test_ping_answers_an_empty_result(mcp: McpHttp):
    assert (await mcp.rpc("ping"))["result"] == {}


async def test_tools_list_is_sorted_and_carries_schemas(mcp: McpHttp):
    tools = (await mcp.rpc("tools/list"))["result"]["tools"]
    names = [t["name"] for t in tools]
    assert {"add", "weather"} <= set(names)
    assert names == sorted(names)
    add = tools[names.index("add")]
    assert add["inputSchema"]["required"] == ["a", "b"]
    assert add["outputSchema"]["properties"]["sum"] == {"type": "number"}
    assert "x-toolq" not in add


async def test_tools_list_paginates_with_an_opaque_cursor(make_facade, start_worker):
    await start_worker(["add", "weather"])
    client = await make_facade(page_size=1)
    await client.initialize()
    first = (await client.rpc("tools/list"))["result"]
    assert [t["name"] for t in first["tools"]] == ["add"]
    second = (await client.rpc("tools/list", {"cursor": first["nextCursor"]}))["result"]
    assert [t["name"] for t in second["tools"]] == ["weather"]
    assert "nextCursor" not in second


async def test_an_invalid_cursor_is_invalid_params(mcp: McpHttp):
    for cursor in ("not-a-cursor", "", 42, "eyJ4IjogMX0"):
        body = await mcp.rpc("tools/list", {"cursor": cursor})
        assert body["error"]["code"] == -32602, cursor


async def test_tools_call_add_returns_structured_content_and_text(mcp: McpHttp):
    result = await mcp.call("add", {"a": 15, "b": 27})
    assert result["isError"] is False
    assert result["structuredContent"] == {"a": 15, "b": 27, "sum": 42}
    assert json.loads(result["content"][0]["text"]) == {"a": 15, "b": 27, "sum": 42}
    assert result["_meta"]["toolq/worker"].startswith("test-worker-")


async def test_unknown_tool_is_invalid_params(mcp: McpHttp):
    body = await mcp.rpc("tools/call", {"name": "nope", "arguments": {}})
    assert body["error"]["code"] == -32602
    assert "nope" in body["error"]["message"]


async def test_tools_call_without_a_name_is_invalid_params(mcp: McpHttp):
    for params in ({}, {"name": 3}, {"name": "add", "arguments": [1, 2]}):
        body = await mcp.rpc("tools/call", params)
        assert body["error"]["code"] == -32602, params


async def test_unknown_method_is_method_not_found(mcp: McpHttp):
    body = await mcp.rpc("resources/list")
    assert body["error"]["code"] == -32601


async def test_a_body_that_is_not_json_is_a_parse_error(mcp: McpHttp):
    status, body, _ = await mcp.post(b"{not json")
    assert status == 400
    assert body["error"]["code"] == -32700
    assert body["id"] is None


async def test_a_batch_is_an_invalid_request(mcp: McpHttp):
    status, body, _ = await mcp.post([{"jsonrpc": "2.0", "id": 1, "method": "ping"}])
    assert (status, body["error"]["code"]) == (400, -32600)


async def test_malformed_messages_are_invalid_requests(mcp: McpHttp):
    for payload in (
        {"id": 1, "method": "ping"},  # no "jsonrpc"
        {"jsonrpc": "1.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": 1},  # no method
        {"jsonrpc": "2.0", "id": True, "method": "ping"},
        {"jsonrpc": "2.0", "id": 1.5, "method": "ping"},
        {"jsonrpc": "2.0", "id": 1, "method": 7},
        {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": [1]},
        "a string",
        42,
    ):
        status, body, _ = await mcp.post(json.dumps(payload))
        assert (status, body["error"]["code"]) == (400, -32600), payload


async def test_the_server_keeps_serving_after_bad_input(mcp: McpHttp):
    await mcp.post(b"\xff\xfe garbage")
    await mcp.post([1, 2, 3])
    await mcp.post({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add"}})
    assert (await mcp.call("add", {"a": 1, "b": 2}))["structuredContent"]["sum"] == 3


async def test_a_request_without_a_session_is_400(mcp: McpHttp):
    status, body, _ = await mcp.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, session=False)
    assert status == 400
    assert "Mcp-Session-Id" in body["error"]["message"]


async def test_an_unknown_session_is_404(mcp: McpHttp):
    status, body, _ = await mcp.post(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers={"Mcp-Session-Id": "no-such-session"}
    )
    assert status == 404
    assert body["error"]["code"] == -32001


async def test_delete_ends_the_session(mcp: McpHttp):
    response = await mcp.client.delete("/mcp", headers=mcp.headers())
    assert response.status == 200
    status, _, _ = await mcp.post({"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert status == 404
    again = await mcp.client.delete("/mcp", headers=mcp.headers())
    assert again.status == 404


async def test_delete_without_a_session_is_400(mcp: McpHttp):
    response = await mcp.client.delete("/mcp")
    assert response.status == 400


async def test_other_methods_are_405_allowing_get_post_and_delete(mcp: McpHttp):
    for method in ("PUT", "PATCH"):
        response = await mcp.client.request(method, "/mcp", headers=mcp.headers())
        assert response.status == 405, method
        assert response.headers["Allow"] == "GET, POST, DELETE"


async def test_handshake_version_headers_are_accepted(mcp: McpHttp):
    for version in ("2025-03-26", "2025-06-18", "2025-11-25", "2024-11-05"):
        body = await mcp.rpc("ping", headers={"MCP-Protocol-Version": version})
        assert body["result"] == {}


async def test_a_body_over_the_limit_is_413(make_facade):
    client = await make_facade(max_body_bytes=1024)
    status, body, _ = await client.post({"jsonrpc": "2.0", "id": 1, "method": "ping", "pad": "x" * 4096})
    assert status == 413
    assert body["error"]["code"] == -32600


async def test_a_non_json_content_type_is_415(mcp: McpHttp):
    status, _, _ = await mcp.post("ping", headers={"Content-Type": "text/plain"})
    assert status == 415


async def test_a_client_that_takes_only_sse_gets_its_answer_as_one_event(mcp: McpHttp):
    ping = {"jsonrpc": "2.0", "id": 5, "method": "ping"}
    status, body, headers = await mcp.post(ping, headers={"Accept": "text/event-stream"})
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert body == 'event: message\ndata: {"jsonrpc":"2.0","id":5,"result":{}}\n\n'


async def test_an_accept_header_without_json_or_sse_is_406(mcp: McpHttp):
    status, _, _ = await mcp.post(
        {"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"Accept": "text/html"}
    )
    assert status == 406


async def test_sessions_slide_their_ttl_in_redis(make_facade, redis):
    mcp = await make_facade(session_recheck_seconds=0)
    await mcp.initialize()
    (key,) = await redis.keys("toolq:session:*")
    await redis.expire(key, 5)
    await mcp.rpc("ping")
    assert await redis.ttl(key) > 3000


async def test_redis_keys_do_not_give_session_ids_away(make_facade, redis):
    mcp = await make_facade()
    await mcp.initialize()
    keys = [key.decode() for key in await redis.keys("*")]
    assert not [key for key in keys if mcp.session_id in key]
    assert any(key.startswith("toolq:session:") for key in keys)


async def test_any_facade_process_serves_any_session(make_facade, start_worker):
    await start_worker()
    first = await make_facade()
    second = await make_facade()
    await first.initialize()
    second.session_id, second.protocol_version = first.session_id, first.protocol_version
    assert (await second.call("add", {"a": 2, "b": 3}))["structuredContent"]["sum"] == 5


async def test_a_2025_03_26_session_batches_over_http_and_gets_one_json_array(make_facade, start_worker):
    await start_worker(["add"])
    client = await make_facade()
    await client.initialize("2025-03-26")
    batch = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": 1, "b": 2}},
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "ping"},
    ]
    status, body, headers = await client.post(batch)
    assert (status, headers["Content-Type"].split(";")[0]) == (200, "application/json")
    assert [answer["id"] for answer in body] == [1, 2]
    assert body[0]["result"]["structuredContent"]["sum"] == 3
    assert body[1]["result"] == {}
    status, body, _ = await client.post([{"jsonrpc": "2.0", "method": "notifications/initialized"}])
    assert (status, body) == (202, None)
