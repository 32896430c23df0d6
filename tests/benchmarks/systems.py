"""The systems under test, each started fresh on loopback and stopped after its measurement.

- toolq: a redis-server of its own (free port, temp dir, no persistence), one facade and N
  workers in one pool, all processes (`python -m facade`, `python -m workers`);
- the official SDK's server and FastMCP's, with the same tools in-process
  (benchmarks/reference_servers.py);
- arq with its defaults, on the same kind of redis-server.

A reference is started anew for every measurement, so none carries the sessions and garbage of
an earlier one (the SDK slows down as idle sessions pile up).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis as redis_sync
from real_processes import RedisServer, Service, Stack, children_of, free_port, port_open, wait_until

TESTS = Path(__file__).resolve().parent.parent
#: The module that serves the benchmark's I/O-bound tool, importable with tests/ on PYTHONPATH.
BENCH_TOOLS = "benchmarks.bench_tools"
SDK, FASTMCP, TOOLQ, ARQ = "SDK", "FastMCP", "toolq", "arq"


def fastmcp_installed() -> bool:
    return importlib.util.find_spec("fastmcp") is not None


@dataclass
class Running:
    """One system while it runs: where to reach it and which processes to charge for it."""

    name: str
    url: str
    #: The processes that serve calls: their CPU time and memory are the system's. The first
    #: answers HTTP (the reference's one process, toolq's facade).
    pids: list[int]
    #: toolq's and arq's Redis.
    redis_url: str | None = None
    #: toolq: the pids of the facade, the workers and Redis, by role.
    roles: dict[str, list[int]] = field(default_factory=dict)
    stack: Stack | None = None

    def redis(self) -> redis_sync.Redis:
        assert self.redis_url is not None
        return redis_sync.Redis.from_url(self.redis_url)


def _env() -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


@contextlib.contextmanager
def reference(name: str) -> Iterator[Running]:
    """The SDK's or FastMCP's server, serving `add` and `nap` in-process, in a fresh process."""
    kind = {SDK: "sdk", FASTMCP: "fastmcp"}[name]
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="toolq-bench-") as tmp:
        service = Service(
            name,
            ["-m", "benchmarks.reference_servers", kind, "--port", str(port)],
            {**os.environ, **_env()},
            Path(tmp),
        )
        try:
            wait_until(lambda: port_open(port) or not service.alive(), 30, f"the {name} reference to listen")
            if not service.alive():
                raise RuntimeError(f"the {name} reference exited:\n{service.output()}")
            yield Running(name, f"http://127.0.0.1:{port}/mcp", [service.process.pid])
        finally:
            service.kill()


@contextlib.contextmanager
def toolq(
    workers: int,
    *,
    tools: str = "add",
    concurrency: int | None = None,
    env: dict[str, str] | None = None,
    facade_processes: int = 1,
) -> Iterator[Running]:
    """A redis-server, a facade (of `facade_processes` processes) and `workers` workers serving
    `tools` in one pool (`env`: more settings for all of them)."""
    with tempfile.TemporaryDirectory(prefix="toolq-bench-") as tmp:
        redis = RedisServer(Path(tmp))
        stack = Stack(redis, Path(tmp), {**_env(), **(env or {})})
        try:
            redis.start()
            facade, url = stack.facade(TOOLQ_FACADE_PROCESSES=str(facade_processes))
            facade_pids = [facade.process.pid]
            if facade_processes > 1:
                wait_until(
                    lambda: len(children_of(facade.process.pid)) == facade_processes,
                    20,
                    "the facade's processes",
                )
                facade_pids += children_of(facade.process.pid)
            names = [f"bench-{tools}-{n}" for n in range(workers)]
            flags = ["--tools", tools, "--pool", f"bench-{tools}", "--tool-modules", BENCH_TOOLS]
            if concurrency is not None:
                flags += ["--concurrency", str(concurrency)]
            started = [stack.worker(name, *flags) for name in names]
            stack.wait_for_workers(*names)
            assert redis.process is not None
            roles = {
                "facade": facade_pids,
                "workers": [worker.process.pid for worker in started],
                "redis": [redis.process.pid],
            }
            pids = [pid for group in roles.values() for pid in group]
            yield Running(TOOLQ, url, pids, redis.url, roles, stack)
        finally:
            stack.stop_all()
            redis.stop()


@contextlib.contextmanager
def arq_defaults() -> Iterator[Running]:
    """A plain arq worker with its defaults on a redis-server of its own."""
    with tempfile.TemporaryDirectory(prefix="toolq-bench-") as tmp:
        redis = RedisServer(Path(tmp))
        stack = Stack(redis, Path(tmp), _env())
        try:
            redis.start()
            worker = stack.start(ARQ, ["-m", "benchmarks.reference_servers", "arq"])
            assert redis.process is not None
            yield Running(ARQ, "", [worker.process.pid, redis.process.pid], redis.url, stack=stack)
        finally:
            stack.stop_all()
            redis.stop()
