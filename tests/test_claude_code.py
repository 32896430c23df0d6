"""Claude Code itself as an MCP client of the facade.

`claude -p` (the npm package @anthropic-ai/claude-code, pinned in tests/claude_code/) connects to
the facade over HTTP as it does for a user, from an `--mcp-config` file, and its model is a
local stand-in of the Messages API (tests/fake_anthropic.py) that asks for toolq's tools. What
the stand-in receives back in the next request is what Claude Code got from toolq. The facade
runs in-process on a real port of 127.0.0.1, its queue on fakeredis with an in-process worker.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from arq.connections import ArqRedis
from fake_anthropic import FakeAnthropic, RecordedRequest, Reply, text, tool_use
from npm_packages import NPM_CI_TIMEOUT, installed, run_json

from facade.app import create_app
from facade.settings import FacadeSettings

CLAUDE_TIMEOUT = 60.0
TOKEN = "claude-code-test-token"


@pytest.fixture(scope="module")
def claude_binary() -> Path:
    return installed("claude_code") / "node_modules" / ".bin" / "claude"


async def run_claude(
    binary: Path, home: Path, config: dict[str, Any], api_url: str, prompt: str
) -> dict[str, Any]:
    """`claude -p PROMPT` with only the given MCP servers and toolq's tools allowed; its JSON result."""
    config_file = home / "mcp.json"
    config_file.write_text(json.dumps(config))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANTHROPIC_", "CLAUDE_", "TOOLQ_"))
    }
    env |= {
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": api_url,
        "ANTHROPIC_API_KEY": "sk-ant-test",
        # MCP tools go into the request itself, not behind Claude Code's tool search.
        "ENABLE_TOOL_SEARCH": "false",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    command = [
        str(binary),
        "-p",
        prompt,
        "--output-format",
        "json",
        "--mcp-config",
        str(config_file),
        "--strict-mcp-config",
        "--allowedTools",
        "mcp__toolq__add,mcp__toolq__weather",
    ]
    return await run_json(command, cwd=home, timeout=CLAUDE_TIMEOUT, env=env)


def asks_for_add_and_weather(request: RecordedRequest) -> Reply:
    """Claude's part: call both tools in one turn, then answer with what came back."""
    results = request.tool_results()
    if results:
        return Reply([text(json.dumps(results))])
    if {"mcp__toolq__add", "mcp__toolq__weather"} <= set(request.tool_names):
        return Reply(
            [
                tool_use("mcp__toolq__add", {"a": 15, "b": 27}),
                tool_use("mcp__toolq__weather", {"city": "Delhi"}),
            ],
            stop_reason="tool_use",
        )
    return Reply([text("toolq's tools were not offered")])


@pytest.mark.timeout(NPM_CI_TIMEOUT + 120)
@pytest.mark.parametrize("with_token", [False, True], ids=["no-auth", "bearer-token"])
async def test_claude_code_calls_toolq_tools_through_the_queue(
    claude_binary: Path,
    *,
    aiohttp_server: Any,
    redis: ArqRedis,
    start_worker: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    with_token: bool,
):
    monkeypatch.setenv("TOOLQ_WEATHER_PROVIDER", "offline")
    await start_worker(["add", "weather"])
    settings = FacadeSettings(
        call_grace_seconds=1.0, max_call_seconds=10.0, tokens=(TOKEN,) if with_token else ()
    )
    app = create_app(settings, redis=redis)
    versions: list[str | None] = []

    @web.middleware
    async def record_version(request: web.Request, handler: Any) -> web.StreamResponse:
        versions.append(request.headers.get("MCP-Protocol-Version"))
        return await handler(request)

    app.middlewares.insert(0, record_version)
    server = await aiohttp_server(app, host="127.0.0.1")
    toolq: dict[str, Any] = {"type": "http", "url": f"http://127.0.0.1:{server.port}/mcp"}
    if with_token:
        toolq["headers"] = {"Authorization": f"Bearer {TOKEN}"}

    async with FakeAnthropic() as claude:
        for _ in range(10):  # Claude Code may ask more than twice (titles, retries)
            claude.reply_with(asks_for_add_and_weather)
        outcome = await run_claude(
            claude_binary,
            tmp_path,
            {"mcpServers": {"toolq": toolq}},
            claude.base_url,
            "Add 15 and 27; weather in Delhi?",
        )
        answered = [r for r in claude.requests if r.tool_results()]

    assert outcome["is_error"] is False, outcome
    assert answered, [r.tool_names for r in claude.requests]
    results = {result["tool_use_id"]: result for result in answered[-1].tool_results()}
    assert len(results) == 2
    contents = [json.loads(result["content"]) for result in results.values()]
    assert all(result.get("is_error") is not True for result in results.values()), results
    assert {"a": 15, "b": 27, "sum": 42} in contents
    weather = next(content for content in contents if "city" in content)
    assert (weather["city"], weather["source"]) == ("Delhi", "offline-sample")
    # Claude Code speaks the stateless era to toolq from its first request on.
    assert versions and set(versions) == {"2026-07-28"}, versions
