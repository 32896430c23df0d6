"""The command line of the local launcher: Options and parse_args."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

REDIS_MODES = ("auto", "server", "embedded")


@dataclass(frozen=True)
class Options:
    host: str
    port: int
    workers: int
    redis: str
    redis_url: str | None
    offline_weather: bool
    ready_timeout: float
    stop_timeout: float


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return number


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m facade.local_stack",
        description=(
            "Run all of toolq locally: a Redis, the workers and the facade, as child processes. "
            "Ctrl-C stops everything."
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface the facade listens on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="port of the facade; 0 picks a free one (default 8000)"
    )
    parser.add_argument(
        "--workers", type=_positive_int, default=1, help="number of worker processes (default 1)"
    )
    parser.add_argument(
        "--redis",
        choices=REDIS_MODES,
        default=None,
        help=(
            "which Redis to start: 'server' runs redis-server (must be on PATH) on a free loopback port, "
            "'embedded' serves a fake Redis (fakeredis) from this process, 'auto' picks 'server' when "
            "redis-server is installed and 'embedded' otherwise (default auto)"
        ),
    )
    parser.add_argument(
        "--redis-url",
        help=(
            "use this existing Redis instead of starting one, e.g. redis://127.0.0.1:6379/0 "
            "(the REDIS_URL environment variable is deliberately ignored)"
        ),
    )
    parser.add_argument(
        "--offline-weather",
        action="store_true",
        help="the weather tool serves sample data instead of asking Open-Meteo (a demo without internet)",
    )
    parser.add_argument(
        "--ready-timeout",
        type=_positive_float,
        default=20.0,
        help="seconds to wait for the facade to answer and list tools (default 20)",
    )
    parser.add_argument(
        "--stop-timeout",
        type=_positive_float,
        default=15.0,
        help="seconds the facade and workers get to exit after SIGTERM before they are killed (default 15)",
    )
    args = parser.parse_args(argv)
    if args.redis_url and args.redis not in (None, "auto"):
        parser.error("--redis-url and --redis server/embedded exclude each other")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    return Options(
        host=args.host,
        port=args.port,
        workers=args.workers,
        redis=args.redis or "auto",
        redis_url=args.redis_url,
        offline_weather=args.offline_weather,
        ready_timeout=args.ready_timeout,
        stop_timeout=args.stop_timeout,
    )
