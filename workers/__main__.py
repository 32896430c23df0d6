"""`python -m workers`: serve tools from workers/tools on an arq queue."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import time
from dataclasses import replace
from typing import Any

from arq.connections import create_pool
from redis.exceptions import RedisError

from workers import contract, tracing
from workers.event_loop import use_fast_event_loop
from workers.logs import configure as configure_logging
from workers.runtime import ToolWorker
from workers.settings import SettingsError, WorkerSettings, parse_args, redis_settings
from workers.tools import discover, select
from workers.weather import aclose_providers

#: How long `--check` waits for Redis before it says the worker is not alive.
CHECK_TIMEOUT_SECONDS = 3


async def check_alive(settings: WorkerSettings, pool: str) -> bool:
    """Liveness of the workers on this host (in a container: this replica) serving `pool`.

    A worker renews its registry entry every few seconds from its event loop, so a worker whose
    loop is stuck, or that lost Redis, drops out within WORKER_TTL_SECONDS.
    """
    # One attempt, briefly: a probe wants a prompt answer, and Redis gone is an answer.
    quick = replace(redis_settings(settings.redis_url), conn_retries=0, conn_timeout=CHECK_TIMEOUT_SECONDS)
    redis = await create_pool(quick, retry=0)
    try:
        now_ms = int(time.time() * 1000)
        ids = await redis.zrangebyscore(contract.WORKERS_LIVE, now_ms, "+inf")
        if not ids:
            return False
        host = socket.gethostname()
        for raw in await redis.mget([contract.worker_key(i.decode()) for i in ids]):
            if raw is None:
                continue
            info = contract.loads(raw)
            if info.get("host") == host and info.get("pool") == pool:
                return True
        return False
    finally:
        await redis.aclose()


async def close_tool_resources(_ctx: dict[str, Any]) -> None:
    await aclose_providers()


def main(argv: list[str] | None = None) -> int:
    try:
        settings, args = parse_args(argv)
    except SettingsError as exc:
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    tracing.setup("toolq-worker")
    # arq logs every job at INFO; that is per-call noise at our request rates.
    logging.getLogger("arq.worker").setLevel(max(logging.WARNING, logging.getLevelName(settings.log_level)))
    try:
        available = discover(extra_modules=settings.tool_modules)
    except (ImportError, ValueError) as exc:
        print(f"error: cannot load tools: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for name, definition in sorted(available.items()):
            print(f"{name}\t{definition.description}")
        return 0
    try:
        definitions = select(available, settings.tools)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        pool = settings.pool_name([d.name for d in definitions])
        try:
            alive = asyncio.run(check_alive(settings, pool))
        except (RedisError, OSError) as exc:
            print(f"not alive: Redis did not answer ({type(exc).__name__}: {exc})", file=sys.stderr)
            return 1
        if not alive:
            print(f"not alive: no worker of pool {pool!r} on this host renewed its entry", file=sys.stderr)
        return 0 if alive else 1
    use_fast_event_loop()
    worker = ToolWorker(definitions, settings, on_shutdown=close_tool_resources)
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
