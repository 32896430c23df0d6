"""End to end on a real redis-server: the facade and workers as real processes, real clients.

The official `mcp` Python SDK client (default mode: it probes the stateless era first, gets a
400, and falls back to the handshake) and the seed's plain POST both reach tools that run in
separate worker processes.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import mcp
import pytest
from fake_open_meteo import FakeOpenMeteo
from real_processes import running_stack, seed_post, wait_until

pytestmark = pytest.mark.redis_server


async def test_official_sdk_client_and_seed_post_reach_worker_processes(tmp_path: Path):
    async with FakeOpenMeteo() as weather_api:
        with running_stack(
            tmp_path,
            **weather_api.env,
        ) as stack:
            facade, url = stack.facade()
            stack.worker("add-1", "--tools", "add")
            stack.worker("add-2", "--tools", "add")
            await asyncio.to_thread(stack.wait_for_workers, "add-1", "add-2")

            async with mcp.Client(url) as client:
                listed = await client.list_tools()
                assert [tool.name for tool in listed.tools] == ["add"]
                result = await client.call_tool("add", {"a": 15, "b": 27})
                assert result.is_error is False
                assert result.structured_content == {"a": 15, "b": 27, "sum": 42}

                # A worker with a new tool, started now, shows up without restarting anything.
                stack.worker("weather-1", "--tools", "weather")
                await asyncio.to_thread(stack.wait_for_workers, "weather-1")
                names = [tool.name for tool in (await client.list_tools()).tools]
                assert names == ["add", "weather"]
                weather = await client.call_tool("weather", {"city": "Delhi"})
                assert weather.is_error is False, weather.content
                assert weather.structured_content["city"] == "Delhi"
                assert weather.structured_content["country"] == "India"
                assert weather.structured_content["source"] == "open-meteo"
                assert isinstance(weather.structured_content["temperature"], float)
                assert weather_api.count("/v1/forecast") == 1

                unknown = await client.call_tool("weather", {"city": "Atlantis"})
                assert unknown.is_error is True
                assert "Atlantis" in unknown.content[0].text

            assert await seed_post(url, "add", {"a": 15, "b": 27}) == (
                200,
                {"tool": "add", "result": {"a": 15, "b": 27, "sum": 42}},
            )
            assert await seed_post(url, "divide", {}) == (400, {"error": "Unknown tool"})

            # Calls of one pool spread over its two worker processes.
            async with mcp.Client(url) as client:
                ran_on = set()
                for i in range(30):
                    result = await client.call_tool("add", {"a": i, "b": 1})
                    ran_on.add((result.meta or {}).get("toolq/worker"))
            assert ran_on == {"add-1", "add-2"}

            for service in stack.services:
                assert service.terminate() == 0, service.output()
            assert stack.live_workers() == set()
            assert facade.alive() is False


async def test_sigterm_lets_a_running_job_finish(tmp_path: Path):
    async with FakeOpenMeteo() as weather_api:
        weather_api.forecast_delay = 1.0
        with running_stack(
            tmp_path,
            **weather_api.env,
        ) as stack:
            _, url = stack.facade()
            worker = stack.worker("weather-1", "--tools", "weather")
            await asyncio.to_thread(stack.wait_for_workers, "weather-1")
            call = asyncio.create_task(seed_post(url, "weather", {"city": "Tokyo"}))
            started = lambda: weather_api.count("/v1/forecast") == 1  # noqa: E731
            await asyncio.to_thread(wait_until, started, 10, "the call to reach the weather API")
            exit_code = await asyncio.to_thread(worker.terminate)
            status, body = await asyncio.wait_for(call, 10)
            assert (status, body["result"]["city"]) == (200, "Tokyo")
            assert exit_code == 0, worker.output()


async def test_calls_work_again_after_redis_restarts(tmp_path: Path):
    with running_stack(tmp_path) as stack:
        _, url = stack.facade()
        stack.worker("add-1", "--tools", "add")
        await asyncio.to_thread(stack.wait_for_workers, "add-1")
        assert (await seed_post(url, "add", {"a": 1, "b": 2}))[1]["result"]["sum"] == 3

        stack.redis.stop()
        started = time.monotonic()
        status, body = await seed_post(url, "add", {"a": 1, "b": 2})
        assert status == 503, body
        assert "Redis" in body["error"] or "queue" in body["error"]
        assert time.monotonic() - started < 10

        stack.redis.start()  # same port, empty: the registry and queues must be rebuilt
        await asyncio.to_thread(stack.wait_for_workers, "add-1")
        deadline = time.monotonic() + 15
        while True:
            status, body = await seed_post(url, "add", {"a": 20, "b": 22})
            if status == 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert (status, body) == (200, {"tool": "add", "result": {"a": 20, "b": 22, "sum": 42}})
        for service in stack.services:
            assert service.alive(), service.output()


async def test_a_job_whose_worker_was_killed_runs_again_on_another(tmp_path: Path):
    async with FakeOpenMeteo() as weather_api:
        weather_api.forecast_delay = 60  # the first attempt hangs until its worker is killed
        with running_stack(
            tmp_path, TOOLQ_JOB_LEASE_SECONDS="2", TOOLQ_IDLE_POLL_SECONDS="0.5", **weather_api.env
        ) as stack:
            _, url = stack.facade()
            doomed = stack.worker("weather-a", "--tools", "weather", "--pool", "weather")
            await asyncio.to_thread(stack.wait_for_workers, "weather-a")
            async with mcp.Client(url) as client:
                call = asyncio.create_task(client.call_tool("weather", {"city": "Paris, France"}))
                started = lambda: weather_api.count("/v1/forecast") == 1  # noqa: E731
                await asyncio.to_thread(wait_until, started, 10, "the first attempt to reach the API")
                doomed.process.kill()  # SIGKILL: no drain, no hand-back, the claim is left behind
                weather_api.forecast_delay = 0
                stack.worker("weather-b", "--tools", "weather", "--pool", "weather")
                result = await asyncio.wait_for(call, 15)
            assert result.is_error is False, result.content
            assert result.structured_content["country"] == "France"
            assert (result.meta or {}).get("toolq/worker") == "weather-b"
            assert weather_api.count("/v1/forecast") == 2


def run_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m workers --check`, the probe compose and Kubernetes run."""
    return subprocess.run(
        [sys.executable, "-m", "workers", "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_liveness_check_knows_its_pool_and_answers_at_once_without_redis(tmp_path: Path):
    with running_stack(tmp_path) as stack:
        env = {**stack.env, "TOOLQ_TOOLS": "add"}
        assert run_check(env).returncode == 1, "no worker yet"
        stack.worker("add-1", "--tools", "add")
        await asyncio.to_thread(stack.wait_for_workers, "add-1")
        alive = run_check(env)
        assert alive.returncode == 0, alive.stderr
        other = run_check({**env, "TOOLQ_TOOLS": "weather"})
        assert other.returncode == 1, "another pool's worker is not this pool's"
        assert "no worker of pool" in other.stderr

        stack.redis.stop()
        gone = run_check(env)
        assert gone.returncode == 1
        assert "Redis did not answer" in gone.stderr
        assert "Traceback" not in gone.stderr
        assert "retries remaining" not in gone.stderr, "a probe tries once (arq retries 5 times, 1 s apart)"
