"""Bad input in both wire formats and both eras: a clear error, never a 5xx, never invalid JSON,
and the server keeps serving.

The property tests throw generated bodies, headers and arguments (hypothesis) at a facade and a
worker that run on a real port, on an event loop of their own in a thread, their queue on
fakeredis; each answer must be a 2xx/4xx whose body is strict JSON (no NaN, no Infinity).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import fakeredis
import pytest
from aiohttp import web
from conftest import FAST_FACADE, arq_redis, fake_worker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp_http import StatelessMcpHttp
from real_processes import free_port

from facade.app import create_app
from workers.settings import WorkerSettings
from workers.tools import discover

# --- non-finite numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_a_number_json_cannot_carry_is_a_parse_error_in_both_formats(make_facade, number):
    client = await make_facade()
    await client.initialize()
    seed = {"tool": "add", "params": {"a": "NUMBER", "b": 1}}
    mcp = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
    mcp["params"] = {"name": "add", "arguments": {"a": "NUMBER", "b": 1}}
    for template in (seed, mcp):
        body = json.dumps(template).replace('"NUMBER"', number)
        status, answer, _ = await client.post(body)
        assert (status, answer["error"]["code"]) == (400, -32700), body


async def test_a_result_json_cannot_carry_is_a_clear_tool_error(make_facade, start_worker):
    await start_worker(["add"])
    client = await make_facade()
    await client.initialize()
    result = await client.call("add", {"a": 1e308, "b": 1e308})
    assert result["isError"] is True
    assert "infinity or NaN" in result["content"][0]["text"]
    stateless = StatelessMcpHttp(client.client)
    status, body, _ = await stateless.post(
        stateless.message("tools/call", {"name": "add", "arguments": {"a": 1e308, "b": 1e308}})
    )
    assert status == 200 and body["result"]["isError"] is True


# --- generated input ---------------------------------------------------------------------------


class ServedInAThread:
    """A facade and a worker on fakeredis, serving on 127.0.0.1 from an event loop of their own."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    def __enter__(self) -> ServedInAThread:
        self._thread.start()
        assert self._ready.wait(10), "the facade did not start"
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = fakeredis.FakeServer()
        definitions = [discover()[name] for name in ("add", "weather")]
        settings = replace(WorkerSettings(), worker_id="fuzzed", drain_seconds=0)
        worker = fake_worker(definitions, settings, server)
        running = asyncio.create_task(worker.main())
        runner = web.AppRunner(
            create_app(replace(FAST_FACADE, max_call_seconds=5.0), redis=arq_redis(server))
        )
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await worker.close()


@pytest.fixture(scope="module")
def served(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[ServedInAThread]:
    monkeypatch_module.setattr("arq.worker.log_redis_info", _no_info)
    monkeypatch_module.setenv("TOOLQ_WEATHER_PROVIDER", "offline")
    with ServedInAThread() as facade:
        yield facade


async def _no_info(*_args: Any, **_kwargs: Any) -> None:
    return None


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in a response: not JSON")

    return json.loads(text, parse_constant=refuse)


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, str]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode()


def check_answer(status: int, content_type: str, text: str) -> None:
    assert status < 500, (status, text)
    if not text:
        return
    if content_type.startswith("application/json"):
        strict_json(text)
    elif content_type.startswith("text/event-stream"):
        for line in text.splitlines():
            if line.startswith("data: "):
                strict_json(line[len("data: ") :])


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
methods = st.sampled_from(
    [
        "tools/call",
        "tools/list",
        "initialize",
        "server/discover",
        "ping",
        "logging/setLevel",
        "notifications/cancelled",
    ]
) | st.text(max_size=12)
meta = st.fixed_dictionaries(
    {},
    optional={
        "io.modelcontextprotocol/protocolVersion": st.sampled_from(["2026-07-28", "2025-11-25"])
        | json_values,
        "io.modelcontextprotocol/clientCapabilities": st.just({}) | json_values,
        "io.modelcontextprotocol/logLevel": st.sampled_from(["debug", "error"]) | json_values,
        "progressToken": json_values,
        "traceparent": st.text(max_size=60),
    },
)
params = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["add", "weather", "nope"]) | json_values,
        "arguments": st.fixed_dictionaries(
            {}, optional={"a": json_values, "b": json_values, "city": json_values}
        )
        | json_values,
        "cursor": json_values,
        "level": json_values,
        "protocolVersion": json_values,
        "_meta": meta | json_values,
    },
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.just("2.0") | json_values,
        "id": st.integers() | st.text(max_size=8) | json_values,
        "method": methods,
        "params": params | json_values,
        "result": json_values,
        "tool": st.sampled_from(["add", "weather"]) | json_values,
    },
)
header_text = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=24)
headers = st.fixed_dictionaries(
    {"Content-Type": st.just("application/json")},
    optional={
        "Accept": st.sampled_from(
            ["application/json, text/event-stream", "text/event-stream", "application/json"]
        ),
        "MCP-Protocol-Version": st.sampled_from(["2026-07-28", "2025-11-25", "2024-11-05"]) | header_text,
        "Mcp-Method": methods.filter(lambda m: m.isprintable() and m.isascii() and m.strip() == m and m != "")
        | header_text,
        "Mcp-Name": st.sampled_from(["add", "weather", "=?base64?YWRk?="]) | header_text,
        "Mcp-Session-Id": header_text,
    },
)
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(message=messages, headers=headers)
def test_generated_messages_and_headers_never_get_a_5xx_or_invalid_json(served, message, headers):
    check_answer(*post(served.url, json.dumps(message).encode(), headers))


@FUZZ
@given(
    body=st.binary(max_size=200)
    | st.text(max_size=200).map(str.encode)
    | st.integers(1, 100_000).map(lambda n: b"[" * n + b"]" * n)  # nested past the recursion limit
    | st.integers(4000, 6000).map(lambda n: b'{"a": ' + b"9" * n + b"}"),  # past int's 4300 digits
    headers=headers,
)
def test_generated_bytes_never_get_a_5xx(served, body, headers):
    check_answer(*post(served.url, body, headers))


@FUZZ
@given(arguments=json_values, tool=st.sampled_from(["add", "weather"]))
def test_generated_arguments_in_the_seed_format_get_a_clear_answer(served, arguments, tool):
    body = json.dumps({"tool": tool, "params": arguments}).encode()
    status, content_type, text = post(served.url, body, {"Content-Type": "application/json"})
    check_answer(status, content_type, text)
    assert status in (200, 400, 422), (status, text)


def test_the_fuzzed_server_still_serves(served):
    body = json.dumps({"tool": "add", "params": {"a": 20, "b": 22}}).encode()
    status, _, text = post(served.url, body, {"Content-Type": "application/json"})
    assert (status, strict_json(text)["result"]["sum"]) == (200, 42)
