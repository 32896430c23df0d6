"""Logging for the facade and the workers: readable text by default, JSON lines on request.

Both processes log through the standard library (no structlog: one more dependency for what a
formatter does). A call's line carries its fields as data (`fields(...)`): the facade's line
per MCP request and the worker's line per job share the job id and the trace id, so one call
can be followed across processes. TOOLQ_LOG_FORMAT=json prints one JSON object per line (for
log shippers); the default prints the message with the fields as `key=value` after it.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any, Literal, TextIO

import orjson

#: Where a record's structured fields travel (logging's `extra`).
FIELDS = "toolq"


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` for a log call: these fields, None ones left out."""
    return {FIELDS: {key: value for key, value in values.items() if value is not None}}


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a W3C traceparent (`00-<trace id>-<span id>-<flags>`), or None."""
    if not traceparent or len(traceparent) < 55:
        return None
    trace_id = traceparent[3:35]
    return trace_id if trace_id != "0" * 32 else None


class _Seconds:
    """The current second, formatted once per second rather than once per line."""

    def __init__(self, pattern: str, convert: Any) -> None:
        self.pattern, self.convert = pattern, convert
        self.second, self.text = -1, ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self.second:
            self.second, self.text = second, time.strftime(self.pattern, self.convert(second))
        return self.text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's fields."""

    def __init__(self) -> None:
        super().__init__()
        self._second = _Seconds("%Y-%m-%dT%H:%M:%S", time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": f"{self._second(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, FIELDS, None) or {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`, with the record's fields after the message as key=value."""

    def __init__(self) -> None:
        super().__init__()
        self._second = _Seconds("%Y-%m-%d %H:%M:%S", time.localtime)

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{self._second(record.created)},{int(record.msecs):03d} {record.levelname} {record.name}: "
            f"{record.getMessage()}"
        )
        values = getattr(record, FIELDS, None)
        if values:
            line += " " + " ".join([f"{key}={value}" for key, value in values.items()])
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class BufferedHandler(logging.Handler):
    """Lines to a stream in batches: a line per call must not cost a system call per call.

    Lines wait at most FLUSH_SECONDS (a thread of its own writes them out), and a warning or
    worse, or a full buffer, writes everything at once.
    """

    FLUSH_SECONDS = 0.2
    MOST_LINES = 512

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self._lines: list[str] = []
        threading.Thread(target=self._flush_now_and_then, name="toolq-log-flush", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record))
        except Exception:
            self.handleError(record)
            return
        if record.levelno >= logging.WARNING or len(self._lines) >= self.MOST_LINES:
            self._write()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # made by Handler.__init__
            self._write()

    def _write(self) -> None:
        if self._lines:
            lines, self._lines = self._lines, []
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()

    def _flush_now_and_then(self) -> None:
        while True:
            time.sleep(self.FLUSH_SECONDS)
            self.flush()


def configure(level: str, log_format: Literal["text", "json"] = "text") -> None:
    """Log to stderr at `level`, as text or JSON lines, in batches (BufferedHandler). A record
    is not given what no line here prints (thread, process, the caller's source line: the
    logging documentation's "Optimization" section), which halves what a record costs."""
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # documented: skips the caller lookup
    handler = BufferedHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
