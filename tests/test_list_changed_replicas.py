"""Tool-list changes reach the clients of every facade replica, in both eras, on real processes:
two facades and the workers on one real redis-server, the official MCP Python SDK as the clients
(a handshake-era session holding its GET stream on facade A, a 2026-07-28 client holding a
`subscriptions/listen` stream on facade B).

A worker with a tool nobody served (`refuse`, from tests/tools_for_tests.py) joins, then leaves
(SIGTERM) or dies (SIGKILL: no leave, told once its heartbeat expires). The times from the
worker's start (or stop) to each notification are printed (`pytest -s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import mcp
import mcp.types
import pytest
from real_processes import ROOT, Service, Stack, running_stack
from waiting import eventually

from workers import contract

pytestmark = pytest.mark.redis_server

#: The new tool: a test tool no other worker of these stacks serves.
TOOL = "refuse"
#: The promise: a change reaches every listening client within this long.
WITHIN = 2.0


@dataclass
class Heard:
    """When `notifications/tools/list_changed` reached one client."""

    times: list[float] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def tell(self) -> None:
        self.times.append(time.monotonic())
        self.arrived.set()

    async def next_after(self, since: float, seconds: float) -> float:
        """Seconds from `since` to the first notification after it; fails after `seconds`."""
        async with asyncio.timeout(seconds):
            while True:
                later = [at for at in self.times if at >= since]
                if later:
                    return later[0] - since
                self.arrived.clear()
                await self.arrived.wait()


@contextlib.asynccontextmanager
async def handshake_client(url: str) -> AsyncIterator[tuple[mcp.Client, Heard]]:
    """A 2025-11-25 session; the SDK opens its GET stream itself, notifications reach the handler."""
    heard = Heard()

    async def on_message(message: object) -> None:
        if isinstance(message, mcp.types.ToolListChangedNotification):
            heard.tell()

    async with mcp.Client(url, mode="legacy", message_handler=on_message) as client:
        assert client.protocol_version == "2025-11-25"
        assert client.server_capabilities.tools is not None and client.server_capabilities.tools.list_changed
        yield client, heard


@contextlib.asynccontextmanager
async def stateless_client(url: str) -> AsyncIterator[tuple[mcp.Client, Heard]]:
    """A 2026-07-28 client with an acknowledged `subscriptions/listen` stream."""
    heard = Heard()
    async with (
        mcp.Client(url, mode="2026-07-28") as client,
        client.listen(tools_list_changed=True) as subscription,
    ):
        assert subscription.honored.tools_list_changed is True

        async def consume() -> None:
            async for _ in subscription:
                heard.tell()

        consuming = asyncio.create_task(consume())
        try:
            yield client, heard
        finally:
            consuming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consuming


async def has_open_streams(url: str) -> bool:
    """Whether the facade at `url` holds an open notification stream (its /readyz says)."""
    async with aiohttp.ClientSession() as http, http.get(url.replace("/mcp", "/readyz")) as response:
        return int((await response.json())["open_streams"]) > 0


async def tool_names(client: mcp.Client) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


def start_new_tool_worker(stack: Stack, name: str) -> Service:
    python_path = os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))
    return stack.worker(name, "--tools", TOOL, "--tool-modules", "tools_for_tests", PYTHONPATH=python_path)


@contextlib.asynccontextmanager
async def two_replicas_listening(tmp_path) -> AsyncIterator[tuple[Stack, Heard, Heard, mcp.Client]]:  # type: ignore[no-untyped-def]
    """Facades A and B on one redis-server; a handshake client on A, a stateless one on B."""
    with running_stack(tmp_path) as stack:
        _, url_a = stack.facade(name="facade-a")
        _, url_b = stack.facade(name="facade-b")
        async with handshake_client(url_a) as (client_a, heard_a), stateless_client(url_b) as (_, heard_b):
            # The SDK opens the GET stream on its own, a moment after the handshake.
            await eventually(lambda: has_open_streams(url_a), "the SDK's GET stream to open", seconds=10)
            assert TOOL not in await tool_names(client_a)
            yield stack, heard_a, heard_b, client_a


async def both_told(heard_a: Heard, heard_b: Heard, since: float, seconds: float) -> tuple[float, float]:
    return await asyncio.gather(heard_a.next_after(since, seconds), heard_b.next_after(since, seconds))


async def test_a_new_workers_tool_and_its_leaving_reach_clients_of_both_replicas_in_both_eras(tmp_path):
    async with two_replicas_listening(tmp_path) as (stack, heard_a, heard_b, client_a):
        started = time.monotonic()
        worker = start_new_tool_worker(stack, "newcomer")
        joined = await both_told(heard_a, heard_b, started, WITHIN)
        print(
            f"\nworker start -> list_changed: handshake (facade A) {joined[0]:.3f} s, "
            f"stateless (facade B) {joined[1]:.3f} s"
        )
        assert TOOL in await tool_names(client_a)
        assert worker.alive()

        stopped = time.monotonic()
        worker.process.send_signal(signal.SIGTERM)
        left = await both_told(heard_a, heard_b, stopped, WITHIN)
        print(f"worker SIGTERM -> list_changed: handshake {left[0]:.3f} s, stateless {left[1]:.3f} s")
        assert TOOL not in await tool_names(client_a)
        # One join and one leave: each told once to each client.
        assert (len(heard_a.times), len(heard_b.times)) == (2, 2)


async def test_a_stopping_facade_ends_its_streams_gracefully_and_at_once(tmp_path):
    with running_stack(tmp_path) as stack:
        facade, url = stack.facade()
        async with (
            handshake_client(url),
            mcp.Client(url, mode="2026-07-28") as client,
            client.listen(tools_list_changed=True) as subscription,
        ):
            await eventually(lambda: has_open_streams(url), "the SDK's GET stream to open", seconds=10)
            stopping = time.monotonic()
            exit_code = await asyncio.to_thread(facade.terminate)
            took = time.monotonic() - stopping
            # The graceful end: the subscription's result, not a dropped stream (SubscriptionLost).
            async with asyncio.timeout(5):
                events = [event async for event in subscription]
        assert exit_code == 0, facade.output()
        assert events == []
        # Open streams do not hold the server until its 10 s shutdown timeout.
        assert took < 5, f"the facade took {took:.1f} s to stop"


@pytest.mark.slow
async def test_a_killed_workers_tool_is_told_gone_once_its_heartbeat_expires(tmp_path):
    async with two_replicas_listening(tmp_path) as (stack, heard_a, heard_b, client_a):
        started = time.monotonic()
        worker = start_new_tool_worker(stack, "doomed")
        joined = await both_told(heard_a, heard_b, started, WITHIN)
        print(f"\nworker start -> list_changed: handshake {joined[0]:.3f} s, stateless {joined[1]:.3f} s")

        killed = time.monotonic()
        worker.kill()  # SIGKILL: no leave, no announcement; its registry entry lapses
        expiry = contract.WORKER_TTL_SECONDS
        gone = await both_told(heard_a, heard_b, killed, expiry + WITHIN)
        print(
            f"worker SIGKILL -> list_changed: handshake {gone[0]:.3f} s, stateless {gone[1]:.3f} s "
            f"(its entry lives {expiry:g} s from its last heartbeat)"
        )
        # Not before the entry could have lapsed: the last heartbeat was at most HEARTBEAT_SECONDS
        # before the kill.
        assert min(gone) > expiry - contract.HEARTBEAT_SECONDS - 0.5
        assert TOOL not in await tool_names(client_a)
