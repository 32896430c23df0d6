"""The benchmark's own tool for toolq's workers: an I/O-bound call of a given length.

Served with `python -m workers --tools nap --tool-modules benchmarks.bench_tools` (tests/ on
PYTHONPATH); never in the default tool set. The references serve the same tool in-process
(benchmarks/reference_servers.py), and every system serves `add` as toolq does.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from workers.definition import tool


class Napped(BaseModel):
    ms: int


@tool(idempotent=True, timeout=30.0)
async def nap(ms: int) -> Napped:
    """Wait `ms` milliseconds without using the CPU (a call to a slow outside service)."""
    await asyncio.sleep(ms / 1000)
    return Napped(ms=ms)
