"""The same stateless-era `add` calls through aiohttp's ClientSession, for one comparison only.

The suite's own client (raw_http) costs about a third of the CPU per call that aiohttp's
client does. This module measures what that difference did to the earlier benchmark, which
drove the servers through aiohttp: see the "client cost" section of docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import aiohttp

from benchmarks.mcp_client import McpEndpoint
from benchmarks.measure import Meter, Run


async def aiohttp_closed_loop(endpoint: McpEndpoint, callers: int, seconds: float, meter: Meter) -> Run:
    """`callers` closed-loop callers sharing one ClientSession, as the earlier harness did."""
    url = f"http://{endpoint.host}:{endpoint.port}{endpoint.path}"
    ids = itertools.count(1)
    headers = {**endpoint.headers, "Mcp-Method": "tools/call", "Mcp-Name": "add"}
    run = Run()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=callers + 8)) as session:

        async def call(i: int) -> float | None:
            params = {"name": "add", "arguments": {"a": i, "b": 42 - i}, "_meta": endpoint.meta}
            message = {"jsonrpc": "2.0", "id": next(ids), "method": "tools/call", "params": params}
            started = time.perf_counter()
            async with session.post(url, data=json.dumps(message), headers=headers) as response:
                body = await response.json()
            ok = (
                response.status == 200
                and body.get("result", {}).get("structuredContent", {}).get("sum") == 42
            )
            return (time.perf_counter() - started) * 1000 if ok else None

        await asyncio.gather(*(call(n) for n in range(callers)))  # open the connections
        deadline = time.perf_counter() + seconds

        async def loop(offset: int) -> None:
            i = offset
            while time.perf_counter() < deadline:
                ms = await call(i)
                if ms is None:
                    run.errors += 1
                else:
                    run.latencies_ms.append(ms)
                i += callers

        meter.start()
        started = time.perf_counter()
        await asyncio.gather(*(loop(n) for n in range(callers)))
        run.seconds = time.perf_counter() - started
    run.calls = len(run.latencies_ms)
    return meter.stop(run)
