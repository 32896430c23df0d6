"""Child processes: started with their output streamed under their name, stopped in order."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import TextIO

from facade.local_stack.console import say
from facade.parent_death import pdeathsig_preexec

_PREEXEC = pdeathsig_preexec()


def _pump(name: str, width: int, stream: TextIO) -> None:
    prefix = f"[{name}]".ljust(width + 2)
    for line in stream:
        say(f"{prefix} {line.rstrip()}")


class Child:
    """A child process whose output is printed line by line under its name."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], width: int) -> None:
        self.name = name
        self.process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            # Ctrl-C reaches only us, so we stop the children in order (see the module doc).
            process_group=0 if _PREEXEC is not None else None,
            # The hook only calls prctl and getppid: no lock another thread could hold.
            preexec_fn=_PREEXEC,  # noqa: PLW1509
        )
        assert self.process.stdout is not None
        self._pump = threading.Thread(
            target=_pump, args=(name, width, self.process.stdout), name=f"pump-{name}", daemon=True
        )
        self._pump.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def exit_code(self) -> int | None:
        return self.process.poll()

    def describe_exit(self) -> str:
        code = self.process.returncode
        if code is not None and code < 0:
            try:
                return f"{self.name} was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"{self.name} was killed by signal {-code}"
        return f"{self.name} exited with code {code}"

    def send(self, signum: signal.Signals) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    def finish_output(self, timeout: float = 2.0) -> None:
        self._pump.join(timeout)


def stop_children(children: Sequence[Child], timeout: float, hurry: threading.Event) -> None:
    """SIGTERM every child, wait up to `timeout` (less if `hurry` is set), then SIGKILL the rest."""
    for child in children:
        child.send(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(c.exit_code() is None for c in children):
        if hurry.is_set() or time.monotonic() >= deadline:
            for child in children:
                if child.exit_code() is None:
                    why = "Ctrl-C again" if hurry.is_set() else f"still running after {timeout:g} s"
                    say(f"[toolq] {child.name}: {why}, killing it")
                    child.send(signal.SIGKILL)
            break
        hurry.wait(0.05)
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(5)
        child.finish_output()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(host: str, port: int) -> bool:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror:
        return True  # let the facade report the bad host
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError:
            return False
    return True
