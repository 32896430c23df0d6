"""`python -m facade`: serve MCP at http://HOST:PORT/mcp."""

from __future__ import annotations

import sys

from aiohttp import web

from facade.app import create_app
from facade.process_group import CANNOT_LISTEN, Member, supervise
from facade.settings import FacadeSettings, SettingsError, parse_args, redact_url
from workers import tracing
from workers.event_loop import use_fast_event_loop
from workers.logs import configure as configure_logging


def serve(settings: FacadeSettings, member: Member | None = None) -> int:
    """Serve until SIGTERM or SIGINT; the exit code."""
    loop = use_fast_event_loop()
    app = create_app(settings, member=member)
    one_of = f", {member.label}" if member is not None else ""
    redis = redact_url(settings.redis_url)

    def listening(_aiohttp_banner: str) -> None:  # once the port is bound
        print(f"toolq facade: MCP at {settings.public_url} (Redis {redis}, {loop}{one_of})", flush=True)

    try:
        # handler_cancellation: a client that disconnects cancels its call, which aborts the job.
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            handler_cancellation=True,
            access_log=None,
            print=listening,
            shutdown_timeout=10,
            # The processes of one facade share the port; the kernel spreads connections over them.
            reuse_port=member is not None or None,
        )
    except OSError as exc:  # the site could not bind: nothing was served
        print(
            f"error: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}", file=sys.stderr
        )
        return CANNOT_LISTEN
    finally:
        tracing.shutdown()  # the spans not exported yet
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        settings = parse_args(argv)
    except SettingsError as exc:
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return 2
    refusal = settings.check_exposure()
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    member = Member.from_env()
    if member is None and settings.processes > 1:
        # The supervisor serves nothing itself: its members log and trace.
        print(f"toolq facade: {settings.processes} processes on {settings.public_url}", flush=True)
        return supervise(sys.argv[1:] if argv is None else argv, settings.processes)
    configure_logging(settings.log_level, settings.log_format)
    tracing.setup("toolq-facade")
    return serve(settings, member)


if __name__ == "__main__":
    sys.exit(main())
