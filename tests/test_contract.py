"""The queue contract shared by facade and workers: names, envelopes, JSON on every hop."""

from __future__ import annotations

import asyncio
from typing import Any

from arq.jobs import serialize_result

from facade.protocol import tool_calls
from workers import contract


def arq_record(success: bool, result: Any) -> bytes:
    """A result record as arq's worker writes it, with toolq's serializer."""
    record = serialize_result(
        "tool:add", ({},), {}, 1, 0, success, result, 0, 1, "ref", "q", "job-1", serializer=contract.dumps
    )
    assert record is not None
    return record


def test_job_ids_name_the_facade_that_waits():
    job_id = contract.new_job_id("f00d")
    assert contract.facade_of(job_id) == "f00d"
    assert contract.new_job_id("f00d") != job_id
    assert contract.facade_of("no-facade-in-here") is None


def test_exceptions_serialize_as_data():
    data = contract.dumps({"r": asyncio.CancelledError(), "a": (1, 2)})
    assert contract.loads(data) == {"r": {"__exception__": "CancelledError", "message": ""}, "a": [1, 2]}


def test_arq_failure_records_become_failed_results():
    record = arq_record(False, RuntimeError("boom"))
    result = contract.call_result_from_arq_record(record, "w1")
    assert result["ok"] is False
    assert result["worker"] == "w1"
    assert "RuntimeError: boom" in result["error"]["message"]


def test_a_successful_record_gives_back_the_worker_result():
    result = {"ok": True, "structured": {"sum": 2}, "worker": "w", "duration_ms": 1.0}
    assert contract.call_result_from_arq_record(arq_record(True, result)) == result


def test_a_garbled_record_is_a_failure_not_a_crash():
    assert contract.call_result_from_arq_record(b"\x80 not json")["ok"] is False


def test_a_job_that_ran_out_of_tries_says_it_may_have_taken_effect():
    record = arq_record(False, RuntimeError("max 1 retries exceeded"))
    message = contract.call_result_from_arq_record(record)["error"]["message"]
    assert "not idempotent" in message
    assert "may or may not have taken effect" in message


def test_workers_and_the_protocol_core_know_the_same_log_levels():
    assert contract.LOG_LEVELS == tool_calls.LOG_LEVELS
    for level in contract.LOG_LEVELS:
        for minimum in contract.LOG_LEVELS:
            assert contract.log_level_at_least(level, minimum) == tool_calls.log_level_at_least(
                level, minimum
            )
