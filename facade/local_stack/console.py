"""Printing for the launcher and its children: whole lines under one lock, URLs redacted."""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import TextIO

_print_lock = threading.RLock()


def say(text: str, *, stream: TextIO | None = None) -> None:
    """Print one message whole, never interleaved with a child's line."""
    with _print_lock, contextlib.suppress(OSError, ValueError):
        print(text, file=stream or sys.stdout, flush=True)


def error(text: str) -> None:
    say(f"[toolq] error: {text}", stream=sys.stderr)
