"""The benchmark suite at its smallest size, so that it cannot rot.

Benchmarks are not tests: nothing here is timed or compared. This runs `./toolq bench --quick`
(the same `python -m benchmarks`) end to end, against real processes, and checks that every
scenario measured every system without an error and that the report, the JSON and the plots
were written, and can be written again from the JSON alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from real_processes import ROOT, redis_server_binary

pytestmark = [pytest.mark.redis_server, pytest.mark.slow]

SECTIONS = (
    "## Targets",
    "## Sequential latency",
    "## Throughput by callers",
    "## Throughput by workers in one pool",
    "## An I/O-bound tool",
    "## Idle cost",
    "## Memory",
    "## A short call from a client that takes tasks",
    "## arq with its defaults",
    "## The client's own cost",
)
PLOTS = ("latency_distribution", "throughput_by_callers", "throughput_by_workers")


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def errors_in(figures: object) -> int:
    """Every `errors` and `failed` count anywhere in a scenario's figures."""
    if isinstance(figures, dict):
        own = sum(int(v) for k, v in figures.items() if k in ("errors", "failed") and v is not None)
        return own + sum(errors_in(v) for k, v in figures.items() if k not in ("errors", "failed"))
    if isinstance(figures, list):
        return sum(errors_in(v) for v in figures)
    return 0


def test_the_suite_measures_every_system_and_writes_its_report(tmp_path: Path):
    redis_server_binary()
    done = bench("--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    data = json.loads((tmp_path / "benchmarks.json").read_text())
    (run,) = data["runs"]
    for scenario in ("sequential", "callers", "pools", "io", "client_cost"):
        assert run[scenario], scenario
        assert errors_in(run[scenario]) == 0, (scenario, run[scenario])
    assert set(run["sequential"]) == {*data["references"], "toolq"}
    assert run["sequential"]["toolq"]["stateless tasks"]["calls"] > 0
    assert all(figures["calls"] > 0 for figures in run["callers"]["toolq"]["handshake"].values())
    assert data["idle"]["per_idle_worker"] >= 0
    assert data["memory"]["toolq"]["failed"] == 0
    assert data["arq"]["calls"] >= 1
    assert {t["status"] for t in data["targets"]} <= {"met", "missed", "n/a"}

    report = (tmp_path / "benchmarks.md").read_text()
    for section in SECTIONS:
        assert section in report, section
    for plot in PLOTS:
        assert (tmp_path / "benchmarks" / f"{plot}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    again = tmp_path / "again"
    done = bench("--from-json", str(tmp_path / "benchmarks.json"), "--out", str(again))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (again / "benchmarks.md").read_text() == report
