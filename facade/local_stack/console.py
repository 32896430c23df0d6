"""Printing for the launcher and its children: whole lines under one lock, URLs redacted."""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

_print_lock = threading.RLock()


def say(text: str, *, stream: TextIO | None = None) -> None:
    """Print one message whole, never interleaved with a child's line."""
    with _print_lock, contextlib.suppress(OSError, ValueError):
        print(text, file=stream or sys.stdout, flush=True)


def error(text: str) -> None:
    say(f"[toolq] error: {text}", stream=sys.stderr)


def redact(url: str) -> str:
    """The URL with any password replaced, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
