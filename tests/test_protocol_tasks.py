"""MCP tasks in the protocol core, both eras, against in-memory fakes (tests/protocol_fakes.py)."""

from __future__ import annotations

import asyncio

from mcp_types.methods import validate_server_result
from protocol_fakes import CoreHarness, FakeTools

TASKS = "io.modelcontextprotocol/tasks"
TAKES_TASKS = {"io.modelcontextprotocol/clientCapabilities": {"extensions": {TASKS: {}}}}


def held_tools(**task_modes: str) -> FakeTools:
    """Tools whose calls wait until `tools.hold` is set."""
    return FakeTools(hold=asyncio.Event(), task_modes=task_modes)


def result(reply) -> dict:
    assert "result" in reply.message, reply.message
    return reply.message["result"]


def error(reply) -> dict:
    assert "error" in reply.message, reply.message
    return reply.message["error"]


# --- handshake era (2025-11-25) ------------------------------------------------------------------


async def test_a_handshake_task_is_created_polled_and_its_result_fetched():
    tools = held_tools()
    core = CoreHarness(tools)
    session = await core.initialize()
    call = {"name": "echo", "arguments": {"text": "hi"}, "task": {"ttl": 120_000}}
    created = result(await core.post(core.request("tools/call", call), session_id=session))
    task = created["task"]  # a CreateTaskResult
    assert task["status"] == "working" and task["ttl"] == 120_000 and task["pollInterval"] > 0
    got = result(await core.post(core.request("tasks/get", {"taskId": task["taskId"]}), session_id=session))
    assert got["status"] == "working" and got["createdAt"].endswith("Z")
    waiting = asyncio.create_task(
        core.post(core.request("tasks/result", {"taskId": task["taskId"]}), session_id=session)
    )
    await asyncio.sleep(0.05)
    assert not waiting.done()  # tasks/result blocks while the task runs
    tools.hold.set()
    final = result(await waiting)
    assert final["structuredContent"] == {"text": "hi"} and final["isError"] is False
    assert final["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task["taskId"]}
    done = result(await core.post(core.request("tasks/get", {"taskId": task["taskId"]}), session_id=session))
    assert done["status"] == "completed"


async def test_handshake_tasks_are_listed_for_their_session_only_and_cancelled_once():
    tools = held_tools()
    core = CoreHarness(tools)
    mine, theirs = await core.initialize(), await core.initialize()
    call = {"name": "echo", "arguments": {}, "task": {}}
    task_id = result(await core.post(core.request("tools/call", call), session_id=mine))["task"]["taskId"]
    listed = result(await core.post(core.request("tasks/list"), session_id=mine))
    assert [task["taskId"] for task in listed["tasks"]] == [task_id]
    assert result(await core.post(core.request("tasks/list"), session_id=theirs))["tasks"] == []
    foreign = error(await core.post(core.request("tasks/get", {"taskId": task_id}), session_id=theirs))
    assert foreign["code"] == -32602
    cancelled = result(await core.post(core.request("tasks/cancel", {"taskId": task_id}), session_id=mine))
    assert cancelled["status"] == "cancelled"
    assert tools.cancelled == 1  # the call behind it stopped
    again = error(await core.post(core.request("tasks/cancel", {"taskId": task_id}), session_id=mine))
    assert again["code"] == -32602 and "cancelled" in again["message"]


async def test_a_task_of_one_principal_is_unknown_to_another():
    core = CoreHarness(held_tools())
    session = await core.initialize()
    call = {"name": "echo", "arguments": {}, "task": {}}
    created = await core.post(core.request("tools/call", call), session_id=session, principal=None)
    task_id = result(created)["task"]["taskId"]
    other = await core.post(
        core.request("tasks/get", {"taskId": task_id}), session_id=session, principal="eve"
    )
    assert "error" in other.message  # eve cannot even use this session, let alone its tasks


async def test_a_tool_that_never_runs_as_a_task_refuses_one_and_one_that_always_does_needs_one():
    core = CoreHarness(FakeTools(task_modes={"echo": "never"}))
    session = await core.initialize()
    refused = error(
        await core.post(core.request("tools/call", {"name": "echo", "task": {}}), session_id=session)
    )
    assert refused["code"] == -32601
    core = CoreHarness(FakeTools(task_modes={"echo": "always"}))
    session = await core.initialize()
    needed = error(await core.post(core.request("tools/call", {"name": "echo"}), session_id=session))
    assert needed["code"] == -32601 and "task" in needed["message"]


async def test_a_malformed_task_parameter_is_invalid_params():
    core = CoreHarness()
    session = await core.initialize()
    for task in ("soon", {"ttl": "long"}, {"ttl": -1}):
        reply = await core.post(
            core.request("tools/call", {"name": "echo", "task": task}), session_id=session
        )
        assert error(reply)["code"] == -32602, task


# --- stateless era (2026-07-28, the tasks extension) --------------------------------------------------


async def test_a_quick_call_from_a_task_client_is_answered_inline():
    core = CoreHarness(FakeTools())
    reply = await core.stateless(
        "tools/call", {"name": "echo", "arguments": {"text": "now"}}, meta=TAKES_TASKS
    )
    answered = result(reply)
    assert answered["resultType"] == "complete" and answered["structuredContent"] == {"text": "now"}


async def test_a_call_still_running_after_the_window_becomes_a_task_that_inlines_its_result():
    tools = held_tools()
    core = CoreHarness(tools, task_inline_seconds=0.05)
    created = result(
        await core.stateless("tools/call", {"name": "echo", "arguments": {"text": "x"}}, meta=TAKES_TASKS)
    )
    validate_server_result("tools/call", "2026-07-28", created)
    assert created["resultType"] == "task" and created["status"] == "working"
    assert isinstance(created["ttlMs"], int) and isinstance(created["pollIntervalMs"], int)
    assert "task" not in created and "ttl" not in created
    task_id = created["taskId"]
    working = result(await core.stateless("tasks/get", {"taskId": task_id}, meta=TAKES_TASKS))
    assert working["resultType"] == "complete" and working["status"] == "working" and "result" not in working
    tools.hold.set()
    await asyncio.sleep(0.01)
    done = result(await core.stateless("tasks/get", {"taskId": task_id}, meta=TAKES_TASKS))
    assert done["status"] == "completed" and done["result"]["structuredContent"] == {"text": "x"}
    assert done["result"]["resultType"] == "complete"  # the call's own 2026-07-28 result
    assert "io.modelcontextprotocol/related-task" not in done["result"].get("_meta", {})


async def test_without_the_extension_a_call_is_never_a_task_and_tasks_methods_need_it():
    tools = held_tools()
    core = CoreHarness(tools, task_inline_seconds=0.01)
    call = asyncio.create_task(core.stateless("tools/call", {"name": "echo", "arguments": {"text": "y"}}))
    await asyncio.sleep(0.05)
    assert not call.done()  # no task handle: the call is answered when it ends
    tools.hold.set()
    assert result(await call)["resultType"] == "complete"
    for method in ("tasks/get", "tasks/update", "tasks/cancel"):
        refused = error(await core.stateless(method, {"taskId": "whatever"}))
        assert refused["code"] == -32021, method
        assert refused["data"]["requiredCapabilities"] == {"extensions": {TASKS: {}}}


async def test_stateless_cancel_and_update_acknowledge_and_unknown_tasks_are_invalid_params():
    tools = held_tools()
    core = CoreHarness(tools, task_inline_seconds=0.01)
    created = result(await core.stateless("tools/call", {"name": "echo", "arguments": {}}, meta=TAKES_TASKS))
    task_id = created["taskId"]
    update = {"taskId": task_id, "inputResponses": {}}
    assert result(await core.stateless("tasks/update", update, meta=TAKES_TASKS))["resultType"] == "complete"
    assert (
        result(await core.stateless("tasks/cancel", {"taskId": task_id}, meta=TAKES_TASKS))["resultType"]
        == "complete"
    )
    await asyncio.sleep(0.01)
    assert tools.cancelled == 1
    got = result(await core.stateless("tasks/get", {"taskId": task_id}, meta=TAKES_TASKS))
    assert got["status"] == "cancelled"
    # Cancelling a task that has ended is acknowledged and changes nothing.
    assert (
        result(await core.stateless("tasks/cancel", {"taskId": task_id}, meta=TAKES_TASKS))["resultType"]
        == "complete"
    )
    unknown = error(await core.stateless("tasks/get", {"taskId": "no-such-task"}, meta=TAKES_TASKS))
    assert unknown["code"] == -32602


async def test_tasks_get_needs_the_task_id_in_mcp_name():
    core = CoreHarness(held_tools(), task_inline_seconds=0.01)
    created = result(await core.stateless("tools/call", {"name": "echo", "arguments": {}}, meta=TAKES_TASKS))
    reply = await core.stateless(
        "tasks/get", {"taskId": created["taskId"]}, meta=TAKES_TASKS, headers={"Mcp-Name": "another"}
    )
    assert error(reply)["code"] == -32020


async def test_a_tool_that_always_runs_as_a_task_needs_the_extension_and_never_answers_inline():
    core = CoreHarness(FakeTools(task_modes={"echo": "always"}))
    refused = error(await core.stateless("tools/call", {"name": "echo", "arguments": {}}))
    assert refused["code"] == -32021
    created = result(await core.stateless("tools/call", {"name": "echo", "arguments": {}}, meta=TAKES_TASKS))
    assert created["resultType"] == "task"


async def test_stateless_tasks_are_the_principal_s():
    core = CoreHarness(held_tools(), task_inline_seconds=0.01)
    created = await core.stateless(
        "tools/call", {"name": "echo", "arguments": {}}, meta=TAKES_TASKS, principal="alice"
    )
    task_id = result(created)["taskId"]
    assert result(await core.stateless("tasks/get", {"taskId": task_id}, meta=TAKES_TASKS, principal="alice"))
    foreign = await core.stateless("tasks/get", {"taskId": task_id}, meta=TAKES_TASKS, principal="bob")
    assert error(foreign)["code"] == -32602


async def test_the_stateless_tool_list_has_no_handshake_execution_field():
    spec = {"name": "echo", "inputSchema": {"type": "object"}, "execution": {"taskSupport": "optional"}}
    core = CoreHarness(FakeTools(specs=[spec]))
    listed = result(await core.stateless("tools/list"))
    assert "execution" not in listed["tools"][0]
    session = await core.initialize()
    handshake = result(await core.post(core.request("tools/list"), session_id=session))
    assert handshake["tools"][0]["execution"] == {"taskSupport": "optional"}
