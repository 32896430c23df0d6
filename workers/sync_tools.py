"""Plain-`def` tools run in a pool of child processes, where a timeout or a cancel can end them.

A thread cannot be stopped: a sync tool past its timeout would run on in it, and a few such
calls would use up every thread. A child process can be: the pool (pebble) terminates the one
running a call that timed out or was cancelled and starts a fresh one. The child is forked from
the worker, so it has the tools' modules loaded already; the call travels to it by module and
tool name, with the validated arguments (a local pipe, never Redis).
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import signal
from typing import TYPE_CHECKING, Any

from pebble import ProcessExpired, ProcessPool

if TYPE_CHECKING:
    from workers.definition import ToolDefinition

__all__ = ["SyncToolRunner", "ToolProcessDied"]


class ToolProcessDied(Exception):
    """The child process running a sync tool ended without an answer (exit, crash, kill)."""


def forget_the_worker_s_signals() -> None:
    """In a new child: signals are its own, not the worker's.

    The fork inherits the worker's signal handling, including the event loop's wake-up fd: a
    SIGTERM that ends an overrunning child would otherwise reach the worker's loop through it,
    and the worker would start shutting down.
    """
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)


def call_in_child(module: str, name: str, kwargs: dict[str, Any]) -> Any:
    """In the child: find the tool by its module and name, and run its function."""
    from workers.definition import ToolDefinition  # noqa: PLC0415 - the child's own import

    for value in vars(importlib.import_module(module)).values():
        if isinstance(value, ToolDefinition) and value.name == name:
            return value.fn(**kwargs)
    raise LookupError(f"no tool {name!r} in module {module!r}")


class SyncToolRunner:
    """The worker's pool of child processes for sync tools, started at the first sync call."""

    def __init__(self, processes: int):
        self.processes = processes
        self._pool: ProcessPool | None = None

    async def run(self, definition: ToolDefinition, kwargs: dict[str, Any]) -> Any:
        """The tool function's return value; cancelling this (a timeout, an abort) ends the child."""
        if self._pool is None:
            self._pool = ProcessPool(
                max_workers=self.processes,
                initializer=forget_the_worker_s_signals,
                context=multiprocessing.get_context("fork"),
            )
        future = self._pool.schedule(call_in_child, (definition.fn.__module__, definition.name, kwargs))
        try:
            return await asyncio.wrap_future(future)
        except ProcessExpired as exc:
            raise ToolProcessDied(f"exit code {exc.exitcode}") from exc
        except asyncio.CancelledError:
            future.cancel()  # type: ignore[no-untyped-call]  # pebble ends the child running it
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.stop()  # type: ignore[no-untyped-call]
            self._pool.join(timeout=5)
            self._pool = None
