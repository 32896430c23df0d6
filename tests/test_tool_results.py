"""What tools return (data, content blocks, both) and log, as callers in both eras receive it."""

from __future__ import annotations

import asyncio
import base64
from typing import Annotated

import pytest
import result_tools
from mcp_http import StatelessMcpHttp, sse_messages
from mcp_types.methods import validate_server_result
from pydantic import Field

from facade.queue_client import QueueClient
from workers.content import EmbeddedResource
from workers.definition import tool

RESULT_TOOLS = [
    result_tools.shout,
    result_tools.picture,
    result_tools.gallery,
    result_tools.summary,
    result_tools.not_content,
    result_tools.chatty,
]


@pytest.fixture
async def both_eras(make_facade, start_worker):
    await start_worker(RESULT_TOOLS)
    handshake = await make_facade()
    await handshake.initialize()
    return handshake, StatelessMcpHttp(handshake.client)


async def test_text_becomes_one_text_block_without_structured_content(both_eras):
    for client in both_eras:
        result = await client.call("shout", {"text": "hi"})
        assert result["content"] == [{"type": "text", "text": "HI"}]
        assert "structuredContent" not in result
        assert result["isError"] is False


async def test_every_kind_of_block_arrives_as_mcp_content(both_eras):
    handshake, _ = both_eras
    result = await handshake.call("gallery")
    validate_server_result("tools/call", "2025-11-25", result)
    assert [block["type"] for block in result["content"]] == [
        "text",
        "image",
        "audio",
        "resource_link",
        "resource",
        "text",
    ]
    image, audio, link, embedded = result["content"][1:5]
    assert base64.b64decode(image["data"]) == result_tools.PIXEL
    assert image["mimeType"] == "image/png"
    assert audio["mimeType"] == "audio/wav"
    assert link == {
        "type": "resource_link",
        "uri": "file:///tmp/report.txt",
        "name": "report.txt",
        "mimeType": "text/plain",
    }
    assert embedded["resource"] == {
        "uri": "test://blob",
        "mimeType": "application/octet-stream",
        "blob": "AAE=",
    }


async def test_block_annotations_are_kept(both_eras):
    _, stateless = both_eras
    (image,) = (await stateless.call("picture"))["content"]
    assert image["annotations"] == {"audience": ["user"]}


async def test_a_tool_result_carries_content_and_data(both_eras):
    for client in both_eras:
        result = await client.call("summary", {"text": "one two three"})
        assert result["content"] == [{"type": "text", "text": "3 words"}]
        assert result["structuredContent"] == {"words": 3}


async def test_a_tool_that_returns_no_content_fails_clearly(both_eras):
    handshake, _ = both_eras
    result = await handshake.call("not_content")
    assert result["isError"] is True
    assert "not content" in result["content"][0]["text"]


async def test_listed_schemas_say_their_dialect_and_content_tools_have_no_output_schema(both_eras):
    handshake, _ = both_eras
    tools = {t["name"]: t for t in (await handshake.rpc("tools/list"))["result"]["tools"]}
    assert tools["shout"]["inputSchema"]["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "outputSchema" not in tools["shout"]
    assert "outputSchema" not in tools["gallery"]
    assert tools["summary"]["outputSchema"]["properties"] == {"words": {"type": "integer"}}


async def _call_streamed(client, message: dict, headers: dict) -> list[dict]:
    response = await client.client.post("/mcp", json=message, headers=headers)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return sse_messages(await response.text())


async def test_handshake_logs_start_at_info_and_follow_set_level(both_eras):
    handshake, _ = both_eras
    message = {
        "jsonrpc": "2.0",
        "id": 50,
        "method": "tools/call",
        "params": {"name": "chatty", "arguments": {}},
    }
    events = await _call_streamed(handshake, message, handshake.headers())
    logs = [e["params"] for e in events if e.get("method") == "notifications/message"]
    assert logs == [
        {"level": "info", "data": "found it", "logger": "search"},
        {"level": "warning", "data": {"detail": "it was small"}},
    ]
    assert (await handshake.rpc("logging/setLevel", {"level": "debug"}))["result"] == {}
    events = await _call_streamed(handshake, {**message, "id": 51}, handshake.headers())
    levels = [e["params"]["level"] for e in events if e.get("method") == "notifications/message"]
    assert levels == ["debug", "info", "warning"]
    assert events[-1]["result"]["content"] == [{"type": "text", "text": "done"}]


async def test_stateless_logs_only_for_a_request_that_names_a_level(both_eras):
    _, stateless = both_eras
    quiet = stateless.message("tools/call", {"name": "chatty", "arguments": {}})
    status, body, headers = await stateless.post(quiet)
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")  # nothing to stream
    assert body["result"]["content"][0]["text"] == "done"
    asked = stateless.message(
        "tools/call", {"name": "chatty", "arguments": {}}, **{"io.modelcontextprotocol/logLevel": "warning"}
    )
    events = await _call_streamed(stateless, asked, stateless.headers(asked))
    assert [e["params"]["level"] for e in events if e.get("method") == "notifications/message"] == ["warning"]


async def test_seed_format_answers_a_content_tool_with_its_blocks(make_facade, start_worker):
    await start_worker([result_tools.shout])
    client = await make_facade()
    response = await client.client.post("/mcp", json={"tool": "shout", "params": {"text": "hey"}})
    assert (response.status, await response.json()) == (
        200,
        {"tool": "shout", "result": {"content": [{"type": "text", "text": "HEY"}]}},
    )


# --- @tool -----------------------------------------------------------------------------------


def test_an_x_mcp_header_argument_is_published_and_checked_at_definition():
    @tool
    async def regional(
        region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})], query: str
    ) -> str:
        """Run a query in a region."""
        return query

    assert regional.input_schema["properties"]["region"]["x-mcp-header"] == "Region"

    with pytest.raises(TypeError, match="string, integer or boolean"):

        @tool
        async def bad_type(
            ratio: Annotated[float, Field(json_schema_extra={"x-mcp-header": "Ratio"})],
        ) -> str:
            """A float cannot be mirrored."""
            return ""

    with pytest.raises(TypeError, match="used twice"):

        @tool
        async def twice(
            a: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Same"})],
            b: Annotated[str, Field(json_schema_extra={"x-mcp-header": "same"})],
        ) -> str:
            """Two marks, one header."""
            return ""


def test_a_hand_written_input_schema_is_published_as_is():
    schema = {"type": "object", "properties": {"x": {"type": "string"}}, "anyOf": [{"required": ["x"]}]}

    @tool(input_schema=schema, client_capabilities={"sampling": {}})
    async def custom(x: str | None = None) -> str:
        """Custom schema."""
        return x or ""

    assert custom.spec()["inputSchema"] == schema
    assert custom.spec()["x-toolq"]["client_capabilities"] == {"sampling": {}}
    with pytest.raises(TypeError, match="object"):
        tool(input_schema={"type": "string"})(custom.fn)


def test_an_embedded_resource_needs_text_or_blob():
    with pytest.raises(ValueError, match="either text or blob"):
        EmbeddedResource("test://x")
    with pytest.raises(ValueError, match="either text or blob"):
        EmbeddedResource("test://x", text="a", blob=b"b")


async def test_a_result_type_that_is_neither_data_nor_content_is_refused():
    with pytest.raises(TypeError, match="must return an object"):

        @tool
        async def number() -> int:
            """A bare int is neither."""
            return 1

    @tool
    async def lines() -> list[str]:
        """Strings are content."""
        return ["a", "b"]

    assert await lines.invoke({}) == {
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    }
    assert lines.output_schema is None


async def test_a_large_result_is_announced_and_read_not_pushed_whole(make_facade, start_worker, redis):
    await start_worker([result_tools.sized])
    client = await make_facade()
    await client.initialize()
    pushed: list[int] = []
    pubsub = redis.pubsub()
    await pubsub.psubscribe("toolq:events:*")

    async def watch() -> None:
        async for message in pubsub.listen():
            if message["type"] == "pmessage":
                pushed.append(len(message["data"]))

    watching = asyncio.create_task(watch())
    try:
        small = await client.call("sized", {"kilobytes": 1})
        large = await client.call("sized", {"kilobytes": 1024})
    finally:
        watching.cancel()
        await pubsub.aclose()
    assert len(small["content"][0]["text"]) == 1024
    assert len(large["content"][0]["text"]) == 1024 * 1024
    assert pushed and max(pushed) < 70_000  # the megabyte travelled through the result key


async def test_a_result_over_the_limit_is_a_clear_tool_error(make_facade, start_worker):
    worker = await start_worker([result_tools.sized])
    client = await make_facade()
    await client.initialize()
    limit = worker.settings.max_result_bytes
    result = await client.call("sized", {"kilobytes": limit // 1024 + 1})
    assert result["isError"] is True
    assert "TOOLQ_MAX_RESULT_BYTES" in result["content"][0]["text"]


async def test_a_large_result_arrives_by_its_announcement_not_by_the_sweep(start_worker, redis):
    worker = await start_worker([result_tools.sized])
    queue = QueueClient(redis, sweep_seconds=60)  # only the announcement can deliver it in time
    await queue.start()
    try:
        result = await asyncio.wait_for(
            queue.call(worker.queue_name, "sized", {"kilobytes": 512}, timeout=30), 5
        )
    finally:
        await queue.close()
    assert result["ok"] is True
    assert len(result["content"][0]["text"]) == 512 * 1024
