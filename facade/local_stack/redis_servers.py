"""The Redis of a local run: an external one, a temporary redis-server or an embedded fake."""

from __future__ import annotations

import os
import re
import shutil
import socketserver
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Protocol

import redis

from facade.local_stack.children import Child, free_port, stop_children
from facade.local_stack.errors import LaunchError
from facade.local_stack.options import Options
from facade.settings import redact_url


class RedisHandle(Protocol):
    url: str
    description: str

    def failure(self) -> str | None:
        """Why this Redis stopped serving, or None while it serves."""

    def stop(self) -> None: ...


def redis_problem(url: str) -> str | None:
    """Why the Redis at `url` does not answer PING, or None when it does."""
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1.0)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    return None


class ExternalRedis:
    """A Redis someone else runs (`--redis-url`): checked, used, left alone."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.description = f"Redis: {redact_url(url)} (given by --redis-url; left as it is on exit)"
        deadline = time.monotonic() + 3.0
        while problem := redis_problem(url):
            if time.monotonic() >= deadline:
                raise LaunchError(
                    f"the Redis at {redact_url(url)} (from --redis-url) does not answer: {problem}"
                )
            time.sleep(0.2)

    def failure(self) -> str | None:
        return None

    def stop(self) -> None:
        pass


def redis_server_version(binary: str) -> str:
    try:
        out = subprocess.run(
            [binary, "--version"], check=False, capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "(unknown version)"
    match = re.search(r"v=(\S+)", out)
    return match.group(1) if match else "(unknown version)"


def make_data_dir() -> Path:
    """A fresh directory under ./.toolq (or the system temp dir if that is not writable)."""
    try:
        base = Path.cwd() / ".toolq"
        base.mkdir(exist_ok=True)
        ignore = base / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n")
        return Path(tempfile.mkdtemp(prefix="redis-", dir=base))
    except OSError:
        return Path(tempfile.mkdtemp(prefix="toolq-redis-"))


class RedisServer:
    """A temporary redis-server child on a free loopback port, with nothing persisted."""

    START_ATTEMPTS = 3

    def __init__(self, binary: str, width: int) -> None:
        self.data_dir = make_data_dir()
        version = redis_server_version(binary)
        for _ in range(self.START_ATTEMPTS):
            port = free_port()  # another process may take it first: then try another
            self.url = f"redis://127.0.0.1:{port}/0"
            self.child = Child("redis", self._argv(binary, port), dict(os.environ), width)
            if self._wait_until_answering(deadline=time.monotonic() + 10.0):
                self.description = (
                    f"Redis: redis-server {version} on 127.0.0.1:{port} (temporary, discarded on exit)"
                )
                return
            stop_children([self.child], timeout=5.0, hurry=threading.Event())
        shutil.rmtree(self.data_dir, ignore_errors=True)
        raise LaunchError(f"redis-server ({binary}) did not start; see its output above")

    def _argv(self, binary: str, port: int) -> list[str]:
        return [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip

    def _wait_until_answering(self, deadline: float) -> bool:
        while time.monotonic() < deadline and self.child.exit_code() is None:
            if redis_problem(self.url) is None:
                return True
            time.sleep(0.05)
        return False

    def failure(self) -> str | None:
        return None if self.child.exit_code() is None else self.child.describe_exit()

    def stop(self) -> None:
        stop_children([self.child], timeout=5.0, hurry=threading.Event())
        shutil.rmtree(self.data_dir, ignore_errors=True)


class EmbeddedRedis:
    """A fake Redis (fakeredis) served over TCP from a thread of this process: demos only."""

    def __init__(self, reason: str) -> None:
        try:
            import fakeredis  # noqa: PLC0415 - a demo extra, absent from production installs
        except ImportError as exc:
            raise RuntimeError(
                "the embedded Redis needs fakeredis: pip install 'toolq[local]' (./toolq up does), "
                "or install redis-server"
            ) from exc
        self.server = fakeredis.TcpFakeServer(("127.0.0.1", 0))
        # Without TCP_NODELAY every MULTI/EXEC waits ~44 ms for a delayed ACK.
        handler = self.server.RequestHandlerClass
        if isinstance(handler, type) and issubclass(handler, socketserver.StreamRequestHandler):
            handler.disable_nagle_algorithm = True
        self.server.daemon_threads = True  # a stuck connection must not keep us from exiting
        port: int = self.server.server_address[1]
        self.url = f"redis://127.0.0.1:{port}/0"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, name="fake-redis", daemon=True
        )
        self.thread.start()
        self.description = (
            f"Redis: embedded fake Redis (fakeredis {fakeredis.__version__}) on 127.0.0.1:{port}{reason}"
            " - for demos only; install redis-server for real use"
        )

    def failure(self) -> str | None:
        return None if self.thread.is_alive() else "the embedded fake Redis stopped"

    def stop(self) -> None:
        closer = threading.Thread(target=self._close, name="fake-redis-stop", daemon=True)
        closer.start()
        closer.join(5.0)

    def _close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_redis(options: Options, width: int) -> RedisHandle:
    if options.redis_url:
        return ExternalRedis(options.redis_url)
    binary = shutil.which("redis-server")
    if options.redis == "server":
        if binary is None:
            raise LaunchError(
                "--redis server: no redis-server on PATH. Install it (apt install redis-server, "
                "brew install redis) or use --redis embedded"
            )
        return RedisServer(binary, width)
    if options.redis == "auto" and binary is not None:
        return RedisServer(binary, width)
    return EmbeddedRedis(" (no redis-server on PATH)" if options.redis == "auto" else "")
