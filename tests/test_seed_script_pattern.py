"""The seed's script pattern still works: a separate script that POSTs `{"tool", "params"}` to
/mcp and reads `{"tool", "result"}`, run as its own process against the facade and workers as
real processes on a real redis-server.

The seed used `requests`; this copy uses aiohttp (what this project installs), same requests.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
from fake_open_meteo import FakeOpenMeteo
from real_processes import running_stack

pytestmark = pytest.mark.redis_server

SEED_SCRIPT = textwrap.dedent(
    """
    import asyncio
    import json
    import os

    import aiohttp

    MCP_URL = os.environ.get("MCP_URL", "http://localhost:8000/mcp")


    async def call_tool(session, tool, params):
        async with session.post(MCP_URL, json={"tool": tool, "params": params}) as response:
            return response.status, await response.json()


    async def main():
        async with aiohttp.ClientSession() as session:
            for tool, params in [
                ("weather", {"city": "Delhi"}),
                ("add", {"a": 15, "b": 27}),
                ("subtract", {"a": 15, "b": 27}),
            ]:
                status, body = await call_tool(session, tool, params)
                print(status, json.dumps(body, ensure_ascii=False))


    asyncio.run(main())
    """
)


async def test_a_script_posting_tool_and_params_gets_the_seed_answers(tmp_path: Path):
    script = tmp_path / "seed_client.py"
    script.write_text(SEED_SCRIPT)
    async with FakeOpenMeteo() as weather_api:
        with running_stack(
            tmp_path,
            **weather_api.env,
        ) as stack:
            _, url = stack.facade()
            stack.worker("weather-1", "--tools", "weather")
            stack.worker("add-1", "--tools", "add")
            await asyncio.to_thread(stack.wait_for_workers, "weather-1", "add-1")

            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(script),
                # `localhost`, as the seed's script had it.
                env={**os.environ, "MCP_URL": url.replace("127.0.0.1", "localhost")},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(process.communicate(), 60)

    assert (process.returncode, err.decode()) == (0, "")
    weather, add, unknown = out.decode().splitlines()
    status, body = weather.split(" ", 1)
    assert status == "200"
    assert json.loads(body)["tool"] == "weather"
    assert json.loads(body)["result"]["city"] == "Delhi"
    assert json.loads(body)["result"]["temperature"] == 31.4
    assert add == '200 {"tool": "add", "result": {"a": 15, "b": 27, "sum": 42}}'
    assert unknown == '400 {"error": "Unknown tool"}'
