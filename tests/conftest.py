"""Fixtures for the fast suite: one fakeredis server shared by the facade and in-process workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import fakeredis
import pytest
from aiohttp.test_utils import TestClient
from arq.connections import ArqRedis
from mcp_http import McpHttp

from facade.app import create_app
from facade.settings import FacadeSettings
from workers import contract
from workers.definition import ToolDefinition
from workers.runtime import ToolWorker
from workers.settings import WorkerSettings
from workers.tools import discover

FAST_FACADE = FacadeSettings(call_grace_seconds=1.0, max_call_seconds=10.0)


def arq_redis(server: fakeredis.FakeServer) -> ArqRedis:
    connection = fakeredis.aioredis.FakeRedis(server=server)
    return ArqRedis(
        pool_or_conn=connection.connection_pool,
        job_serializer=contract.dumps,
        job_deserializer=contract.loads,
    )


def fake_worker(
    definitions: list[ToolDefinition], settings: WorkerSettings, server: fakeredis.FakeServer
) -> ToolWorker:
    """An in-process ToolWorker on a fake Redis server (its pool and its lease keeper's client)."""
    return ToolWorker(
        definitions,
        settings,
        redis_pool=arq_redis(server),
        handle_signals=False,
        lease_client=fakeredis.FakeRedis(server=server),
    )


@pytest.fixture
def fake_server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
async def redis(fake_server: fakeredis.FakeServer) -> AsyncIterator[ArqRedis]:
    client = arq_redis(fake_server)
    yield client
    await client.aclose()


StartWorker = Callable[..., Awaitable[ToolWorker]]


@pytest.fixture
async def start_worker(fake_server: fakeredis.FakeServer) -> AsyncIterator[StartWorker]:
    """Start an in-process ToolWorker on the shared fake Redis; stopped at teardown."""
    running: list[tuple[ToolWorker, asyncio.Task[None]]] = []
    counter = iter(range(1, 1000))

    async def start(
        tools: list[ToolDefinition] | list[str] | None = None,
        *,
        pool: str | None = None,
        worker_id: str | None = None,
        concurrency: int = 10,
        idle_poll_seconds: float = 2.0,
        lease_seconds: float = 10.0,
    ) -> ToolWorker:
        available = discover()
        definitions = [available[t] if isinstance(t, str) else t for t in (tools or sorted(available))]
        settings = replace(
            WorkerSettings(),
            pool=pool,
            worker_id=worker_id or f"test-worker-{next(counter)}",
            concurrency=concurrency,
            idle_poll_seconds=idle_poll_seconds,
            lease_seconds=lease_seconds,
            drain_seconds=0,
        )
        worker = fake_worker(definitions, settings, fake_server)
        task = asyncio.create_task(worker.main())
        running.append((worker, task))
        client = worker.pool
        for _ in range(200):
            if await client.zscore(contract.WORKERS_LIVE, settings.worker_id) is not None:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("worker did not register")
        return worker

    yield start
    for worker, task in running:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(asyncio.CancelledError):  # a job still running is cancelled
            await worker.close()


async def stop_worker(worker: ToolWorker) -> None:
    """Stop a worker the way SIGTERM does: leave the registry, then stop the loop."""
    await worker.leave()


@pytest.fixture
async def make_facade(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], redis: ArqRedis
) -> Callable[..., Awaitable[McpHttp]]:
    async def make(settings: FacadeSettings = FAST_FACADE, **overrides: Any) -> McpHttp:
        app = create_app(replace(settings, **overrides), redis=redis)
        return McpHttp(await aiohttp_client(app))

    return make


@pytest.fixture
async def mcp(make_facade: Callable[..., Awaitable[McpHttp]], start_worker: StartWorker) -> McpHttp:
    """A facade with one worker serving every tool, and an initialized session."""
    await start_worker()
    client = await make_facade()
    await client.initialize()
    return client
