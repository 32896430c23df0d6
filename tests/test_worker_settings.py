"""A worker's settings: defaults that fit where it runs."""

from __future__ import annotations

import os
from pathlib import Path

from workers.settings import WorkerSettings, usable_cpus


def test_without_a_cgroup_quota_the_cpus_are_those_the_affinity_allows(tmp_path: Path):
    assert usable_cpus(tmp_path) == len(os.sched_getaffinity(0)), "no cpu.max: no quota"
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert usable_cpus(tmp_path) == len(os.sched_getaffinity(0))


def test_a_cgroup_quota_caps_the_cpus_rounded_up(tmp_path: Path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # a container's `cpus: 1.5`
    assert usable_cpus(tmp_path) == min(2, len(os.sched_getaffinity(0)))
    (tmp_path / "cpu.max").write_text("20000 100000\n")  # a pod's 200m limit
    assert usable_cpus(tmp_path) == 1


def test_a_worker_runs_at_least_two_sync_processes_and_no_more_than_it_may_use():
    settings = WorkerSettings()
    assert settings.sync_processes == max(2, usable_cpus())
