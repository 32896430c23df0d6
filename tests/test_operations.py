"""Operating toolq, on real processes and a real redis-server: the metrics move with real calls,
the queue-depth figures show a pool that stopped taking work, `toolq status --json` says what
the registry says, and a call can be followed across processes in the JSON logs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from real_processes import ROOT, Stack, free_port, running_stack, seed_post, wait_until

from workers import contract

pytestmark = pytest.mark.redis_server


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metrics_url(mcp_url: str) -> str:
    return mcp_url.removesuffix("/mcp") + "/metrics"


def gauge(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def status_json(stack: Stack) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "facade.status", "--json", "--redis-url", stack.redis.url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_the_facade_and_worker_metrics_move_with_real_calls(tmp_path: Path):
    port = free_port()
    with running_stack(tmp_path) as stack:
        _, url = stack.facade()
        stack.worker("m-1", "--tools", "add", "--pool", "math", TOOLQ_METRICS_PORT=str(port))
        await asyncio.to_thread(stack.wait_for_workers, "m-1")
        worker_url = f"http://127.0.0.1:{port}/metrics"
        facade_before, worker_before = await scrape(metrics_url(url)), await scrape(worker_url)
        for i in range(5):
            assert (await seed_post(url, "add", {"a": i, "b": 1}))[1]["result"]["sum"] == i + 1
        facade_after, worker_after = await scrape(metrics_url(url)), await scrape(worker_url)
    calls = {"tool": "add", "era": "seed", "outcome": "ok"}
    assert (
        gauge(facade_after, "toolq_calls_total", **calls) - gauge(facade_before, "toolq_calls_total", **calls)
        == 5
    )
    jobs = {"pool": "math", "tool": "add", "outcome": "ok"}
    assert (
        gauge(worker_after, "toolq_jobs_total", **jobs) - gauge(worker_before, "toolq_jobs_total", **jobs)
        == 5
    )
    runs = "toolq_job_run_seconds_count"
    assert (
        gauge(worker_after, runs, pool="math", tool="add")
        - gauge(worker_before, runs, pool="math", tool="add")
        == 5
    )
    assert gauge(worker_after, "toolq_worker_slots", pool="math") == 50
    assert gauge(worker_after, "toolq_worker_info", pool="math", worker_id="m-1") == 1
    assert gauge(facade_after, "toolq_pool_workers", pool="math") == 1
    assert gauge(facade_after, "toolq_pool_slots", pool="math") == 50


async def test_the_queue_depth_rises_while_a_pool_takes_no_work_and_falls_when_it_does(tmp_path: Path):
    with running_stack(tmp_path) as stack:
        _, url = stack.facade()
        worker = stack.worker("paused-1", "--tools", "add", "--pool", "paused")
        await asyncio.to_thread(stack.wait_for_workers, "paused-1")
        assert (await seed_post(url, "add", {"a": 1, "b": 1}))[0] == 200
        worker.process.send_signal(signal.SIGSTOP)  # alive in the registry, takes nothing
        try:
            calls = [asyncio.create_task(seed_post(url, "add", {"a": i, "b": 0})) for i in range(6)]
            await asyncio.sleep(1.5)
            stuck = await scrape(metrics_url(url))
            report = status_json(stack)
        finally:
            worker.process.send_signal(signal.SIGCONT)
        answers = await asyncio.gather(*calls)
        await asyncio.sleep(1.2)  # the figures are at most a second old
        after = await scrape(metrics_url(url))
    # The stopped worker's pop, already waiting in Redis, took the first id: it counts as running.
    waiting = gauge(stuck, "toolq_pool_jobs_waiting", pool="paused")
    assert waiting >= 5 and waiting + gauge(stuck, "toolq_pool_jobs_running", pool="paused") == 6
    assert gauge(stuck, "toolq_pool_oldest_waiting_seconds", pool="paused") >= 1.0
    (pool,) = report["pools"]
    assert (pool["pool"], pool["waiting"], pool["queued"]) == ("paused", waiting, 6)
    assert pool["oldest_waiting_seconds"] >= 1.0
    assert [status for status, _ in answers] == [200] * 6
    assert gauge(after, "toolq_pool_jobs_waiting", pool="paused") == 0
    assert gauge(after, "toolq_pool_oldest_waiting_seconds", pool="paused") == 0


async def test_status_says_what_the_registry_says_and_counts_recent_calls(tmp_path: Path):
    with running_stack(tmp_path) as stack:
        _, url = stack.facade()
        stack.worker("s-add", "--tools", "add", "--pool", "math", "--concurrency", "7")
        stack.worker("s-weather", "--tools", "weather", "--pool", "weather", TOOLQ_WEATHER_PROVIDER="offline")
        await asyncio.to_thread(stack.wait_for_workers, "s-add", "s-weather")
        for i in range(4):
            await seed_post(url, "add", {"a": i, "b": 1})
        await seed_post(url, "add", {"a": "x", "b": 1})  # refused by the facade: never reaches a worker

        def counted() -> bool:
            tools = {t["tool"]: t for t in status_json(stack)["tools"]}
            return tools["add"]["recent"]["calls"] == 4

        # Workers write their recent figures with each heartbeat.
        await asyncio.to_thread(wait_until, counted, contract.HEARTBEAT_SECONDS * 3, "the figures in Redis")
        report = status_json(stack)
        live = stack.live_workers()
        async with (
            aiohttp.ClientSession() as session,
            session.get(url.removesuffix("/mcp") + "/status") as reply,
        ):
            from_facade = await reply.json()
    assert {w["worker_id"] for w in report["workers"]} == live == {"s-add", "s-weather"}
    pools = {p["pool"]: p for p in report["pools"]}
    assert pools["math"]["tools"] == ["add"] and pools["math"]["slots"] == 7
    assert pools["weather"]["tools"] == ["weather"]
    add = {t["tool"]: t for t in report["tools"]}["add"]
    assert add["pools"] == ["math"] and add["recent"]["errors"] == 0
    assert add["recent"]["run_ms"]["p50"] is not None
    assert {w["worker_id"] for w in from_facade["workers"]} == live
    assert [p["pool"] for p in from_facade["pools"]] == ["math", "weather"]


async def test_a_call_is_followed_across_processes_in_the_json_logs(tmp_path: Path):
    with running_stack(tmp_path, TOOLQ_LOG_FORMAT="json") as stack:
        facade, url = stack.facade()
        worker = stack.worker("logged", "--tools", "add")
        await asyncio.to_thread(stack.wait_for_workers, "logged")
        traceparent = f"00-{'ab' * 16}-{'cd' * 8}-01"
        message = {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": 2, "b": 3}, "_meta": {"traceparent": traceparent}},
        }
        headers = {"Accept": "application/json, text/event-stream", "X-Request-Id": "req-42"}
        async with aiohttp.ClientSession() as session:
            hello = {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            }
            initialize = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": hello}
            async with session.post(url, json=initialize, headers=headers) as response:
                headers["Mcp-Session-Id"] = response.headers["Mcp-Session-Id"]
                headers["MCP-Protocol-Version"] = "2025-11-25"
            async with session.post(url, json=message, headers=headers) as response:
                assert (await response.json())["result"]["structuredContent"]["sum"] == 5
        await asyncio.sleep(0.3)  # the lines reach the files

        def lines(output: str) -> list[dict[str, Any]]:
            return [json.loads(line) for line in output.splitlines() if line.startswith("{")]

        (call,) = [line for line in lines(facade.output()) if line.get("method") == "tools/call"]
        (job,) = [line for line in lines(worker.output()) if line.get("event") == "job"]
    assert call["request_id"] == "req-42" and call["jsonrpc_id"] == "7" and call["era"] == "handshake"
    assert (call["tool"], call["outcome"], call["level"], call["logger"]) == (
        "add",
        "ok",
        "INFO",
        "toolq.calls",
    )
    assert call["job_id"] == job["job_id"]
    assert call["trace_id"] == job["trace_id"] == "ab" * 16
    assert (job["tool"], job["outcome"], job["worker"]) == ("add", "ok", "logged")
    for figure in ("queue_wait_ms", "run_ms", "total_ms"):
        assert call[figure] >= 0
    assert os.environ.get("TOOLQ_LOG_FORMAT") != "json"  # the stack's setting, not the test run's
