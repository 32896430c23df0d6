"""The one-command local run (`python -m facade.local_stack`, `./toolq up`), run for real.

Each test starts the launcher as a subprocess in its own session, talks to the facade it
starts, stops it with SIGINT and checks that nothing it started is left. Whatever happens, the
`finally` kills the launcher's process group; on Linux its children also die with it
(PR_SET_PDEATHSIG), so a failing test leaves nothing running.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from real_processes import free_port, port_open

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 30.0
EXIT_TIMEOUT = 20.0
#: Settings from the developer's environment that would change what the launcher does.
SCRUBBED_ENV = ("REDIS_URL", "TOOLQ_TOKENS", "TOOLQ_HOST", "TOOLQ_PORT", "TOOLQ_TOOLS", "TOOLQ_POOL")


def process_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def post_json(url: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class Launcher:
    """`python -m facade.local_stack` as a subprocess, its output collected line by line."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "facade.local_stack", "--port", str(self.port), *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            self._queue.put(line)
        self._queue.put(None)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def mcp_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def wait_for_line(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"launcher exited before {prefix!r}:\n{self.output}")
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line starting {prefix!r} within {timeout} s:\n{self.output}")

    def pid_of(self, role: str) -> int:
        match = re.search(rf"\[toolq\] {role} started \(pid (\d+)\)", self.output)
        assert match, f"no pid for {role}:\n{self.output}"
        return int(match.group(1))

    def redis_port(self) -> int:
        match = re.search(r"\[toolq\] Redis: .* on 127\.0\.0\.1:(\d+)", self.output)
        assert match, f"no Redis line:\n{self.output}"
        return int(match.group(1))

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"launcher still running after {timeout} s:\n{self.output}") from None

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextlib.contextmanager
def launched(cwd: Path, *args: str) -> Iterator[Launcher]:
    launcher = Launcher(cwd, *args)
    try:
        yield launcher
    finally:
        launcher.kill_group()


def assert_gone(pids: list[int], ports: list[int]) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not any(process_alive(p) for p in pids) and not any(port_open(p) for p in ports):
            return
        time.sleep(0.05)
    alive = [p for p in pids if process_alive(p)]
    listening = [p for p in ports if port_open(p)]
    raise AssertionError(f"left behind: processes {alive}, listening ports {listening}")


def run_demo(tmp_path: Path, redis_mode: str) -> None:
    with launched(tmp_path, "--redis", redis_mode, "--offline-weather") as stack:
        stack.wait_for_line("toolq is ready", READY_TIMEOUT)
        assert f"claude mcp add --transport http toolq {stack.mcp_url}" in stack.output
        assert "Press Ctrl-C to stop" in stack.output
        redis_port = stack.redis_port()
        pids = [stack.pid_of("facade"), stack.pid_of("worker-1")]

        status, body = post_json(stack.mcp_url, {"tool": "add", "params": {"a": 15, "b": 27}})
        assert (status, body) == (200, {"tool": "add", "result": {"a": 15, "b": 27, "sum": 42}})
        status, body = post_json(stack.mcp_url, {"tool": "weather", "params": {"city": "Delhi"}})
        assert status == 200, body
        assert body["result"]["source"] == "offline-sample"

        stack.process.send_signal(signal.SIGINT)
        assert stack.wait_exit(EXIT_TIMEOUT) == 0, stack.output
        assert_gone(pids, [stack.port, redis_port])
        assert "[toolq] stopped" in stack.output


def test_embedded_redis(tmp_path: Path) -> None:
    run_demo(tmp_path, "embedded")


@pytest.mark.redis_server
def test_redis_server(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("TOOLQ_REQUIRE_REDIS") == "1":
            pytest.fail(reason + " and TOOLQ_REQUIRE_REDIS=1")
        pytest.skip(reason)
    run_demo(tmp_path, "server")
    # The temporary data directory is discarded on exit.
    assert [p.name for p in (tmp_path / ".toolq").iterdir()] == [".gitignore"]


def test_a_dead_worker_stops_everything(tmp_path: Path) -> None:
    with launched(tmp_path, "--redis", "embedded", "--offline-weather") as stack:
        stack.wait_for_line("toolq is ready", READY_TIMEOUT)
        facade, worker = stack.pid_of("facade"), stack.pid_of("worker-1")
        redis_port = stack.redis_port()

        os.kill(worker, signal.SIGKILL)
        assert stack.wait_exit(EXIT_TIMEOUT) == 1
        assert "worker-1 was killed by SIGKILL" in stack.output
        assert_gone([facade], [stack.port, redis_port])


def test_busy_port_is_refused_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "facade.local_stack", "--port", str(port), "--redis", "embedded"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert "started" not in result.stdout


def test_help_documents_every_flag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "facade.local_stack", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    for flag in (
        "--host",
        "--port",
        "--workers",
        "--redis ",
        "--redis-url",
        "--offline-weather",
        "--ready-timeout",
        "--stop-timeout",
    ):
        assert flag in result.stdout


def test_toolq_script_help() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "toolq"), "help"], capture_output=True, text=True, timeout=30, check=True
    )
    assert "toolq up" in result.stdout
    assert "toolq test" in result.stdout
