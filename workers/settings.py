"""Worker process settings: one dataclass, filled from the environment and then from flags."""

from __future__ import annotations

import argparse
import os
import socket
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from arq.connections import RedisSettings

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: TLS options a `rediss://` URL may carry in its query, as redis-py reads them for the facade.
_TLS_OPTIONS = ("ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs", "ssl_check_hostname")


def redis_settings(url: str) -> RedisSettings:
    """arq's settings for a Redis URL: user, password and database as arq reads them, plus the
    TLS options of a `rediss://` URL's query (`?ssl_ca_certs=/path/ca.pem`), which arq's own
    from_dsn drops, so that workers and facade connect to the same Redis the same way."""
    settings = RedisSettings.from_dsn(url)
    query = parse_qs(urlsplit(url).query)
    tls: dict[str, Any] = {name: query[name][0] for name in _TLS_OPTIONS if name in query}
    if "ssl_check_hostname" in tls:
        tls["ssl_check_hostname"] = tls["ssl_check_hostname"].lower() in ("1", "true", "yes")
    return replace(settings, **tls)


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def _names(value: str | None) -> tuple[str, ...] | None:
    names = tuple(name.strip() for name in (value or "").split(",") if name.strip())
    return names or None


@dataclass(frozen=True)
class WorkerSettings:
    redis_url: str = DEFAULT_REDIS_URL
    #: Tool names to serve; None means every tool found.
    tools: tuple[str, ...] | None = None
    #: Importable modules (or packages) to look for tools in, besides workers/tools.
    tool_modules: tuple[str, ...] = ()
    #: The pool's name decides its queue; workers of one pool share it. Default: the tool names.
    pool: str | None = None
    #: Jobs this process runs at once (arq's max_jobs).
    concurrency: int = 50
    #: The largest result (JSON bytes) a call may return; a larger one is a clear tool error.
    max_result_bytes: int = 4 * 1024 * 1024
    #: Child processes that run plain-`def` tools (where a timeout can end them); calls beyond
    #: this many wait for one, within their timeout.
    sync_processes: int = field(default_factory=lambda: max(2, os.cpu_count() or 2))
    #: Seconds a SIGTERM waits for running jobs before handing them back to the queue.
    drain_seconds: float = 30.0
    #: Seconds between safety-net polls of the queue; jobs normally arrive by wake-up.
    idle_poll_seconds: float = 2.0
    #: Seconds between arq health-check writes (the liveness probe reads that key).
    health_check_seconds: float = 10.0
    #: A running job's claim lasts this long unless its worker renews it (every third of it): a
    #: job whose worker died is picked up again this soon (idempotent tools run again; others
    #: fail with a clear error) instead of after arq's job timeout + 10 s.
    lease_seconds: float = 10.0
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    log_level: str = "INFO"

    def pool_name(self, served: list[str]) -> str:
        return self.pool or "+".join(sorted(served))

    @classmethod
    def from_env(cls) -> WorkerSettings:
        tools = os.environ.get("TOOLQ_TOOLS")
        return cls(
            redis_url=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
            tools=_names(tools),
            tool_modules=_names(os.environ.get("TOOLQ_TOOL_MODULES")) or (),
            pool=os.environ.get("TOOLQ_POOL") or None,
            concurrency=int(os.environ.get("TOOLQ_CONCURRENCY", "50")),
            sync_processes=int(os.environ.get("TOOLQ_SYNC_PROCESSES") or max(2, os.cpu_count() or 2)),
            max_result_bytes=int(os.environ.get("TOOLQ_MAX_RESULT_BYTES", str(4 * 1024 * 1024))),
            drain_seconds=_env_float("TOOLQ_DRAIN_SECONDS", 30.0),
            idle_poll_seconds=_env_float("TOOLQ_IDLE_POLL_SECONDS", 2.0),
            health_check_seconds=_env_float("TOOLQ_HEALTH_CHECK_SECONDS", 10.0),
            lease_seconds=_env_float("TOOLQ_JOB_LEASE_SECONDS", 10.0),
            worker_id=os.environ.get("TOOLQ_WORKER_ID") or f"{socket.gethostname()}-{os.getpid()}",
            log_level=os.environ.get("TOOLQ_LOG_LEVEL", "INFO").upper(),
        )


def parse_args(argv: list[str] | None = None) -> tuple[WorkerSettings, argparse.Namespace]:
    base = WorkerSettings.from_env()
    parser = argparse.ArgumentParser(
        prog="python -m workers",
        description="Run a toolq worker: serve tools from workers/tools on an arq queue in Redis.",
    )
    parser.add_argument(
        "--tools",
        help="comma-separated tool names to serve (env TOOLQ_TOOLS; default: all tools)",
    )
    parser.add_argument(
        "--tool-modules",
        help="comma-separated importable modules or packages with more tools (env TOOLQ_TOOL_MODULES)",
    )
    parser.add_argument(
        "--pool",
        help="pool name; workers of one pool share a queue (env TOOLQ_POOL; default: the tool names)",
    )
    parser.add_argument("--redis-url", help=f"Redis URL (env REDIS_URL; default {DEFAULT_REDIS_URL})")
    parser.add_argument(
        "--concurrency", type=int, help="jobs run at once by this process (env TOOLQ_CONCURRENCY; default 50)"
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        help="on SIGTERM, seconds to let running jobs finish before handing them back (default 30)",
    )
    parser.add_argument("--worker-id", help="name in the registry and in results (default host-pid)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING (env TOOLQ_LOG_LEVEL; default INFO)")
    parser.add_argument("--list", action="store_true", help="print the available tools and exit")
    parser.add_argument(
        "--check",
        action="store_true",
        help="liveness probe: exit 0 if a worker of this pool on this host is live in the registry",
    )
    args = parser.parse_args(argv)
    settings = WorkerSettings(
        redis_url=args.redis_url or base.redis_url,
        tools=_names(args.tools) if args.tools else base.tools,
        tool_modules=(_names(args.tool_modules) or ()) if args.tool_modules else base.tool_modules,
        pool=args.pool or base.pool,
        concurrency=args.concurrency if args.concurrency is not None else base.concurrency,
        sync_processes=base.sync_processes,
        max_result_bytes=base.max_result_bytes,
        drain_seconds=args.drain_seconds if args.drain_seconds is not None else base.drain_seconds,
        idle_poll_seconds=base.idle_poll_seconds,
        health_check_seconds=base.health_check_seconds,
        lease_seconds=base.lease_seconds,
        worker_id=args.worker_id or base.worker_id,
        log_level=(args.log_level or base.log_level).upper(),
    )
    if settings.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if settings.sync_processes < 1:
        parser.error("TOOLQ_SYNC_PROCESSES must be at least 1")
    if settings.lease_seconds < 1:
        parser.error("TOOLQ_JOB_LEASE_SECONDS must be at least 1")
    if settings.drain_seconds < 0:
        parser.error("--drain-seconds cannot be negative")
    if args.list and args.check:
        parser.error("--list and --check exclude each other")
    return settings, args
