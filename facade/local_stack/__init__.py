"""`python -m facade.local_stack` (`toolq-local`, `./toolq up`): all of toolq on this machine.

One command, no Docker: a Redis (the one `--redis-url` names, else a temporary `redis-server`
on a free loopback port, else an embedded fake Redis served from this process), N worker
processes and the facade as child processes. Their output streams to the terminal prefixed by
their role; once the facade answers and lists tools, the MCP URL and the command to add it to
Claude Code are printed. Ctrl-C (or SIGTERM) stops the facade and workers, then Redis.

On Linux the children run in their own process groups, so that Ctrl-C reaches only this
process and the stop happens in order, and they are tied to this process's life
(PR_SET_PDEATHSIG): if it is killed outright, they are stopped too.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence

from facade.local_stack.console import error
from facade.local_stack.errors import LaunchError
from facade.local_stack.options import parse_args
from facade.local_stack.stack import LocalStack

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    stack = LocalStack(options)
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stack.on_signal)
    try:
        return stack.run()
    except LaunchError as exc:
        error(str(exc))
        return 1
    finally:
        stack.shutdown()
