"""The seed's wire format, {"tool", "params"} on /mcp, kept for the scripts written against it."""

from __future__ import annotations

import tools_for_tests as test_tools
from mcp_http import McpHttp


async def seed(client: McpHttp, payload: object) -> tuple[int, object]:
    status, body, _ = await client.post(payload, session=False, headers={"Accept": "*/*"})
    return status, body


async def test_add_answers_exactly_like_the_seed(mcp: McpHttp):
    response = await mcp.client.post("/mcp", json={"tool": "add", "params": {"a": 15, "b": 27}})
    assert response.status == 200
    assert await response.text() == '{"tool": "add", "result": {"a": 15, "b": 27, "sum": 42}}'


async def test_an_unknown_tool_is_400_with_the_seed_error(mcp: McpHttp):
    assert await seed(mcp, {"tool": "subtract", "params": {}}) == (400, {"error": "Unknown tool"})
    assert await seed(mcp, {"tool": None}) == (400, {"error": "Unknown tool"})


async def test_invalid_params_are_400_and_say_why(mcp: McpHttp):
    status, body = await seed(mcp, {"tool": "add", "params": {"a": "15", "b": 27}})
    assert status == 400
    assert "'15' is not of type 'number'" in body["error"]
    status, body = await seed(mcp, {"tool": "add", "params": [15, 27]})
    assert status == 400


async def test_a_tool_failure_is_422_with_its_message(make_facade, start_worker):
    await start_worker([test_tools.refuse])
    client = await make_facade()
    assert await seed(client, {"tool": "refuse", "params": {"reason": "no way"}}) == (
        422,
        {"tool": "refuse", "error": "no way"},
    )


async def test_the_seed_format_needs_no_session_but_respects_auth(make_facade, start_worker):
    await start_worker()
    client = await make_facade(tokens=("s3cret",))
    status, _ = await seed(client, {"tool": "add", "params": {"a": 1, "b": 1}})
    assert status == 401
    status, body, _ = await client.post(
        {"tool": "add", "params": {"a": 1, "b": 1}}, session=False, headers={"Authorization": "Bearer s3cret"}
    )
    assert (status, body["result"]["sum"]) == (200, 2)
