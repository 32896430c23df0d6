"""`python -m facade.local_stack` (`toolq-local`, `./toolq up`): all of toolq on this machine.

One command, no Docker: a Redis (the one `--redis-url` names, else a temporary `redis-server`
on a free loopback port, else an embedded fake Redis served from this process), N worker
processes and the facade as child processes. Their output streams to the terminal prefixed by
their role; once the facade answers and lists tools, the MCP URL and the command to add it to
Claude Code are printed. Ctrl-C (or SIGTERM) stops the facade and workers, then Redis.

On Linux the children run in their own process groups, so that Ctrl-C reaches only this
process and the stop happens in order, and they are tied to this process's life
(PR_SET_PDEATHSIG): if it is killed outright, they are stopped too.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import Message
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Protocol, TextIO
from urllib.parse import urlsplit, urlunsplit

import fakeredis
import redis

from facade.settings import FacadeSettings

REDIS_MODES = ("auto", "server", "embedded")
PROTOCOL_VERSION = "2025-11-25"
#: The first line printed once everything answers; tests and scripts wait for it.
READY_LINE = "toolq is ready"
PR_SET_PDEATHSIG = 1

_print_lock = threading.RLock()


class LaunchError(Exception):
    """Something could not be started; the message says what and what to do."""


# --- options ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    host: str
    port: int
    workers: int
    redis: str
    redis_url: str | None
    offline_weather: bool
    ready_timeout: float
    stop_timeout: float


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return number


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m facade.local_stack",
        description=(
            "Run all of toolq locally: a Redis, the workers and the facade, as child processes. "
            "Ctrl-C stops everything."
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface the facade listens on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="port of the facade; 0 picks a free one (default 8000)"
    )
    parser.add_argument(
        "--workers", type=_positive_int, default=1, help="number of worker processes (default 1)"
    )
    parser.add_argument(
        "--redis",
        choices=REDIS_MODES,
        default=None,
        help=(
            "which Redis to start: 'server' runs redis-server (must be on PATH) on a free loopback port, "
            "'embedded' serves a fake Redis (fakeredis) from this process, 'auto' picks 'server' when "
            "redis-server is installed and 'embedded' otherwise (default auto)"
        ),
    )
    parser.add_argument(
        "--redis-url",
        help=(
            "use this existing Redis instead of starting one, e.g. redis://127.0.0.1:6379/0 "
            "(the REDIS_URL environment variable is deliberately ignored)"
        ),
    )
    parser.add_argument(
        "--offline-weather",
        action="store_true",
        help="the weather tool serves sample data instead of asking Open-Meteo (a demo without internet)",
    )
    parser.add_argument(
        "--ready-timeout",
        type=_positive_float,
        default=20.0,
        help="seconds to wait for the facade to answer and list tools (default 20)",
    )
    parser.add_argument(
        "--stop-timeout",
        type=_positive_float,
        default=15.0,
        help="seconds the facade and workers get to exit after SIGTERM before they are killed (default 15)",
    )
    args = parser.parse_args(argv)
    if args.redis_url and args.redis not in (None, "auto"):
        parser.error("--redis-url and --redis server/embedded exclude each other")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    return Options(
        host=args.host,
        port=args.port,
        workers=args.workers,
        redis=args.redis or "auto",
        redis_url=args.redis_url,
        offline_weather=args.offline_weather,
        ready_timeout=args.ready_timeout,
        stop_timeout=args.stop_timeout,
    )


# --- output ----------------------------------------------------------------------------------


def say(text: str, *, stream: TextIO | None = None) -> None:
    """Print one message whole, never interleaved with a child's line."""
    with _print_lock, contextlib.suppress(OSError, ValueError):
        print(text, file=stream or sys.stdout, flush=True)


def error(text: str) -> None:
    say(f"[toolq] error: {text}", stream=sys.stderr)


def redact(url: str) -> str:
    """The URL with any password replaced, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


# --- child processes -------------------------------------------------------------------------


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """On Linux, a pre-exec hook that makes the child get SIGTERM when this process dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the hook ran
            os._exit(1)

    return preexec


_PREEXEC = _pdeathsig_preexec()


def _pump(name: str, width: int, stream: TextIO) -> None:
    prefix = f"[{name}]".ljust(width + 2)
    for line in stream:
        say(f"{prefix} {line.rstrip()}")


class Child:
    """A child process whose output is printed line by line under its name."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], width: int) -> None:
        self.name = name
        self.process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            # Ctrl-C reaches only us, so we stop the children in order (see the module doc).
            process_group=0 if _PREEXEC is not None else None,
            # The hook only calls prctl and getppid: no lock another thread could hold.
            preexec_fn=_PREEXEC,  # noqa: PLW1509
        )
        assert self.process.stdout is not None
        self._pump = threading.Thread(
            target=_pump, args=(name, width, self.process.stdout), name=f"pump-{name}", daemon=True
        )
        self._pump.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def exit_code(self) -> int | None:
        return self.process.poll()

    def describe_exit(self) -> str:
        code = self.process.returncode
        if code is not None and code < 0:
            try:
                return f"{self.name} was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"{self.name} was killed by signal {-code}"
        return f"{self.name} exited with code {code}"

    def send(self, signum: signal.Signals) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    def finish_output(self, timeout: float = 2.0) -> None:
        self._pump.join(timeout)


def stop_children(children: Sequence[Child], timeout: float, hurry: threading.Event) -> None:
    """SIGTERM every child, wait up to `timeout` (less if `hurry` is set), then SIGKILL the rest."""
    for child in children:
        child.send(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(c.exit_code() is None for c in children):
        if hurry.is_set() or time.monotonic() >= deadline:
            for child in children:
                if child.exit_code() is None:
                    why = "Ctrl-C again" if hurry.is_set() else f"still running after {timeout:g} s"
                    say(f"[toolq] {child.name}: {why}, killing it")
                    child.send(signal.SIGKILL)
            break
        hurry.wait(0.05)
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(5)
        child.finish_output()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(host: str, port: int) -> bool:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror:
        return True  # let the facade report the bad host
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError:
            return False
    return True


# --- Redis -----------------------------------------------------------------------------------


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
        self.description = f"Redis: {redact(url)} (given by --redis-url; left as it is on exit)"
        deadline = time.monotonic() + 3.0
        while problem := redis_problem(url):
            if time.monotonic() >= deadline:
                raise LaunchError(f"the Redis at {redact(url)} (from --redis-url) does not answer: {problem}")
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


# --- talking to the facade -------------------------------------------------------------------


def toolq_version() -> str:
    try:
        return package_version("toolq")
    except PackageNotFoundError:
        return "0.0.0"


class FacadeProbe:
    """Just enough HTTP to tell whether the facade is ready and which tools it lists."""

    def __init__(self, mcp_url: str, token: str | None) -> None:
        self.mcp_url = mcp_url
        self.base_url = mcp_url.removesuffix("/mcp")
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}
        # Loopback never goes through an HTTP proxy from the environment.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _send(
        self, method: str, url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Message, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            **self.auth,
            **(headers or {}),
        }
        request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
        try:
            with self.opener.open(request, timeout=2.0) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def readyz(self) -> int:
        return self._send("GET", f"{self.base_url}/readyz")[0]

    def list_tools(self) -> list[str]:
        """Names from tools/list, over a short-lived handshake-era session."""
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "toolq-local", "version": toolq_version()},
            },
        }
        status, headers, _ = self._send("POST", self.mcp_url, init)
        session = headers.get("Mcp-Session-Id")
        if status != 200 or not session:
            raise ValueError(f"initialize answered HTTP {status}")
        session_headers = {"Mcp-Session-Id": session, "MCP-Protocol-Version": PROTOCOL_VERSION}
        try:
            notice = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            self._send("POST", self.mcp_url, notice, session_headers)
            listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
            status, _, body = self._send("POST", self.mcp_url, listing, session_headers)
            if status != 200:
                raise ValueError(f"tools/list answered HTTP {status}")
            tools = json.loads(body).get("result", {}).get("tools", [])
            return [str(tool.get("name")) for tool in tools]
        finally:
            self._send("DELETE", self.mcp_url, headers=session_headers)


PROBE_ERRORS = (OSError, http.client.HTTPException, ValueError, AttributeError)


def first_token() -> str | None:
    tokens = [t.strip() for t in os.environ.get("TOOLQ_TOKENS", "").split(",") if t.strip()]
    return tokens[0] if tokens else None


def ready_banner(mcp_url: str, tools: list[str], workers: int, authenticated: bool) -> str:
    auth_header = ' --header "Authorization: Bearer $TOKEN"' if authenticated else ""
    curl_auth = ' -H "Authorization: Bearer $TOKEN"' if authenticated else ""
    seed = '{"tool": "add", "params": {"a": 15, "b": 27}}'
    plural = "" if workers == 1 else "s"
    return "\n".join(
        [
            "",
            f"{READY_LINE}: tools {', '.join(sorted(tools))} on {workers} worker{plural}",
            f"  MCP endpoint:  {mcp_url}",
            f"  Claude Code:   claude mcp add --transport http toolq {mcp_url}{auth_header}",
            f"  Try it:        curl -s {mcp_url} -H 'Content-Type: application/json'{curl_auth} -d '{seed}'",
            "Press Ctrl-C to stop.",
            "",
        ]
    )


# --- the stack -------------------------------------------------------------------------------


class LocalStack:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.stop_requested = threading.Event()
        #: A second Ctrl-C: stop waiting for graceful exits.
        self.hurry = threading.Event()
        self.redis: RedisHandle | None = None
        self.facade: Child | None = None
        self.workers: list[Child] = []
        self.width = max(len("facade"), len("redis"), len(f"worker-{options.workers}"))

    def on_signal(self, _signum: int, _frame: object) -> None:
        # No printing here: the main thread may hold the print lock.
        if self.stop_requested.is_set():
            self.hurry.set()
        self.stop_requested.set()

    def children(self) -> list[Child]:
        return ([self.facade] if self.facade else []) + self.workers

    def run(self) -> int:
        """Start everything, announce it, and wait for Ctrl-C or a death; the exit status."""
        port = self.options.port or free_port()
        if not port_is_free(self.options.host, port):
            raise LaunchError(
                f"port {port} on {self.options.host} is in use (another toolq?); "
                "pass --port to choose another"
            )
        self.redis = start_redis(self.options, self.width)
        say(f"[toolq] {self.redis.description}")
        if self.stop_requested.is_set():
            return 0
        self._start_workers(self.redis.url)
        self._start_facade(self.redis.url, port)
        settings = FacadeSettings(host=self.options.host, port=port)
        token = first_token()
        tools = self._wait_until_ready(FacadeProbe(settings.public_url, token))
        if tools is None:
            return 0 if self.stop_requested.is_set() else 1
        say(ready_banner(settings.public_url, tools, self.options.workers, token is not None))
        return self._supervise()

    def _child_env(self, redis_url: str, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(REDIS_URL=redis_url, PYTHONUNBUFFERED="1", **extra)
        return env

    def _start_workers(self, redis_url: str) -> None:
        extra = {"TOOLQ_WEATHER_PROVIDER": "offline"} if self.options.offline_weather else {}
        env = self._child_env(redis_url, **extra)
        # Running jobs get most of the stop timeout to finish before the worker hands them back.
        drain = max(1.0, self.options.stop_timeout - 5.0)
        argv = [sys.executable, "-m", "workers", "--redis-url", redis_url, "--drain-seconds", f"{drain:g}"]
        for number in range(1, self.options.workers + 1):
            child = Child(f"worker-{number}", argv, env, self.width)
            self.workers.append(child)
            say(f"[toolq] {child.name} started (pid {child.pid})")

    def _start_facade(self, redis_url: str, port: int) -> None:
        argv = [sys.executable, "-m", "facade", "--host", self.options.host, "--port", str(port)]
        argv += ["--redis-url", redis_url]
        self.facade = Child("facade", argv, self._child_env(redis_url), self.width)
        say(f"[toolq] facade started (pid {self.facade.pid})")

    def _death(self) -> str | None:
        """What died, if anything did."""
        failure = self.redis.failure() if self.redis else None
        if failure:
            return failure
        for child in self.children():
            if child.exit_code() is not None:
                return child.describe_exit()
        return None

    def _wait_until_ready(self, probe: FacadeProbe) -> list[str] | None:
        """The tools listed once the facade is ready; None if stopped or failed (reported)."""
        deadline = time.monotonic() + self.options.ready_timeout
        last = "no answer yet"
        while not self.stop_requested.is_set():
            death = self._death()
            if death:
                error(f"{death} while starting; stopping the others (its output is above)")
                return None
            try:
                status = probe.readyz()
                if status == 200:
                    tools = probe.list_tools()
                    if tools:
                        return tools
                    last = "the facade answers but lists no tools yet (no worker registered)"
                else:
                    last = f"GET /readyz answered HTTP {status} (is Redis reachable?)"
            except PROBE_ERRORS as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                error(
                    f"not ready after {self.options.ready_timeout:g} s at {probe.mcp_url}: {last}. "
                    "The output of the facade and workers is above."
                )
                return None
            self.stop_requested.wait(0.2)
        return None

    def _supervise(self) -> int:
        while not self.stop_requested.wait(0.25):
            death = self._death()
            if death:
                error(f"{death} unexpectedly; stopping the others")
                return 1
        return 0

    def shutdown(self) -> None:
        children = self.children()
        if not children and self.redis is None:
            return  # nothing was started
        running = [c.name for c in children if c.exit_code() is None]
        if running:
            say(f"[toolq] stopping {', '.join(running)} (Ctrl-C again to kill) ...")
        # The facade first (no new calls), then the workers drain; Redis goes last.
        stop_children(children, self.options.stop_timeout, self.hurry)
        if self.redis is not None:
            self.redis.stop()
        say("[toolq] stopped")


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    stack = LocalStack(options)
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stack.on_signal)
    try:
        return stack.run()
    except LaunchError as exc:
        error(str(exc))
        return 1
    finally:
        stack.shutdown()


if __name__ == "__main__":
    sys.exit(main())
