"""A facade of several processes on one port (TOOLQ_FACADE_PROCESSES), on real processes and a
real redis-server: the official MCP SDK client's session and the seed's plain POSTs reach
whichever process the kernel picks; /metrics answers for all of them, whichever answers; a
process that dies is started again; SIGTERM stops them all, cleanly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import mcp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from real_processes import children_of, running_stack, seed_post, wait_until

from facade.metrics_merge import merge_expositions
from facade.process_group import CANNOT_LISTEN, SOCKETS_PREFIX, sweep_stale_sockets
from facade.settings import FacadeSettings

pytestmark = pytest.mark.redis_server

PROCESSES = 2
SEED_CALLS = 40


def members_of(supervisor: int) -> set[int]:
    """The pids of the facade processes a supervisor runs."""
    return set(children_of(supervisor))


def running(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


async def seed_calls_counted(base: str) -> float:
    """toolq_calls_total of the seed era, as one scrape on a fresh connection reports it."""
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "toolq_calls_total" and sample.labels.get("era") == "seed"
    )


async def test_several_processes_serve_one_port_and_answer_metrics_for_all(tmp_path: Path):
    with running_stack(tmp_path, TOOLQ_FACADE_PROCESSES=str(PROCESSES)) as stack:
        supervisor, url = stack.facade()
        stack.worker("add-1", "--tools", "add")
        await asyncio.to_thread(stack.wait_for_workers, "add-1")
        await asyncio.to_thread(
            wait_until, lambda: len(members_of(supervisor.process.pid)) == PROCESSES, 20, "the processes"
        )
        base = url.removesuffix("/mcp")

        # Each plain POST opens a connection of its own: the kernel spreads them over the processes.
        answers = await asyncio.gather(*(seed_post(url, "add", {"a": n, "b": 1}) for n in range(SEED_CALLS)))
        assert [body["result"]["sum"] for _, body in answers] == [n + 1 for n in range(SEED_CALLS)]

        # Whichever process a scrape reaches, it counts every process's calls.
        for _ in range(8):
            assert await seed_calls_counted(base) == SEED_CALLS

        # A handshake-era session: its requests and its GET stream may meet different processes.
        async with mcp.Client(url) as client:
            for n in range(10):
                result = await client.call_tool("add", {"a": n, "b": n})
                assert result.structured_content == {"a": n, "b": n, "sum": 2 * n}

        # A process that dies is started again; the port keeps answering meanwhile.
        victim = min(members_of(supervisor.process.pid))
        os.kill(victim, signal.SIGKILL)
        await asyncio.to_thread(
            wait_until,
            lambda: len(members_of(supervisor.process.pid) - {victim}) == PROCESSES,
            20,
            "the dead process to be replaced",
        )
        assert (await seed_post(url, "add", {"a": 2, "b": 3}))[1]["result"]["sum"] == 5
        assert "process 1 exited" in supervisor.output() or "process 2 exited" in supervisor.output()

        members = members_of(supervisor.process.pid)
        assert supervisor.terminate() == 0, supervisor.output()
        assert not [pid for pid in members if running(pid)], "every process stopped with the supervisor"


def test_processes_are_a_setting():
    assert FacadeSettings.from_env({"TOOLQ_FACADE_PROCESSES": "3"}).processes == 3
    assert FacadeSettings().processes == 1


def test_merged_figures_add_up_series_by_series():
    own = b"""# HELP toolq_calls_total Tool calls.
# TYPE toolq_calls_total counter
toolq_calls_total{tool="add",era="seed",outcome="ok"} 3.0
toolq_calls_created{tool="add",era="seed",outcome="ok"} 200.0
# HELP toolq_calls_in_flight Calls waiting here.
# TYPE toolq_calls_in_flight gauge
toolq_calls_in_flight 2.0
# HELP op_seconds Durations.
# TYPE op_seconds histogram
op_seconds_bucket{le="0.001"} 1.0
op_seconds_bucket{le="+Inf"} 2.0
op_seconds_count 2.0
op_seconds_sum 0.5
"""
    sibling = b"""# HELP toolq_calls_total Tool calls.
# TYPE toolq_calls_total counter
toolq_calls_total{tool="add",era="seed",outcome="ok"} 4.0
toolq_calls_created{tool="add",era="seed",outcome="ok"} 100.0
toolq_calls_total{tool="add",era="seed",outcome="timeout"} 1.0
# HELP toolq_calls_in_flight Calls waiting here.
# TYPE toolq_calls_in_flight gauge
toolq_calls_in_flight 5.0
# HELP op_seconds Durations.
# TYPE op_seconds histogram
op_seconds_bucket{le="0.001"} 0.0
op_seconds_bucket{le="+Inf"} 1.0
op_seconds_count 1.0
op_seconds_sum 0.25
"""
    merged = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(merge_expositions([own, sibling]).decode())
        for sample in family.samples
    }
    ok = (("era", "seed"), ("outcome", "ok"), ("tool", "add"))
    timeout = (("era", "seed"), ("outcome", "timeout"), ("tool", "add"))
    assert merged[("toolq_calls_total", ok)] == 7.0
    assert merged[("toolq_calls_total", timeout)] == 1.0
    assert merged[("toolq_calls_created", ok)] == 100.0, "the earliest start, not a sum"
    assert merged[("toolq_calls_in_flight", ())] == 7.0
    assert merged[("op_seconds_bucket", (("le", "0.001"),))] == 1.0
    assert merged[("op_seconds_bucket", (("le", "+Inf"),))] == 3.0
    assert merged[("op_seconds_count", ())] == 3.0
    assert merged[("op_seconds_sum", ())] == 0.75


@pytest.mark.parametrize("processes", [1, PROCESSES])
def test_a_port_in_use_is_a_clear_error_not_a_restart_loop(tmp_path: Path, processes: int):
    with running_stack(tmp_path) as stack, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "facade", "--port", str(port), "--processes", str(processes)],
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == CANNOT_LISTEN, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
    assert "starting it again" not in done.stderr


def test_a_killed_supervisors_sockets_directory_is_swept_by_the_next(tmp_path: Path):
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead = tmp_path / f"{SOCKETS_PREFIX}{gone.stdout.strip()}-abc123"
    alive = tmp_path / f"{SOCKETS_PREFIX}{os.getpid()}-def456"
    unrelated = tmp_path / f"{SOCKETS_PREFIX}notapid"
    for directory in (dead, alive, unrelated):
        directory.mkdir()
        (directory / "member-0.sock").touch()
    sweep_stale_sockets(tmp_path)
    assert not dead.exists()
    assert alive.exists() and unrelated.exists()
