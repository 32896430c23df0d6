"""When the set of tools changes, as this facade replica's own registry view (the catalog) sees it.

Every replica decides for itself, so a change reaches the clients of every replica without any
replica telling another: a worker that joins or leaves announces it on the registry channel
(the catalog then reads the registry again), and a worker that died without a word (SIGKILL)
drops out of the registry when its heartbeat expires, which a periodic look at the catalog
notices. What counts is what `tools/list` would show: the tools' names and their specs.

Debounced: a burst of registry announcements (a pool of eight workers starting) is looked at
once, shortly after it ends; workers that bring tools already listed change nothing and tell
nobody. Nothing is read from Redis for this while nobody listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable

from facade.catalog import Catalog, Snapshot
from facade.errors import StoreUnavailable

__all__ = ["ToolListChanges", "fingerprint"]

log = logging.getLogger("toolq.tool_list")

#: A registry announcement is looked at this long after the last one of a burst...
DEBOUNCE_SECONDS = 0.25
#: ...but never later than this after the first one.
MAX_DELAY_SECONDS = 1.0
#: How often the catalog is looked at for workers whose heartbeat expired. The catalog keeps what
#: it read for a second, so this costs at most one registry read a second, only while someone
#: listens, and an expiry is told within 1.5 s.
CHECK_SECONDS = 0.5


def fingerprint(snapshot: Snapshot) -> str:
    """A digest of the tool list as `tools/list` shows it: names and specs, in order."""
    listed = json.dumps(snapshot.listed(), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(listed.encode()).hexdigest()


#: The tool list was never seen, or not since Redis was away: the next look announces a change.
_UNKNOWN = ""


class ToolListChanges:
    """Calls its handlers when the tool list changes, while at least one listener watches."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        debounce_seconds: float = DEBOUNCE_SECONDS,
        max_delay_seconds: float = MAX_DELAY_SECONDS,
        check_seconds: float = CHECK_SECONDS,
    ) -> None:
        self._catalog = catalog
        self._debounce = debounce_seconds
        self._max_delay = max_delay_seconds
        self._check_seconds = check_seconds
        self._handlers: list[Callable[[], None]] = []
        self._watchers = 0
        #: The tool list last told about (and its names); None while nobody watches.
        self._fingerprint: str | None = None
        self._names: frozenset[str] = frozenset()
        self._last_snapshot: Snapshot | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._first_due: float | None = None
        self._periodic: asyncio.Task[None] | None = None
        self._checks: set[asyncio.Task[None]] = set()
        self._checking = asyncio.Lock()

    def on_change(self, handler: Callable[[], None]) -> None:
        """Call `handler()` each time the tool list changes."""
        self._handlers.append(handler)

    def registry_changed(self) -> None:
        """A worker joined or left (or Redis came back): drop the catalog's cached view, and look
        for a change once the burst of announcements is over."""
        self._catalog.invalidate()
        if self._watchers:
            self._look_soon()

    async def watch(self) -> None:
        """One more listener; returns once the current tool list is known, so that every change
        from now on is told."""
        self._watchers += 1
        if self._fingerprint is None:
            self._fingerprint = _UNKNOWN
            try:
                snapshot = await self._catalog.snapshot()
            except StoreUnavailable as exc:
                log.debug("tool list not known yet: %s", exc)
            else:
                self._last_snapshot = snapshot
                self._fingerprint = fingerprint(snapshot)
                self._names = frozenset(snapshot.tools)
        if self._periodic is None and self._watchers:
            self._periodic = asyncio.create_task(self._look_periodically(), name="toolq-tool-list")

    def unwatch(self) -> None:
        """One listener fewer; with none left, nothing is looked at any more."""
        self._watchers = max(0, self._watchers - 1)
        if self._watchers == 0:
            self._stop()

    async def close(self) -> None:
        self._watchers = 0
        tasks = [task for task in (self._periodic, *self._checks) if task is not None]
        self._stop()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- looking ----------------------------------------------------------------------------

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._periodic is not None:
            self._periodic.cancel()
        self._timer = self._first_due = self._periodic = None
        self._fingerprint = self._last_snapshot = None

    def _look_soon(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._first_due is None:
            self._first_due = now + self._max_delay
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(min(now + self._debounce, self._first_due), self._look_now)

    def _look_now(self) -> None:
        self._timer = self._first_due = None
        task = asyncio.create_task(self._look())
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def _look_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._check_seconds)
            if self._timer is None:  # an announced change is about to be looked at anyway
                await self._look()

    async def _look(self) -> None:
        async with self._checking:
            if self._fingerprint is None:
                return  # nobody watches any more
            try:
                snapshot = await self._catalog.snapshot()
            except StoreUnavailable as exc:
                log.debug("could not look at the tool list: %s", exc)
                return
            if snapshot is self._last_snapshot:
                return  # the catalog's cached view: nothing new to compare
            self._last_snapshot = snapshot
            current = fingerprint(snapshot)
            if current == self._fingerprint:
                return
            names = frozenset(snapshot.tools)
            moves = [f"+{name}" for name in sorted(names - self._names)]
            moves += [f"-{name}" for name in sorted(self._names - names)]
            self._fingerprint, self._names = current, names
        log.info("the tool list changed: %s", " ".join(moves) or "a tool's spec")
        for handler in self._handlers:
            try:
                handler()
            except Exception:
                log.exception("telling of a tool list change failed")
