"""LocalStack: Redis, the workers and the facade started, watched and stopped together."""

from __future__ import annotations

import os
import sys
import threading
import time

from facade.local_stack.children import Child, free_port, port_is_free, stop_children
from facade.local_stack.console import error, say
from facade.local_stack.errors import LaunchError
from facade.local_stack.options import Options
from facade.local_stack.probe import PROBE_ERRORS, FacadeProbe, first_token, ready_banner
from facade.local_stack.redis_servers import RedisHandle, start_redis
from facade.settings import FacadeSettings


class LocalStack:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.stop_requested = threading.Event()
        #: A second Ctrl-C: stop waiting for graceful exits.
        self.hurry = threading.Event()
        self.redis: RedisHandle | None = None
        self.facade: Child | None = None
        self.workers: list[Child] = []
        self.width = max(len("facade"), len("redis"), len(f"worker-{options.workers}"))

    def on_signal(self, _signum: int, _frame: object) -> None:
        # No printing here: the main thread may hold the print lock.
        if self.stop_requested.is_set():
            self.hurry.set()
        self.stop_requested.set()

    def children(self) -> list[Child]:
        return ([self.facade] if self.facade else []) + self.workers

    def run(self) -> int:
        """Start everything, announce it, and wait for Ctrl-C or a death; the exit status."""
        port = self.options.port or free_port()
        if not port_is_free(self.options.host, port):
            raise LaunchError(
                f"port {port} on {self.options.host} is in use (another toolq?); "
                "pass --port to choose another"
            )
        self.redis = start_redis(self.options, self.width)
        say(f"[toolq] {self.redis.description}")
        if self.stop_requested.is_set():
            return 0
        self._start_workers(self.redis.url)
        self._start_facade(self.redis.url, port)
        settings = FacadeSettings(host=self.options.host, port=port)
        token = first_token()
        tools = self._wait_until_ready(FacadeProbe(settings.public_url, token))
        if tools is None:
            return 0 if self.stop_requested.is_set() else 1
        say(ready_banner(settings.public_url, tools, self.options.workers, token is not None))
        return self._supervise()

    def _child_env(self, redis_url: str, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(REDIS_URL=redis_url, PYTHONUNBUFFERED="1", **extra)
        return env

    def _start_workers(self, redis_url: str) -> None:
        extra = {"TOOLQ_WEATHER_PROVIDER": "offline"} if self.options.offline_weather else {}
        env = self._child_env(redis_url, **extra)
        # Running jobs get most of the stop timeout to finish before the worker hands them back.
        drain = max(1.0, self.options.stop_timeout - 5.0)
        argv = [sys.executable, "-m", "workers", "--redis-url", redis_url, "--drain-seconds", f"{drain:g}"]
        for number in range(1, self.options.workers + 1):
            child = Child(f"worker-{number}", argv, env, self.width)
            self.workers.append(child)
            say(f"[toolq] {child.name} started (pid {child.pid})")

    def _start_facade(self, redis_url: str, port: int) -> None:
        argv = [sys.executable, "-m", "facade", "--host", self.options.host, "--port", str(port)]
        argv += ["--redis-url", redis_url]
        self.facade = Child("facade", argv, self._child_env(redis_url), self.width)
        say(f"[toolq] facade started (pid {self.facade.pid})")

    def _death(self) -> str | None:
        """What died, if anything did."""
        failure = self.redis.failure() if self.redis else None
        if failure:
            return failure
        for child in self.children():
            if child.exit_code() is not None:
                return child.describe_exit()
        return None

    def _wait_until_ready(self, probe: FacadeProbe) -> list[str] | None:
        """The tools listed once the facade is ready; None if stopped or failed (reported)."""
        deadline = time.monotonic() + self.options.ready_timeout
        last = "no answer yet"
        while not self.stop_requested.is_set():
            death = self._death()
            if death:
                error(f"{death} while starting; stopping the others (its output is above)")
                return None
            try:
                status = probe.readyz()
                if status == 200:
                    tools = probe.list_tools()
                    if tools:
                        return tools
                    last = "the facade answers but lists no tools yet (no worker registered)"
                else:
                    last = f"GET /readyz answered HTTP {status} (is Redis reachable?)"
            except PROBE_ERRORS as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                error(
                    f"not ready after {self.options.ready_timeout:g} s at {probe.mcp_url}: {last}. "
                    "The output of the facade and workers is above."
                )
                return None
            self.stop_requested.wait(0.2)
        return None

    def _supervise(self) -> int:
        while not self.stop_requested.wait(0.25):
            death = self._death()
            if death:
                error(f"{death} unexpectedly; stopping the others")
                return 1
        return 0

    def shutdown(self) -> None:
        children = self.children()
        if not children and self.redis is None:
            return  # nothing was started
        running = [c.name for c in children if c.exit_code() is None]
        if running:
            say(f"[toolq] stopping {', '.join(running)} (Ctrl-C again to kill) ...")
        # The facade first (no new calls), then the workers drain; Redis goes last.
        stop_children(children, self.options.stop_timeout, self.hurry)
        if self.redis is not None:
            self.redis.stop()
        say("[toolq] stopped")
