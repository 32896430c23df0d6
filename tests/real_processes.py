"""Real parts for end-to-end tests: a redis-server of the test's own, facade and worker processes.

Never the machine's shared Redis on 6379: every server here listens on a free port in a temp dir.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import redis as redis_sync

from workers import contract

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def seed_post(url: str, tool: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """One call in the seed's own format: its HTTP status and JSON body."""
    payload = {"tool": tool, "params": params}
    async with aiohttp.ClientSession() as session, session.post(url, json=payload) as response:
        return response.status, await response.json()


def children_of(pid: int) -> list[int]:
    """The pids of a process's children (Linux)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def redis_server_binary() -> str:
    """The redis-server to use, or skip (fail when TOOLQ_REQUIRE_REDIS=1)."""
    binary = shutil.which("redis-server")
    if binary is None:
        import pytest  # noqa: PLC0415 - the benchmark suite shares this module, without pytest

        reason = "redis-server is not installed (apt-get install redis-server); end-to-end tests need it"
        if os.environ.get("TOOLQ_REQUIRE_REDIS") == "1":
            pytest.fail(reason + " and TOOLQ_REQUIRE_REDIS=1")
        pytest.skip(reason)
    return binary


def live_workers(redis_url: str) -> set[str]:
    """Worker ids whose registry entry is live in the Redis at `redis_url`."""
    client = redis_sync.Redis.from_url(redis_url)
    try:
        now_ms = int(time.time() * 1000)
        return {m.decode() for m in client.zrangebyscore(contract.WORKERS_LIVE, now_ms, "+inf")}
    finally:
        client.close()


class RedisServer:
    def __init__(self, directory: Path, *extra_args: str):
        """`extra_args` are more redis-server options, e.g. "--maxmemory", "2mb"."""
        self.binary = redis_server_binary()
        self.directory = directory
        self.port = free_port()
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    #: How clients reach it: set `userinfo` ("user:password@") for a server that wants a
    #: password, `scheme` "rediss" and `query` ("?ssl_ca_certs=...") for one that speaks TLS.
    scheme = "redis"
    userinfo = ""
    query = ""

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.userinfo}127.0.0.1:{self.port}/0{self.query}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--logfile", str(self.directory / "redis.log"),
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: port_open(self.port), 10, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


class Service:
    """A facade or worker process with its output captured to a file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM and wait: the exit code of a clean shutdown."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        self._log.close()


class Stack:
    """Starts services against one redis-server; everything is stopped at the end."""

    def __init__(self, redis: RedisServer, log_dir: Path, extra_env: dict[str, str] | None = None):
        self.redis = redis
        self.log_dir = log_dir
        self.services: list[Service] = []
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("TOOLQ_", "ANTHROPIC_", "REDIS_"))
        }
        self.env.update({"REDIS_URL": redis.url, "PYTHONUNBUFFERED": "1", **(extra_env or {})})

    def start(self, name: str, args: list[str], **env: str) -> Service:
        service = Service(name, args, {**self.env, **env}, self.log_dir)
        self.services.append(service)
        return service

    def facade(self, port: int | None = None, *, name: str = "facade", **env: str) -> tuple[Service, str]:
        """Start a facade (`name` names its log: several can run) and wait until it listens."""
        port = port or free_port()
        service = self.start(name, ["-m", "facade", "--host", "127.0.0.1", "--port", str(port)], **env)
        wait_until(lambda: port_open(port) or not service.alive(), 20, f"{name} to listen")
        assert service.alive(), service.output()
        return service, f"http://127.0.0.1:{port}/mcp"

    def worker(self, name: str, *args: str, **env: str) -> Service:
        return self.start(name, ["-m", "workers", "--worker-id", name, *args], **env)

    def stop_all(self) -> None:
        for service in reversed(self.services):
            service.kill()

    def live_workers(self) -> set[str]:
        return live_workers(self.redis.url)

    def wait_for_workers(self, *names: str, timeout: float = 30) -> None:
        """Until the named workers are registered; a service that died fails with its output."""

        def ready() -> bool:
            for service in self.services:
                assert service.alive(), service.output()
            return set(names) <= self.live_workers()

        wait_until(ready, timeout, f"workers {names} to register")


@contextlib.contextmanager
def running_stack(tmp_path: Path, *redis_args: str, **extra_env: str) -> Iterator[Stack]:
    redis = RedisServer(tmp_path, *redis_args)
    redis.start()
    stack = Stack(redis, tmp_path, extra_env)
    try:
        yield stack
    finally:
        stack.stop_all()
        redis.stop()
