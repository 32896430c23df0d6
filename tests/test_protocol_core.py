"""The protocol core on in-memory fakes: both eras, no HTTP server and no Redis."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys

import mcp_types
import pytest
from mcp_types.methods import validate_server_result
from protocol_fakes import ECHO, STATELESS_META, CoreHarness, FakeTools, RecordingStream
from real_processes import ROOT

from facade.protocol.exchange import Problem
from facade.protocol.tool_calls import LogEntry, ProgressUpdate

# --- the stateless era ----------------------------------------------------------------------------


async def test_discover_lists_both_eras_and_names_the_server():
    reply = await CoreHarness().stateless("server/discover")
    result = reply.message["result"]
    validate_server_result("server/discover", "2026-07-28", result)
    assert result["resultType"] == "complete"
    assert result["supportedVersions"][0] == "2026-07-28"
    assert "2025-11-25" in result["supportedVersions"]
    capabilities = result["capabilities"]
    assert set(capabilities) == {"tools", "logging", "extensions"}  # no handshake-era "tasks"
    assert capabilities["extensions"] == {"io.modelcontextprotocol/tasks": {}}
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["version"] == "9.9.9"
    assert result["ttlMs"] >= 0
    assert result["cacheScope"] in ("public", "private")


async def test_stateless_tools_list_carries_caching_hints_and_server_info():
    core = CoreHarness(list_ttl_ms=1234, cache_scope="private")
    result = (await core.stateless("tools/list")).message["result"]
    validate_server_result("tools/list", "2026-07-28", result)
    assert [tool["name"] for tool in result["tools"]] == ["echo"]
    assert (result["ttlMs"], result["cacheScope"], result["resultType"]) == (1234, "private", "complete")
    assert "io.modelcontextprotocol/serverInfo" in result["_meta"]


async def test_stateless_tools_call_is_complete_and_keeps_the_worker_meta():
    reply = await CoreHarness().stateless("tools/call", {"name": "echo", "arguments": {"text": "hi"}})
    result = reply.message["result"]
    validate_server_result("tools/call", "2026-07-28", result)
    assert reply.problem is None
    assert result["resultType"] == "complete"
    assert result["structuredContent"] == {"text": "hi"}
    assert result["_meta"]["toolq/worker"] == "fake-worker"
    assert "io.modelcontextprotocol/serverInfo" in result["_meta"]


@pytest.mark.parametrize(
    ("meta", "fragment"),
    [
        ({"io.modelcontextprotocol/protocolVersion": None}, "protocolVersion"),
        ({"io.modelcontextprotocol/clientCapabilities": None}, "clientCapabilities"),
    ],
)
async def test_a_missing_envelope_key_is_invalid_params(meta, fragment):
    core = CoreHarness()
    params = {"_meta": {k: v for k, v in {**core_meta(), **meta}.items() if v is not None}}
    reply = await core.post(
        core.request("server/discover", params),
        headers={"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "server/discover"},
    )
    assert reply.problem is Problem.MALFORMED
    assert reply.message["error"]["code"] == -32602
    assert fragment in reply.message["error"]["message"]


def core_meta() -> dict:
    return dict(STATELESS_META)


async def test_no_meta_at_all_is_invalid_params_and_client_info_is_optional():
    core = CoreHarness()
    headers = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "server/discover"}
    bare = await core.post(core.request("server/discover", {}), headers=headers)
    assert (bare.problem, bare.message["error"]["code"]) == (Problem.MALFORMED, -32602)
    meta = core_meta()
    del meta["io.modelcontextprotocol/clientInfo"]
    without_info = await core.post(core.request("server/discover", {"_meta": meta}), headers=headers)
    assert without_info.problem is None


async def test_header_mismatches_are_32020():
    core = CoreHarness()
    call = {"name": "echo", "arguments": {}}
    cases = [
        {"Mcp-Method": "tools/list"},  # not the body's method
        {"Mcp-Name": "other"},  # not the body's tool
        {"MCP-Protocol-Version": "2026-07-28", "Mcp-Name": "=?base64?bm9wZQ==?="},  # "nope"
    ]
    for headers in cases:
        reply = await core.stateless("tools/call", call, headers=headers)
        assert reply.problem is Problem.MALFORMED, headers
        assert reply.message["error"]["code"] == -32020, headers
        assert reply.message["id"] is not None


async def test_mcp_method_and_mcp_name_are_required():
    core = CoreHarness()
    message = core.request("tools/call", {"name": "echo", "_meta": core_meta()})
    no_method = await core.post(message, headers={"MCP-Protocol-Version": "2026-07-28", "Mcp-Name": "echo"})
    assert no_method.message["error"]["code"] == -32020
    assert "Mcp-Method" in no_method.message["error"]["message"]
    no_name = await core.post(
        message, headers={"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call"}
    )
    assert no_name.message["error"]["code"] == -32020
    assert "Mcp-Name" in no_name.message["error"]["message"]


async def test_a_non_ascii_tool_name_travels_base64_in_mcp_name():
    spec = {**ECHO, "name": "échelle"}
    core = CoreHarness(FakeTools(specs=[spec]))
    encoded = "=?base64?" + base64.b64encode("échelle".encode()).decode() + "?="
    reply = await core.stateless(
        "tools/call", {"name": "échelle", "arguments": {}}, headers={"Mcp-Name": encoded}
    )
    assert reply.problem is None, reply.message
    assert reply.message["result"]["isError"] is False


async def test_the_header_must_match_the_envelope_before_the_version_is_judged():
    core = CoreHarness()
    reply = await core.stateless("server/discover", meta={"io.modelcontextprotocol/protocolVersion": "v999"})
    assert reply.message["error"]["code"] == -32020


async def test_an_unserved_version_is_32022_listing_both_eras():
    core = CoreHarness()
    reply = await core.stateless(
        "server/discover",
        meta={"io.modelcontextprotocol/protocolVersion": "2099-01-01"},
        headers={"MCP-Protocol-Version": "2099-01-01"},
    )
    error = reply.message["error"]
    mcp_types.UnsupportedProtocolVersionErrorData.model_validate(error["data"])
    assert reply.problem is Problem.MALFORMED
    assert error["code"] == -32022
    assert error["data"]["requested"] == "2099-01-01"
    assert {"2026-07-28", "2025-11-25"} <= set(error["data"]["supported"])


@pytest.mark.parametrize(
    "method", ["initialize", "ping", "logging/setLevel", "resources/subscribe", "prompts/list", "unknown/x"]
)
async def test_removed_and_unknown_methods_are_32601(method):
    reply = await CoreHarness().stateless(method, {"level": "info"})
    assert reply.problem is Problem.UNKNOWN_METHOD
    assert reply.message["error"]["code"] == -32601
    assert reply.message["id"] is not None


async def test_stateless_notifications_are_accepted_and_responses_refused():
    core = CoreHarness()
    headers = {"MCP-Protocol-Version": "2026-07-28"}
    note = await core.post({"jsonrpc": "2.0", "method": "notifications/cancelled"}, headers=headers)
    assert (note.message, note.problem) == (None, None)
    response = await core.post({"jsonrpc": "2.0", "id": 1, "result": {}}, headers=headers)
    assert (response.problem, response.message["error"]["code"]) == (Problem.MALFORMED, -32600)
    batch = await core.post([core.request("server/discover")], headers=headers)
    assert (batch.problem, batch.message["error"]["code"]) == (Problem.MALFORMED, -32600)
    future = await core.post(
        {"jsonrpc": "2.0", "method": "x"}, headers={"MCP-Protocol-Version": "2099-01-01"}
    )
    assert future.message["error"]["code"] == -32022


async def test_an_invalid_log_level_is_invalid_params():
    reply = await CoreHarness().stateless("tools/list", meta={"io.modelcontextprotocol/logLevel": "loud"})
    assert (reply.problem, reply.message["error"]["code"]) == (Problem.MALFORMED, -32602)


async def test_stateless_logs_only_with_a_log_level_and_progress_only_with_a_token():
    tools = FakeTools(
        events=[ProgressUpdate(1, 2, "half"), LogEntry("info", "hello"), LogEntry("debug", "noise")]
    )
    core = CoreHarness(tools)
    silent = RecordingStream()
    await core.stateless("tools/call", {"name": "echo", "arguments": {}}, stream=silent)
    assert silent.sent == []
    assert tools.calls[-1][2].listener is None  # the worker is not even asked to report
    chatty = RecordingStream()
    meta = {"progressToken": "t1", "io.modelcontextprotocol/logLevel": "info"}
    await core.stateless("tools/call", {"name": "echo", "arguments": {}}, meta=meta, stream=chatty)
    assert chatty.methods() == ["notifications/progress", "notifications/message"]
    assert chatty.sent[0]["params"] == {"progressToken": "t1", "progress": 1, "total": 2, "message": "half"}
    assert chatty.sent[1]["params"] == {"level": "info", "data": "hello"}
    options = tools.calls[-1][2]
    assert (options.progress, options.log_level) == (True, "info")


async def test_a_client_that_cannot_take_a_stream_gets_no_notifications():
    tools = FakeTools(events=[ProgressUpdate(1)])
    stream = RecordingStream(can_stream=False)
    meta = {"progressToken": 5, "io.modelcontextprotocol/logLevel": "debug"}
    await CoreHarness(tools).stateless("tools/call", {"name": "echo"}, meta=meta, stream=stream)
    assert stream.sent == []
    assert tools.calls[-1][2].listener is None


async def test_progress_that_does_not_increase_is_dropped():
    tools = FakeTools(events=[ProgressUpdate(1), ProgressUpdate(1), ProgressUpdate(0.5), ProgressUpdate(3)])
    stream = RecordingStream()
    await CoreHarness(tools).stateless(
        "tools/call", {"name": "echo"}, meta={"progressToken": 1}, stream=stream
    )
    assert [m["params"]["progress"] for m in stream.sent] == [1, 3]


async def test_a_missing_client_capability_is_32021_before_the_call():
    tools = FakeTools(capabilities={"echo": {"sampling": {}}})
    core = CoreHarness(tools)
    reply = await core.stateless("tools/call", {"name": "echo", "arguments": {}})
    error = reply.message["error"]
    mcp_types.MissingRequiredClientCapabilityErrorData.model_validate(error["data"])
    assert (reply.problem, error["code"]) == (Problem.MALFORMED, -32021)
    assert error["data"] == {"requiredCapabilities": {"sampling": {}}}
    assert tools.calls == []
    declared = {"io.modelcontextprotocol/clientCapabilities": {"sampling": {}}}
    ok = await core.stateless("tools/call", {"name": "echo", "arguments": {}}, meta=declared)
    assert ok.problem is None


async def test_mirrored_arguments_must_match_their_mcp_param_headers():
    spec = {
        **ECHO,
        "inputSchema": {
            "type": "object",
            "properties": {
                "text": {"type": "string", "x-mcp-header": "Text"},
                "n": {"type": "integer", "x-mcp-header": "N"},
            },
        },
    }
    core = CoreHarness(FakeTools(specs=[spec]))
    call = {"name": "echo", "arguments": {"text": "Hello", "n": 42}}
    good = {"Mcp-Param-Text": "=?base64?SGVsbG8=?=", "mcp-param-n": "42.0"}
    assert (await core.stateless("tools/call", call, headers=good)).problem is None
    for bad in (
        {"Mcp-Param-N": "42"},  # Text missing although the argument is there
        {"Mcp-Param-Text": "Hello", "Mcp-Param-N": "41"},
        {"Mcp-Param-Text": "=?base64?SGVsbG8?=", "Mcp-Param-N": "42"},  # malformed base64
    ):
        reply = await core.stateless("tools/call", call, headers=bad)
        assert reply.message["error"]["code"] == -32020, bad
    absent = {"name": "echo", "arguments": {"n": 1}}
    extra = await core.stateless("tools/call", absent, headers={"Mcp-Param-N": "1", "Mcp-Param-Text": "x"})
    assert extra.message["error"]["code"] == -32020


async def test_unknown_tool_and_bad_cursor_are_invalid_params_in_both_eras():
    core = CoreHarness()
    unknown = await core.stateless("tools/call", {"name": "nope", "arguments": {}})
    assert (unknown.problem, unknown.message["error"]["code"]) == (Problem.MALFORMED, -32602)
    cursor = await core.stateless("tools/list", {"cursor": "not-ours"})
    assert cursor.message["error"]["code"] == -32602
    session = await core.initialize()
    handshake = await core.post(core.request("tools/call", {"name": "nope"}), session_id=session)
    assert (handshake.problem, handshake.message["error"]["code"]) == (None, -32602)


async def test_a_store_outage_is_its_own_problem_in_both_eras():
    tools = FakeTools(down=True)
    core = CoreHarness(tools)
    reply = await core.stateless("tools/list")
    assert reply.problem is Problem.STORE_UNAVAILABLE
    assert reply.message["error"]["code"] == -32603
    core.sessions.down = True
    handshake = await core.post(core.request("tools/list"), session_id="whatever")
    assert handshake.problem is Problem.STORE_UNAVAILABLE


# --- the handshake era ----------------------------------------------------------------------------


async def test_initialize_opens_a_session_and_declares_tools_and_logging():
    core = CoreHarness()
    reply = await core.post(core.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}}))
    result = reply.message["result"]
    validate_server_result("initialize", "2025-06-18", result)
    assert result["protocolVersion"] == "2025-06-18"
    capabilities = result["capabilities"]
    assert set(capabilities) == {"tools", "logging", "tasks"}
    assert capabilities["tasks"] == {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
    assert reply.session_id in core.sessions.sessions


async def test_requests_need_a_live_session():
    core = CoreHarness()
    none = await core.post(core.request("tools/list"))
    assert (none.problem, none.message["error"]["code"]) == (Problem.SESSION_REQUIRED, -32600)
    gone = await core.post(core.request("tools/list"), session_id="ended")
    assert (gone.problem, gone.message["error"]["code"]) == (Problem.SESSION_NOT_FOUND, -32001)


async def test_set_level_decides_which_log_messages_a_session_gets():
    tools = FakeTools(
        events=[LogEntry("debug", "detail"), LogEntry("info", "news"), LogEntry("error", "bad")]
    )
    core = CoreHarness(tools)
    session = await core.initialize()
    default = RecordingStream()
    await core.post(core.request("tools/call", {"name": "echo"}), session_id=session, stream=default)
    assert [m["params"]["data"] for m in default.sent] == ["news", "bad"]
    reply = await core.post(core.request("logging/setLevel", {"level": "error"}), session_id=session)
    assert reply.message["result"] == {}
    after = RecordingStream()
    await core.post(core.request("tools/call", {"name": "echo"}), session_id=session, stream=after)
    assert [m["params"]["data"] for m in after.sent] == ["bad"]
    bad = await core.post(core.request("logging/setLevel", {"level": "chatty"}), session_id=session)
    assert bad.message["error"]["code"] == -32602


async def test_handshake_tools_call_result_has_no_stateless_framing():
    core = CoreHarness()
    session = await core.initialize()
    reply = await core.post(
        core.request("tools/call", {"name": "echo", "arguments": {"text": "x"}}), session_id=session
    )
    result = reply.message["result"]
    validate_server_result("tools/call", "2025-11-25", result)
    assert "resultType" not in result
    assert result["content"] == [{"type": "text", "text": '{"text": "x"}'}]


async def test_notifications_cancelled_stops_the_request_with_32800():
    tools = FakeTools(hold=asyncio.Event())
    core = CoreHarness(tools)
    session = await core.initialize()
    call = asyncio.create_task(
        core.post(core.request("tools/call", {"name": "echo"}, id="slow"), session_id=session)
    )
    await asyncio.wait_for(tools.started.wait(), 1)
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "slow"}}
    assert (await core.post(cancel, session_id=session)).message is None
    reply = await asyncio.wait_for(call, 1)
    assert reply.message["error"]["code"] == -32800
    assert tools.cancelled == 1


async def test_a_missing_client_capability_is_an_error_result_in_the_handshake_era():
    tools = FakeTools(capabilities={"echo": {"sampling": {}}})
    core = CoreHarness(tools)
    without = await core.initialize(capabilities={})
    refused = await core.post(core.request("tools/call", {"name": "echo"}), session_id=without)
    assert refused.message["result"]["isError"] is True
    assert "sampling" in refused.message["result"]["content"][0]["text"]
    with_sampling = await core.initialize(capabilities={"sampling": {}})
    allowed = await core.post(core.request("tools/call", {"name": "echo"}), session_id=with_sampling)
    assert allowed.message["result"]["isError"] is False
    assert len(tools.calls) == 1


async def test_a_2025_03_26_session_may_batch_and_gets_answers_in_order():
    core = CoreHarness()
    session = await core.initialize("2025-03-26")
    batch = [
        core.request("ping", id="a"),
        {"jsonrpc": "2.0", "method": "notifications/whatever"},
        core.request("tools/call", {"name": "echo", "arguments": {"text": "b"}}, id="b"),
        {"jsonrpc": "2.0", "id": "c", "method": 5},
        core.request("initialize", {}, id="d"),
    ]
    reply = await core.post(batch, session_id=session)
    answers = reply.message
    assert [answer["id"] for answer in answers] == ["a", "b", "c", "d"]
    assert answers[0]["result"] == {}
    assert answers[1]["result"]["structuredContent"] == {"text": "b"}
    assert answers[2]["error"]["code"] == -32600
    assert answers[3]["error"]["code"] == -32600
    only_notes = await core.post([{"jsonrpc": "2.0", "method": "notifications/x"}], session_id=session)
    assert only_notes.message is None
    empty = await core.post([], session_id=session)
    assert empty.message["error"]["code"] == -32600


async def test_later_handshake_versions_refuse_batches():
    core = CoreHarness()
    session = await core.initialize("2025-06-18")
    reply = await core.post([core.request("ping")], session_id=session)
    assert (reply.problem, reply.message["error"]["code"]) == (Problem.MALFORMED, -32600)
    assert "2025-06-18" in reply.message["error"]["message"]


async def test_ending_a_session_cancels_its_requests():
    tools = FakeTools(hold=asyncio.Event())
    core = CoreHarness(tools)
    session = await core.initialize()
    call = asyncio.create_task(core.post(core.request("tools/call", {"name": "echo"}), session_id=session))
    await asyncio.wait_for(tools.started.wait(), 1)
    assert (await core.core.end_session(session)).problem is None
    assert (await asyncio.wait_for(call, 1)).message["error"]["code"] == -32800
    assert (await core.core.end_session(session)).problem is Problem.SESSION_NOT_FOUND
    assert (await core.core.end_session(None)).problem is Problem.SESSION_REQUIRED


def test_the_protocol_core_imports_neither_aiohttp_nor_redis():
    # Every module of the package, so that a new one is held to it too.
    modules = sorted(
        f"facade.protocol.{path.stem}"
        for path in (ROOT / "facade" / "protocol").glob("*.py")
        if path.stem != "__init__"
    )
    assert "facade.protocol.tasks" in modules and len(modules) > 10
    script = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in modules)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'redis', 'arq'))\n"
        + "print(','.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
