"""A facade of several processes on one port (TOOLQ_FACADE_PROCESSES=N): one core is not a ceiling.

One facade process answers HTTP on one core; where it is the bound (its CPU per call times the
calls per second reaches one core), more processes on the same host take more calls. They are
replicas like any others (sessions, tasks, cancellations and notifications already meet in
Redis), sharing one port through SO_REUSEPORT: the kernel spreads new connections over them.

`python -m facade` with N > 1 becomes their supervisor: it starts N members (`python -m facade`
again, told which member they are), restarts one that dies (at most RESTARTS_PER_MINUTE, then
it stops them all and exits 1, for the orchestrator to act), and on SIGTERM or SIGINT stops them
all gracefully, each draining as a single facade does. Members get SIGTERM if the supervisor is
killed outright (Linux).

Metrics stay one facade's: each member serves its own figures on a Unix socket in a private
directory, and the member a scrape reaches adds its siblings' to its own (facade/metrics_merge.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import aiohttp
from aiohttp import web

from facade.parent_death import pdeathsig_preexec

log = logging.getLogger("toolq.facade")

#: Set by the supervisor for each member: "INDEX/COUNT".
MEMBER_ENV = "TOOLQ_FACADE_MEMBER"
#: The private directory (0700) of the members' metrics sockets.
SOCKETS_ENV = "TOOLQ_FACADE_SOCKETS"
#: The sockets directory's name: this prefix, the supervisor's pid, a random part.
SOCKETS_PREFIX = "toolq-facade-"
#: A member that dies is started again, at most this many times a minute.
RESTARTS_PER_MINUTE = 5
#: How long a stopping member may take: aiohttp's shutdown_timeout (10 s) and a margin.
STOP_SECONDS = 15.0
#: A member's exit code when it cannot listen on the port: nothing to restart it for.
CANNOT_LISTEN = 3
#: How long a scrape waits for a sibling's figures.
SIBLING_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Member:
    """Which member of a process group this facade process is."""

    index: int
    count: int
    sockets: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Member | None:
        member = environ.get(MEMBER_ENV)
        sockets = environ.get(SOCKETS_ENV)
        if not member or not sockets:
            return None
        index, count = (int(part) for part in member.split("/", 1))
        return cls(index, count, Path(sockets))

    def socket_of(self, index: int) -> Path:
        return self.sockets / f"member-{index}.sock"

    @property
    def label(self) -> str:
        return f"process {self.index + 1} of {self.count}"

    async def sibling_metrics(self) -> list[bytes]:
        """Every other member's own figures (a member that does not answer is left out)."""
        fetched = await asyncio.gather(
            *(_own_metrics_of(self.socket_of(i)) for i in range(self.count) if i != self.index)
        )
        return [text for text in fetched if text is not None]

    def metrics_site(self, own: Callable[[], bytes]) -> Callable[[web.Application], AsyncIterator[None]]:
        """A cleanup context serving `own()` (this member's figures) on its Unix socket."""

        async def serve_own(_request: web.Request) -> web.Response:
            return web.Response(body=own(), content_type="text/plain")

        async def site(_app: web.Application) -> AsyncIterator[None]:
            private = web.Application()
            private.router.add_get("/metrics", serve_own)
            runner = web.AppRunner(private, handle_signals=False, access_log=None)
            await runner.setup()
            path = self.socket_of(self.index)
            path.unlink(missing_ok=True)  # a dead predecessor's
            await web.UnixSite(runner, str(path)).start()
            try:
                yield
            finally:
                await runner.cleanup()

        return site


async def _own_metrics_of(path: Path) -> bytes | None:
    try:
        timeout = aiohttp.ClientTimeout(total=SIBLING_TIMEOUT_SECONDS)
        connector = aiohttp.UnixConnector(path=str(path))
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            session.get("http://member/metrics") as response,
        ):
            response.raise_for_status()
            return await response.read()
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.warning("metrics: the facade process at %s did not answer (%s); its figures left out", path, exc)
        return None


def sweep_stale_sockets(directory: Path) -> None:
    """Remove the sockets directories of supervisors that are gone (killed outright, they could
    not remove their own); one whose pid is alive is left alone, whoever holds that pid now."""
    for path in directory.glob(f"{SOCKETS_PREFIX}*-*"):
        pid = path.name.removeprefix(SOCKETS_PREFIX).split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass  # alive, another user's


class Supervisor:
    """Starts the members, keeps them running, stops them together."""

    def __init__(self, argv: list[str], count: int) -> None:
        self.argv = argv
        self.count = count
        sweep_stale_sockets(Path(tempfile.gettempdir()))
        self.sockets = Path(tempfile.mkdtemp(prefix=f"{SOCKETS_PREFIX}{os.getpid()}-"))
        self.members: dict[int, subprocess.Popen[bytes]] = {}
        self.restarts: list[float] = []
        self.stopping = False

    def start(self, index: int) -> None:
        env = {**os.environ, MEMBER_ENV: f"{index}/{self.count}", SOCKETS_ENV: str(self.sockets)}
        self.members[index] = subprocess.Popen(
            [sys.executable, "-m", "facade", *self.argv],
            env=env,
            # Ctrl-C reaches the supervisor only; it stops the members, each once.
            process_group=0,
            # The hook only calls prctl and getppid: no lock another thread could hold.
            preexec_fn=pdeathsig_preexec(),  # noqa: PLW1509
        )

    def stop(self, signum: int, _frame: FrameType | None = None) -> None:
        if self.stopping:
            return
        self.stopping = True
        for process in self.members.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        try:
            for index in range(self.count):
                self.start(index)
            failed = self._watch()
            stopped = self._wait_for_all()
            return failed or stopped
        finally:
            shutil.rmtree(self.sockets, ignore_errors=True)

    def _watch(self) -> int:
        """Until stopped: restart a member that died. 1 if they die too often, CANNOT_LISTEN if
        one cannot listen on the port."""
        while not self.stopping:
            time.sleep(0.2)
            for index, process in list(self.members.items()):
                code = process.poll()
                if code is None or self.stopping:
                    continue
                if code == CANNOT_LISTEN:  # it said why; another try would fail the same way
                    self.stop(signal.SIGTERM)
                    return CANNOT_LISTEN
                now = time.monotonic()
                self.restarts = [t for t in self.restarts if now - t < 60] + [now]
                if len(self.restarts) > RESTARTS_PER_MINUTE:
                    print(
                        f"toolq facade: process {index + 1} exited ({code}); more than "
                        f"{RESTARTS_PER_MINUTE} exits in a minute: stopping all",
                        file=sys.stderr,
                        flush=True,
                    )
                    self.stop(signal.SIGTERM)
                    return 1
                print(
                    f"toolq facade: process {index + 1} exited ({code}); starting it again",
                    file=sys.stderr,
                    flush=True,
                )
                self.start(index)
        return 0

    def _wait_for_all(self) -> int:
        deadline = time.monotonic() + STOP_SECONDS
        worst = 0
        for process in self.members.values():
            try:
                code = process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            worst = worst or (0 if code in (0, -signal.SIGTERM) else 1)
        return worst


def supervise(argv: list[str], count: int) -> int:
    """Run `count` facade processes on one port until SIGTERM or SIGINT; the exit code."""
    return Supervisor(argv, count).run()
