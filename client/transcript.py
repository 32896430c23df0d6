"""What happened in one run: Claude's turns, the tool calls they asked for, and how it ended."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from anthropic.types import ToolResultBlockParam
from anthropic.types.tool_result_block_param import Content as ToolResultContent

from client.errors import ExitCode


@dataclass(frozen=True)
class ToolCall:
    """One tool_use block of Claude's and the result it got back."""

    id: str
    name: str
    arguments: dict[str, object]
    is_error: bool
    #: Exactly what Claude receives in the tool_result block.
    content: list[ToolResultContent]
    seconds: float

    @property
    def text(self) -> str:
        """The result as a person reads it: the text blocks (the facade sends the JSON result as one)."""
        return "\n".join(
            str(block["text"]) if block["type"] == "text" else f"[{block['type']}]" for block in self.content
        )

    def result_block(self) -> ToolResultBlockParam:
        block: ToolResultBlockParam = {"type": "tool_result", "tool_use_id": self.id, "content": self.content}
        if self.is_error:
            block["is_error"] = True
        return block

    def to_json(self) -> dict[str, Any]:
        text = self.text
        result: Any = text
        if not self.is_error:
            with contextlib.suppress(ValueError):
                result = json.loads(text)
        return {
            "id": self.id,
            "name": self.name,
            "arguments": self.arguments,
            "is_error": self.is_error,
            "result": result,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Turn:
    """One reply of Claude's."""

    stop_reason: str | None
    text: str
    input_tokens: int
    output_tokens: int
    tool_calls: list[ToolCall] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "stop_reason": self.stop_reason,
            "text": self.text,
            "tool_calls": [call.to_json() for call in self.tool_calls],
            "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
        }


@dataclass(frozen=True)
class Outcome:
    exit_code: ExitCode
    #: A note on an unusual end (max_tokens, stop_sequence, ...), or the error that ended the run.
    message: str | None = None


@dataclass
class Transcript:
    prompt: str
    model: str
    url: str
    tools: list[str] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    outcome: Outcome | None = None

    @property
    def answer(self) -> str | None:
        """Claude's final text: the last turn's, once Claude stopped by itself."""
        if not self.turns or self.turns[-1].stop_reason in (None, "tool_use", "pause_turn"):
            return None
        return self.turns[-1].text

    def to_json(self) -> dict[str, Any]:
        outcome = self.outcome or Outcome(ExitCode.OK)
        return {
            "prompt": self.prompt,
            "model": self.model,
            "url": self.url,
            "tools": self.tools,
            "turns": [turn.to_json() for turn in self.turns],
            "answer": self.answer,
            "status": outcome.exit_code.name.lower(),
            "exit_code": int(outcome.exit_code),
            "message": outcome.message,
        }
