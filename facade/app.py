"""`create_app(settings)`: the facade as an aiohttp Application that tests call directly."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web
from arq.connections import ArqRedis
from prometheus_client import CONTENT_TYPE_LATEST
from redis.asyncio import BlockingConnectionPool
from redis.exceptions import RedisError

from facade.calls import CallLimits, QueuedToolCalls
from facade.catalog import Catalog
from facade.http_edge import McpEndpoint
from facade.inflight import InflightRegistry
from facade.listeners import Listeners
from facade.metrics import FacadeMetrics
from facade.process_group import Member
from facade.protocol.core import McpCore
from facade.protocol.server_info import ServerIdentity
from facade.queue_client import QueueClient
from facade.request_log import RequestLog
from facade.security import AccessPolicy, AuthFailures, access_middleware
from facade.sessions import RedisSessionStore
from facade.settings import FacadeSettings
from facade.status import collect_status
from facade.task_notices import task_notifier, task_watch_predicate
from facade.tasks import RedisTaskStore
from facade.tool_list_changes import ToolListChanges
from workers import contract
from workers.pipelined_redis import hot_path
from workers.settings import redis_settings

log = logging.getLogger("toolq.facade")

REDIS = web.AppKey("redis", ArqRedis)
QUEUE = web.AppKey("queue", QueueClient)
CALLS = web.AppKey("calls", QueuedToolCalls)
#: The open notification streams (to_session, to_task_watchers).
LISTENERS = web.AppKey("listeners", Listeners)
METRICS = web.AppKey("metrics", FacadeMetrics)
#: Set when this facade is one process of several on one port (TOOLQ_FACADE_PROCESSES).
MEMBER = web.AppKey("member", Member)


def server_version() -> str:
    try:
        return version("toolq")
    except PackageNotFoundError:
        return "0.0.0"


def connect_redis(url: str, *, max_connections: int = 128) -> ArqRedis:
    """An ArqRedis (JSON serializer) on a bounded pool: thousands of waiting calls share it."""
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=5, socket_connect_timeout=2, health_check_interval=30
    )
    return ArqRedis(pool_or_conn=pool, job_serializer=contract.dumps, job_deserializer=contract.loads)


def create_app(
    settings: FacadeSettings, redis: ArqRedis | None = None, member: Member | None = None
) -> web.Application:
    """The facade. Pass `redis` to share a connection (tests); otherwise one is made from settings.
    `member`: which process of a facade of several this is (facade/process_group.py)."""
    owns_redis = redis is None
    client = redis if redis is not None else connect_redis(settings.redis_url)
    failures = AuthFailures(client, settings.auth_failures_per_minute)
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[access_middleware(AccessPolicy(settings), failures)],
    )
    catalog = Catalog(client)
    # A worker joined or left: the catalog reads the registry again, and listeners hear of a change.
    tool_list = ToolListChanges(catalog)
    # The hot path's scripts go over a PipelinedRedis to the same Redis, unless a client was
    # handed in (tests: an in-process fake Redis, with no socket to share).
    scripts = hot_path(redis_settings(settings.redis_url) if owns_redis else None, client)
    queue = QueueClient(client, on_registry_change=tool_list.registry_changed, scripts=scripts)
    listeners = Listeners(queue, tool_list)
    limits = CallLimits(
        max_queue_depth=settings.max_queue_depth,
        backlog_per_slot=settings.backlog_per_slot,
        principal_per_second=settings.principal_calls_per_second,
        principal_burst=settings.principal_burst,
        tool_per_second=settings.tool_calls_per_second,
        tool_burst=settings.tool_burst,
    )
    tasks = RedisTaskStore(client, queue, poll_interval_ms=int(settings.task_poll_seconds * 1000))
    # A task's watchers are those who may see it; they hear when it ends.
    listeners.may_watch_task = task_watch_predicate(tasks)
    calls = QueuedToolCalls(
        catalog,
        queue,
        max_call_seconds=settings.max_call_seconds,
        grace_seconds=settings.call_grace_seconds,
        limits=limits,
        tasks=tasks,
        task_ttl_seconds=settings.task_ttl_seconds,
        task_max_ttl_seconds=settings.task_max_ttl_seconds,
        on_task_change=task_notifier(listeners),
    )
    sessions = RedisSessionStore(
        client,
        settings.session_ttl_seconds,
        recheck_seconds=settings.session_recheck_seconds,
        per_principal=settings.max_sessions_per_principal,
    )
    core = McpCore(
        calls,
        sessions,
        InflightRegistry(queue),
        ServerIdentity(version=server_version()),
        tasks,
        page_size=settings.page_size,
        task_inline_seconds=settings.task_inline_seconds,
        discover_ttl_ms=int(settings.discover_ttl_seconds * 1000),
        list_ttl_ms=int(settings.tools_list_ttl_seconds * 1000),
        # With tokens, what a caller sees is kept out of caches shared with other callers.
        cache_scope="private" if settings.tokens else "public",
        subscriptions=listeners,
    )
    metrics = FacadeMetrics(
        client,
        catalog,
        in_flight=lambda: queue.pending,
        tasks_followed=lambda: calls.following,
        enabled=settings.metrics,
    )
    queue.on_redis_trouble = metrics.redis_trouble
    failures.on_refused = metrics.refused
    endpoint = McpEndpoint(
        core,
        calls,
        max_body_bytes=settings.max_body_bytes,
        keepalive_seconds=settings.sse_keepalive_seconds,
        listeners=listeners,
        requests=RequestLog(metrics, log_calls=settings.log_calls),
    )
    app[REDIS] = client
    app[METRICS] = metrics
    if member is not None:
        app[MEMBER] = member
        app.cleanup_ctx.append(member.metrics_site(metrics.render_own))
    app[QUEUE] = queue
    app[CALLS] = calls
    app[LISTENERS] = listeners

    async def end_streams(_app: web.Application) -> None:
        # Before the server waits for its handlers: open streams would hold it for its timeout.
        await listeners.close()

    app.on_shutdown.append(end_streams)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await queue.start()
        yield
        await listeners.close()
        await calls.close()
        await queue.close()
        await scripts.close()
        if owns_redis:
            await client.aclose(close_connection_pool=True)

    app.cleanup_ctx.append(lifecycle)
    app.router.add_route("*", "/mcp", endpoint.dispatch)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/status", status_page)
    return app


async def metrics_page(request: web.Request) -> web.Response:
    """Prometheus' text format (behind the tokens when they are set, like /mcp); in a facade of
    several processes, the figures of all of them."""
    member = request.app.get(MEMBER)
    siblings = await member.sibling_metrics() if member is not None else None
    body = await request.app[METRICS].render(siblings)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def status_page(request: web.Request) -> web.Response:
    """What `toolq status` shows, as JSON: pools, workers, tools, recent figures."""
    try:
        report = await collect_status(request.app[REDIS])
    except (RedisError, OSError) as exc:
        return web.json_response({"error": "unavailable", "redis": type(exc).__name__}, status=503)
    return web.json_response(report)


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process serves HTTP."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: Redis answers, so calls can be queued."""
    try:
        await request.app[REDIS].ping()
    except (RedisError, OSError) as exc:
        # An open path: say what is wrong, not where Redis is.
        return web.json_response({"status": "unavailable", "redis": type(exc).__name__}, status=503)
    return web.json_response(
        {
            "status": "ready",
            "pending_calls": request.app[QUEUE].pending,
            "open_streams": request.app[LISTENERS].open_streams,
        }
    )
