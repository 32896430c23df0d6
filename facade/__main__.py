"""`python -m facade`: serve MCP at http://HOST:PORT/mcp."""

from __future__ import annotations

import sys

from aiohttp import web

from facade.app import create_app
from facade.settings import FacadeSettings, SettingsError, parse_args, redact_url
from workers import tracing
from workers.event_loop import use_fast_event_loop
from workers.logs import configure as configure_logging


def serve(settings: FacadeSettings) -> None:
    loop = use_fast_event_loop()
    app = create_app(settings)
    print(
        f"toolq facade: MCP at {settings.public_url} (Redis {redact_url(settings.redis_url)}, {loop})",
        flush=True,
    )
    # handler_cancellation: a client that disconnects cancels its call, which aborts the job.
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        handler_cancellation=True,
        access_log=None,
        print=None,
        shutdown_timeout=10,
    )
    tracing.shutdown()  # the spans not exported yet


def main(argv: list[str] | None = None) -> int:
    try:
        settings = parse_args(argv)
    except SettingsError as exc:
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    tracing.setup("toolq-facade")
    refusal = settings.check_exposure()
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
