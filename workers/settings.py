"""Worker process settings: one validated dataclass, filled from the environment, then flags.

A value that cannot be served (`TOOLQ_CONCURRENCY=0`, `TOOLQ_JOB_LEASE_SECONDS=abc`, a negative
duration) is a SettingsError at start-up that names the variable, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import asdict, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

from arq.connections import RedisSettings
from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: TLS options a `rediss://` URL may carry in its query, as redis-py reads them for the facade.
TLS_OPTIONS = ("ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs", "ssl_check_hostname")


def redis_settings(url: str) -> RedisSettings:
    """arq's settings for a Redis URL: user, password and database as arq reads them, plus the
    TLS options of a `rediss://` URL's query (`?ssl_ca_certs=/path/ca.pem`), which arq's own
    from_dsn drops, so that workers and facade connect to the same Redis the same way."""
    settings = RedisSettings.from_dsn(url)
    query = parse_qs(urlsplit(url).query)
    tls: dict[str, Any] = {name: query[name][0] for name in TLS_OPTIONS if name in query}
    if "ssl_check_hostname" in tls:
        tls["ssl_check_hostname"] = tls["ssl_check_hostname"].lower() in ("1", "true", "yes")
    return replace(settings, **tls)


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process may use: those its affinity allows, fewer when a cgroup (v2) quota
    (a container's `cpus`, a pod's CPU limit) allows less; os.cpu_count() says the host's."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2, or no limit
    return cpus


def _names(value: str | None) -> tuple[str, ...] | None:
    names = tuple(name.strip() for name in (value or "").split(",") if name.strip())
    return names or None


def environment_values(
    environ: Mapping[str, str],
    variables: Mapping[str, str],
    lists: frozenset[str],
    split: Callable[[str], Any],
) -> dict[str, Any]:
    """The settings `variables` (field -> variable) name in `environ`; unset and empty ones are
    left out (they keep their defaults); list settings are `split`; a log level is upper-cased."""
    values: dict[str, Any] = {}
    for field_name, variable in variables.items():
        raw = environ.get(variable)
        if raw:
            values[field_name] = split(raw) if field_name in lists else raw.strip()
    if "log_level" in values:
        values["log_level"] = values["log_level"].upper()
    if "log_format" in values:
        values["log_format"] = values["log_format"].lower()
    return values


class SettingsError(ValueError):
    """Settings that cannot be served, said in the words of the variables that were set."""


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class WorkerSettings:
    """Every setting of a worker, checked when made: a bad value is a clear error at start-up."""

    redis_url: str = DEFAULT_REDIS_URL
    #: Tool names to serve; None means every tool found.
    tools: tuple[str, ...] | None = None
    #: Importable modules (or packages) to look for tools in, besides workers/tools.
    tool_modules: tuple[str, ...] = ()
    #: The pool's name decides its queue; workers of one pool share it. Default: the tool names.
    pool: str | None = None
    #: Jobs this process runs at once (arq's max_jobs).
    concurrency: Annotated[int, Field(ge=1)] = 50
    #: The largest result (JSON bytes) a call may return; a larger one is a clear tool error.
    max_result_bytes: Annotated[int, Field(ge=1024)] = 4 * 1024 * 1024
    #: Child processes that run plain-`def` tools (where a timeout can end them); calls beyond
    #: this many wait for one, within their timeout.
    sync_processes: Annotated[int, Field(ge=1)] = field(default_factory=lambda: max(2, usable_cpus()))
    #: Seconds a SIGTERM waits for running jobs before handing them back to the queue.
    drain_seconds: Annotated[float, Field(ge=0)] = 30.0
    #: Seconds between safety-net polls of an idle pool's queue (jobs arrive on the ready list;
    #: the poll finds what it lost). While the queue holds jobs the poll comes every 2 s at most.
    idle_poll_seconds: Annotated[float, Field(gt=0)] = 5.0
    #: A running job's claim lasts this long unless its worker renews it (every third of it): a
    #: job whose worker died is picked up again this soon (idempotent tools run again; others
    #: fail with a clear error) instead of after arq's job timeout + 10 s.
    lease_seconds: Annotated[float, Field(ge=1)] = 10.0
    worker_id: Annotated[str, Field(min_length=1)] = field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    #: `text` (readable lines) or `json` (one object per line).
    log_format: Literal["text", "json"] = "text"
    #: One log line per job at INFO (job, tool, outcome, queue wait, run time).
    log_calls: bool = True
    #: Record metrics (Prometheus, and the recent figures `toolq status` reads).
    metrics: bool = True
    #: Serve Prometheus metrics at http://metrics_host:metrics_port/metrics; 0: not served.
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0
    metrics_host: str = "127.0.0.1"

    def pool_name(self, served: list[str]) -> str:
        return self.pool or "+".join(sorted(served))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> WorkerSettings:
        """The settings the environment names (unset and empty variables keep the defaults)."""
        return checked(environment_values(environ, ENVIRONMENT, LISTS, _names))


#: The environment variable of each setting.
ENVIRONMENT = {
    "redis_url": "REDIS_URL",
    "tools": "TOOLQ_TOOLS",
    "tool_modules": "TOOLQ_TOOL_MODULES",
    "pool": "TOOLQ_POOL",
    "concurrency": "TOOLQ_CONCURRENCY",
    "max_result_bytes": "TOOLQ_MAX_RESULT_BYTES",
    "sync_processes": "TOOLQ_SYNC_PROCESSES",
    "drain_seconds": "TOOLQ_DRAIN_SECONDS",
    "idle_poll_seconds": "TOOLQ_IDLE_POLL_SECONDS",
    "lease_seconds": "TOOLQ_JOB_LEASE_SECONDS",
    "worker_id": "TOOLQ_WORKER_ID",
    "log_level": "TOOLQ_LOG_LEVEL",
    "log_format": "TOOLQ_LOG_FORMAT",
    "log_calls": "TOOLQ_LOG_CALLS",
    "metrics": "TOOLQ_METRICS",
    "metrics_port": "TOOLQ_METRICS_PORT",
    "metrics_host": "TOOLQ_METRICS_HOST",
}
LISTS = frozenset({"tools", "tool_modules"})
#: The flag of each setting that has one, for the messages.
FLAGS = {"concurrency": "--concurrency", "drain_seconds": "--drain-seconds", "worker_id": "--worker-id"}


def checked(values: dict[str, Any]) -> WorkerSettings:
    """`WorkerSettings(**values)`, or a SettingsError naming each bad variable and why."""
    try:
        return WorkerSettings(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            name = str(error["loc"][0])
            where = (
                f"{ENVIRONMENT.get(name, name)} (or {FLAGS[name]})"
                if name in FLAGS
                else ENVIRONMENT.get(name, name)
            )
            problems.append(f"{where}={error.get('input')!r}: {error['msg']}")
        raise SettingsError("; ".join(problems)) from None


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
    flags = {
        "redis_url": args.redis_url,
        "tools": _names(args.tools) if args.tools else None,
        "tool_modules": _names(args.tool_modules) if args.tool_modules else None,
        "pool": args.pool,
        "concurrency": args.concurrency,
        "drain_seconds": args.drain_seconds,
        "worker_id": args.worker_id,
        "log_level": args.log_level.upper() if args.log_level else None,
    }
    settings = checked({**asdict(base), **{key: value for key, value in flags.items() if value is not None}})
    if args.list and args.check:
        parser.error("--list and --check exclude each other")
    return settings, args
