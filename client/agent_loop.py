"""The agentic loop: ask Claude; run every tool it asks for at once; answer with all the results
in one message; repeat until Claude ends its turn or the turns run out."""

from __future__ import annotations

import asyncio
from typing import Protocol

from anthropic.types import Message, MessageParam, ToolParam, ToolUseBlock

from client.claude_api import Claude
from client.errors import ExitCode
from client.transcript import Outcome, ToolCall, Transcript, Turn


class LoopObserver(Protocol):
    """Who watches the loop (the console printer, or nobody for --json)."""

    def claude_text(self, text: str) -> None: ...

    def turn_finished(self) -> None: ...

    def tool_finished(self, call: ToolCall) -> None: ...


class ToolRunner(Protocol):
    async def call(self, block: ToolUseBlock) -> ToolCall: ...

    async def relisted(self) -> list[ToolParam] | None:
        """The tools again if they changed since they were listed, else None."""
        ...


class AgentLoop:
    def __init__(
        self,
        claude: Claude,
        tools: ToolRunner,
        *,
        max_turns: int,
        max_tokens: int,
        observer: LoopObserver,
    ) -> None:
        self._claude = claude
        self._tools = tools
        self._max_turns = max_turns
        self._max_tokens = max_tokens
        self._observer = observer

    async def run(self, transcript: Transcript) -> None:
        """Run the conversation, recording each turn in `transcript` as it happens (so a run that
        fails halfway still shows how far it got) and setting its outcome at the end."""
        messages: list[MessageParam] = [{"role": "user", "content": transcript.prompt}]
        for _ in range(self._max_turns):
            message = await self._claude.reply(messages, on_text=self._observer.claude_text)
            self._observer.turn_finished()
            turn = Turn(
                stop_reason=message.stop_reason,
                text="".join(block.text for block in message.content if block.type == "text"),
                input_tokens=message.usage.input_tokens,
                output_tokens=message.usage.output_tokens,
            )
            transcript.turns.append(turn)
            # The whole assistant message goes back: tool_use blocks must precede their results,
            # and a paused turn (pause_turn) is resumed by sending it back as it is.
            messages.append({"role": "assistant", "content": message.content})
            if message.stop_reason == "pause_turn":
                continue
            tool_uses = [block for block in message.content if isinstance(block, ToolUseBlock)]
            if message.stop_reason != "tool_use" or not tool_uses:
                transcript.outcome = self._ending(message)
                return
            if len(transcript.turns) == self._max_turns:
                wanted = ", ".join(block.name for block in tool_uses)
                transcript.outcome = self._out_of_turns(f"while Claude still wanted to call {wanted}")
                return
            # Concurrently: the calls may land on different workers, and one slow tool should not
            # hold up the others. gather keeps the results in the order of the tool_use blocks.
            turn.tool_calls = list(await asyncio.gather(*(self._tools.call(block) for block in tool_uses)))
            for call in turn.tool_calls:
                self._observer.tool_finished(call)
            messages.append({"role": "user", "content": [call.result_block() for call in turn.tool_calls]})
            # Between two turns: if the facade said its tools changed, Claude gets the new list.
            relisted = await self._tools.relisted()
            if relisted is not None:
                self._claude.offer(relisted)
                transcript.tools = [tool["name"] for tool in relisted]
        transcript.outcome = self._out_of_turns("while its turn was paused (pause_turn)")

    def _ending(self, message: Message) -> Outcome:
        reason = message.stop_reason
        if reason == "end_turn":
            return Outcome(ExitCode.OK)
        if reason == "stop_sequence":
            return Outcome(ExitCode.OK, f"Claude stopped at the stop sequence {message.stop_sequence!r}.")
        if reason == "max_tokens":
            return Outcome(
                ExitCode.INCOMPLETE,
                f"Claude's reply was cut off at {self._max_tokens} tokens: "
                "raise --max-tokens (or TOOLQ_CLIENT_MAX_TOKENS).",
            )
        if reason == "refusal":
            return Outcome(
                ExitCode.INCOMPLETE, "Claude declined to answer this request (stop_reason: refusal)."
            )
        if reason == "model_context_window_exceeded":
            return Outcome(ExitCode.INCOMPLETE, "the conversation no longer fits the model's context window.")
        if reason == "tool_use":
            return Outcome(ExitCode.INCOMPLETE, "Claude stopped to use a tool but named none.")
        return Outcome(
            ExitCode.INCOMPLETE, f"Claude stopped for a reason this client does not know: {reason!r}."
        )

    def _out_of_turns(self, pending: str) -> Outcome:
        return Outcome(
            ExitCode.MAX_TURNS,
            f"stopped after {self._max_turns} turns {pending}: "
            "raise --max-turns (or TOOLQ_CLIENT_MAX_TURNS).",
        )
