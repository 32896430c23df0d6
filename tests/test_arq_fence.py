"""The parts of arq that toolq relies on, so that a new arq release fails here, loudly, first.

workers/runtime.py overrides `Worker.main` and `start_jobs`, runs jobs the way arq's `run_job`
does (decoding them with `deserialize_job_raw`, recording outcomes with `serialize_result` and
arq's own exceptions) and reads and keeps the worker's state (its slots, tasks, abort set);
workers/claims.py and its scripts use arq's keys; facade/queue_client.py writes jobs with
`serialize_job`; workers/contract.py decodes results with `deserialize_result` and names two of
arq's failure messages. This test is the only one that looks inside arq on purpose: its job is
to notice when arq changes.
"""

from __future__ import annotations

import inspect

import arq.constants
import arq.jobs
import arq.worker
import pytest

from workers import contract
from workers.runtime import ToolWorker
from workers.settings import WorkerSettings
from workers.tools import discover


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("main", ["self"]),
        ("start_jobs", ["self", "job_ids"]),
        ("run_job", ["self", "job_id", "score"]),
        ("close", ["self"]),
        ("_release_sem_dec_counter_on_complete", ["self"]),
        ("handle_sig", ["self", "signum"]),
        ("handle_sig_wait_for_completion", ["self", "signum"]),
    ],
)
def test_the_worker_methods_toolq_overrides_or_calls_keep_their_signatures(name, expected):
    assert parameters(getattr(arq.worker.Worker, name)) == expected


def test_the_worker_state_toolq_reads_is_still_there():
    worker = ToolWorker([discover()["add"]], WorkerSettings(worker_id="fence"), handle_signals=False)
    for attribute in (
        "sem",
        "job_counter",
        "max_jobs",
        "tasks",
        "job_tasks",
        "aborting_tasks",
        "functions",
        "max_tries",
        "job_timeout_s",
        "keep_result_s",
        "jobs_complete",
        "jobs_failed",
        "jobs_retried",
        "ctx",
        "allow_pick_jobs",
        "in_progress_timeout_s",
        "poll_delay_s",
        "queue_name",
        "redis_settings",
        "job_serializer",
        "job_deserializer",
        "expires_extra_ms",
        "_job_completion_wait",
        "_pool",
    ):
        assert hasattr(worker, attribute), attribute
    assert worker.in_progress_timeout_s == WorkerSettings().lease_seconds


def test_the_job_and_result_formats_toolq_writes_and_reads():
    assert parameters(arq.jobs.serialize_job) == [
        "function_name",
        "args",
        "kwargs",
        "job_try",
        "enqueue_time_ms",
        "serializer",
    ]
    assert parameters(arq.jobs.deserialize_result) == ["r", "deserializer"]
    assert parameters(arq.jobs.serialize_result) == [
        "function",
        "args",
        "kwargs",
        "job_try",
        "enqueue_time_ms",
        "success",
        "result",
        "start_ms",
        "finished_ms",
        "ref",
        "queue_name",
        "job_id",
        "serializer",
    ]
    record = arq.jobs.serialize_result(
        "f", (), {}, 1, 0, True, {"ok": True}, 0, 1, "ref", "q", "id", serializer=contract.dumps
    )
    assert record is not None
    assert arq.jobs.deserialize_result(record, deserializer=contract.loads).result == {"ok": True}
    job = arq.jobs.serialize_job("tool:add", ({"arguments": {}},), {}, None, 5, serializer=contract.dumps)
    assert arq.jobs.deserialize_job_raw(job, deserializer=contract.loads) == (
        "tool:add",
        [{"arguments": {}}],
        {},
        None,
        5,
    )


def test_the_keys_toolq_shares_with_arq_are_arq_s_own():
    assert arq.constants.abort_jobs_ss == contract.ABORT_JOBS
    assert arq.constants.job_key_prefix == contract.JOB_KEY_PREFIX
    assert arq.constants.result_key_prefix == contract.RESULT_KEY_PREFIX
    assert arq.constants.in_progress_key_prefix == contract.IN_PROGRESS_KEY_PREFIX


def test_the_failure_messages_toolq_records_are_still_the_ones_arq_records():
    """toolq's worker records arq's own failures in arq's words (workers/runtime.py), so that
    they read the same as any arq worker's."""
    source = inspect.getsource(arq.worker.Worker.run_job)
    assert f"JobExecutionFailed('{contract.ARQ_EXPIRED}')" in source
    assert contract.ARQ_RETRIES_EXCEEDED in source
    assert "JobExecutionFailed(f'max {max_tries} retries exceeded')" in source
    assert "JobExecutionFailed(f'function {function_name!r} not found')" in source
