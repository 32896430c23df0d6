"""What the user sees: Claude's text and each tool call on stdout (or one JSON transcript with
--json); notes, retries and errors on stderr."""

from __future__ import annotations

import json
from typing import TextIO

from client.settings import PROG
from client.transcript import ToolCall, Transcript


class ConsolePrinter:
    """Prints the conversation as it happens:

        Tool Used: weather
        Arguments: {"city": "Delhi"}
        Result: {"city": "Delhi", "temperature": 31.4, ...}

    with Claude's own text between the tool calls, and its final answer last.
    """

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._last: str | None = None  # "text", "turn" (text, then its turn ended) or "tool"
        self._at_line_start = True

    def claude_text(self, text: str) -> None:
        if self._last != "text":
            self._start_block()
        self._write(text)
        self._last = "text"

    def turn_finished(self) -> None:
        if self._last == "text":
            self._last = "turn"  # the next turn's text is a paragraph of its own

    def tool_finished(self, call: ToolCall) -> None:
        self._start_block()
        outcome = "Tool Error" if call.is_error else "Result"
        self._write(
            f"Tool Used: {call.name}\n"
            f"Arguments: {json.dumps(call.arguments, ensure_ascii=False)}\n"
            f"{outcome}: {call.text}\n"
        )
        self._last = "tool"

    def finish(self) -> None:
        if not self._at_line_start:
            self._write("\n")

    def _start_block(self) -> None:
        """Blocks (a run of Claude's text, one tool call) are separated by a blank line."""
        if self._last is not None:
            self._write("\n" if self._at_line_start else "\n\n")

    def _write(self, text: str) -> None:
        if text:
            self._out.write(text)
            self._out.flush()
            self._at_line_start = text.endswith("\n")


class QuietObserver:
    """For --json: nothing is printed while the loop runs."""

    def claude_text(self, text: str) -> None:
        pass

    def turn_finished(self) -> None:
        pass

    def tool_finished(self, call: ToolCall) -> None:
        pass


def print_transcript(transcript: Transcript, out: TextIO) -> None:
    out.write(json.dumps(transcript.to_json(), ensure_ascii=False, indent=2) + "\n")
    out.flush()


def print_error(message: str, err: TextIO) -> None:
    err.write(f"{PROG}: error: {message}\n")
    err.flush()


def print_note(message: str, err: TextIO) -> None:
    err.write(f"{PROG}: {message}\n")
    err.flush()
