"""The references toolq is measured against, each run as a process of its own by the suite.

- `sdk`: the official MCP Python SDK's own server (MCPServer over Streamable HTTP with JSON
  responses, on uvicorn), with the same `add` and `nap` tools running in-process. It serves the
  handshake era (sessions) and the stateless era 2026-07-28 on one URL.
- `fastmcp`: FastMCP's server (when the package is installed), the same tools in-process.
- `arq`: plain arq with every default (0.5 s polls, pickle): the naive queue design.

    python -m benchmarks.reference_servers sdk --port 8123
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import uvicorn
from arq.connections import RedisSettings
from arq.worker import Worker
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

ARQ_QUEUE = "bench:arq-defaults"


class Sum(BaseModel):
    a: int | float
    b: int | float
    sum: int | float


class Napped(BaseModel):
    ms: int


async def add(a: int | float, b: int | float) -> Sum:
    """Add two numbers and return both operands with their sum."""
    return Sum(a=a, b=b, sum=a + b)


async def nap(ms: int) -> Napped:
    """Wait `ms` milliseconds without using the CPU (a call to a slow outside service)."""
    await asyncio.sleep(ms / 1000)
    return Napped(ms=ms)


def serve_sdk(port: int) -> None:
    server = MCPServer("sdk-reference")
    server.tool()(add)
    server.tool()(nap)
    # host="127.0.0.1" keeps the SDK's DNS-rebinding checks on; they allow loopback Host headers.
    app = server.streamable_http_app(json_response=True, host="127.0.0.1")
    # No access log, like toolq's facade: neither logs a line per request.
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_fastmcp(port: int) -> None:
    from fastmcp import FastMCP  # noqa: PLC0415 - optional: the suite runs without it

    server = FastMCP("fastmcp-reference")
    server.tool(add)
    server.tool(nap)
    app = server.http_app(path="/mcp", json_response=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def arq_add(_ctx: dict[str, Any], a: float, b: float) -> dict[str, float]:
    return {"a": a, "b": b, "sum": a + b}


def serve_arq(redis_url: str) -> None:
    """A plain arq worker with every default (0.5 s poll_delay, pickle)."""
    Worker(functions=[arq_add], redis_settings=RedisSettings.from_dsn(redis_url), queue_name=ARQ_QUEUE).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("system", choices=["sdk", "fastmcp", "arq"])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.system == "sdk":
        serve_sdk(args.port)
    elif args.system == "fastmcp":
        serve_fastmcp(args.port)
    else:
        serve_arq(os.environ["REDIS_URL"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
