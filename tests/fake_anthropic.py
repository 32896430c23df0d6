"""A local stand-in for the Anthropic Messages API: a real aiohttp server on 127.0.0.1 answering
`POST /v1/messages` from a script, as one JSON message or, when the request says
`"stream": true`, as server-sent events (each with its `event:` line), the way the API does.

    async with FakeAnthropic() as claude:              # env ANTHROPIC_BASE_URL=claude.base_url
        claude.reply(text("Checking."), tool_use("add", {"a": 1, "b": 2}), stop_reason="tool_use")
        claude.reply_with(lambda request: Reply([text(f"{len(request.tool_results())} results")]))
        claude.fail(429, "rate_limit_error", "Slow down", headers={"retry-after": "0.2"})
        claude.fail_mid_stream("overloaded_error", "Overloaded")
        ...
        await claude.received(2)                       # wait for the second request
        claude.requests[1].tool_results()              # what the client sent, headers included

Each request takes the next scripted step. Like the real API, the stand-in checks what it can
before answering: the `anthropic-version` header, the key when `api_key` is set (401
otherwise), the required fields, and that every tool_use of an assistant turn is answered by a
tool_result in the very next user message (400 otherwise). An empty script answers 500.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from loopback_server import LoopbackServer
from multidict import CIMultiDict

MESSAGES_PATH = "/v1/messages"


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(name: str, arguments: dict[str, Any], id: str | None = None) -> dict[str, Any]:
    """A tool_use block; the stand-in gives it a fresh id when none is given."""
    block: dict[str, Any] = {"type": "tool_use", "name": name, "input": arguments}
    if id is not None:
        block["id"] = id
    return block


@dataclass(frozen=True)
class Reply:
    """An assistant message."""

    content: list[dict[str, Any]]
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None


@dataclass(frozen=True)
class Failure:
    """An HTTP error with the API's error body."""

    status: int
    error_type: str
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MidStreamFailure:
    """A streamed answer that starts (200, message_start) and then sends an `error` event."""

    error_type: str
    message: str


Step = Reply | Failure | MidStreamFailure


@dataclass(frozen=True)
class RecordedRequest:
    body: dict[str, Any]
    headers: CIMultiDict[str]
    received_at: float  # time.monotonic()

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def tool_names(self) -> list[str]:
        return [tool["name"] for tool in self.body.get("tools", [])]

    def tool_results(self) -> list[dict[str, Any]]:
        """The tool_result blocks of the last message (the user's answer to a tool_use turn)."""
        last = self.messages[-1] if self.messages else {}
        content = last.get("content")
        if last.get("role") != "user" or not isinstance(content, list):
            return []
        return [block for block in content if block.get("type") == "tool_result"]


Scripted = Step | Callable[[RecordedRequest], Step]


class FakeAnthropic(LoopbackServer):
    """The stand-in. `api_key`: the only key accepted (None: any key)."""

    name = "FakeAnthropic"

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.script: deque[Scripted] = deque()
        self.requests: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self._arrivals: asyncio.Condition | None = None

    async def received(self, count: int = 1) -> None:
        """Wait until `count` requests have arrived (bound it with `asyncio.timeout`)."""
        assert self._arrivals is not None, "FakeAnthropic is not started"
        async with self._arrivals:
            await self._arrivals.wait_for(lambda: len(self.requests) >= count)

    # --- scripting -------------------------------------------------------------------------

    def reply(self, *content: dict[str, Any], stop_reason: str = "end_turn") -> None:
        self.script.append(Reply(list(content), stop_reason))

    def reply_with(self, step: Callable[[RecordedRequest], Step]) -> None:
        """A step decided when its request arrives (to answer from what the client sent)."""
        self.script.append(step)

    def fail(
        self, status: int, error_type: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.script.append(Failure(status, error_type, message, dict(headers or {})))

    def fail_mid_stream(self, error_type: str, message: str) -> None:
        self.script.append(MidStreamFailure(error_type, message))

    # --- lifecycle -------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_post(MESSAGES_PATH, self._messages)

    async def on_start(self) -> None:
        self._arrivals = asyncio.Condition()

    # --- the endpoint ----------------------------------------------------------------------

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "invalid_request_error", "The request body is not valid JSON.")
        recorded = RecordedRequest(body, CIMultiDict(request.headers), time.monotonic())
        self.requests.append(recorded)
        if self._arrivals is not None:
            async with self._arrivals:
                self._arrivals.notify_all()
        refusal = self._check(recorded)
        if refusal is not None:
            return refusal
        if not self.script:
            return _error(
                500, "api_error", "The stand-in's script is exhausted: no step left for this request."
            )
        scripted = self.script.popleft()
        step = scripted(recorded) if callable(scripted) else scripted
        if isinstance(step, Failure):
            return _error(step.status, step.error_type, step.message, step.headers)
        message = self._message(step, body) if isinstance(step, Reply) else None
        if body.get("stream"):
            return await self._stream(request, body, message, step)
        if message is None:
            return _error(500, "api_error", "A mid-stream failure was scripted for a request without stream.")
        return web.json_response(message, headers={"request-id": f"req_fake_{next(self._ids)}"})

    def _check(self, request: RecordedRequest) -> web.Response | None:
        """What the real API would refuse before generating anything."""
        if "anthropic-version" not in request.headers:
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        if self.api_key is not None:
            sent = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix(
                "Bearer "
            )
            if sent != self.api_key:
                return _error(401, "authentication_error", "invalid x-api-key")
        for required in ("model", "max_tokens", "messages"):
            if required not in request.body:
                return _error(400, "invalid_request_error", f"{required}: Field required")
        messages = request.messages
        for index, message in enumerate(messages[:-1]):
            if message.get("role") != "assistant" or not isinstance(message.get("content"), list):
                continue
            wanted = [block["id"] for block in message["content"] if block.get("type") == "tool_use"]
            if not wanted:
                continue
            following = messages[index + 1]
            content = following.get("content") if following.get("role") == "user" else None
            answered = [
                block.get("tool_use_id")
                for block in (content if isinstance(content, list) else [])
                if block.get("type") == "tool_result"
            ]
            if sorted(answered) != sorted(wanted):
                return _error(
                    400,
                    "invalid_request_error",
                    f"messages.{index + 1}: tool_use ids were found without tool_result blocks immediately "
                    f"after: {', '.join(sorted(set(wanted) - set(answered))) or '(none)'}; tool_result ids "
                    f"without a tool_use: {', '.join(sorted(set(answered) - set(wanted))) or '(none)'}",
                )
        return None

    def _message(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        content = [
            {**block, "id": f"toolu_fake_{next(self._ids)}"}
            if block["type"] == "tool_use" and "id" not in block
            else block
            for block in reply.content
        ]
        return {
            "id": f"msg_fake_{next(self._ids)}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": content,
            "stop_reason": reply.stop_reason,
            "stop_sequence": reply.stop_sequence,
            "usage": {
                "input_tokens": 10 * len(body.get("messages", [])),
                "output_tokens": 5 * len(content) + 1,
            },
        }

    async def _stream(
        self, request: web.Request, body: dict[str, Any], message: dict[str, Any] | None, step: Step
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "request-id": "req_fake",
            }
        )
        await response.prepare(request)

        async def send(event: str, data: dict[str, Any]) -> None:
            await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
            await asyncio.sleep(0)

        start = message or self._message(Reply([]), body)
        await send(
            "message_start",
            {"type": "message_start", "message": {**start, "content": [], "stop_reason": None}},
        )
        await send("ping", {"type": "ping"})
        if isinstance(step, MidStreamFailure):
            await send(
                "error", {"type": "error", "error": {"type": step.error_type, "message": step.message}}
            )
            await response.write_eof()
            return response
        assert message is not None
        for index, block in enumerate(message["content"]):
            for event in _block_events(index, block):
                await send(event["type"], event)
        await send(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]},
                "usage": {"output_tokens": message["usage"]["output_tokens"]},
            },
        )
        await send("message_stop", {"type": "message_stop"})
        await response.write_eof()
        return response


def _block_events(index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
    """content_block_start, a few deltas, content_block_stop: text arrives in pieces, tool input
    as partial JSON."""
    if block["type"] == "text":
        words = block["text"].split(" ")
        half = max(1, len(words) // 2)
        pieces = [" ".join(words[:half]), " " + " ".join(words[half:])] if len(words) > 1 else [block["text"]]
        start: dict[str, Any] = {"type": "text", "text": ""}
        deltas: list[dict[str, Any]] = [{"type": "text_delta", "text": piece} for piece in pieces]
    elif block["type"] == "tool_use":
        arguments = json.dumps(block["input"])
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        middle = len(arguments) // 2
        deltas = [
            {"type": "input_json_delta", "partial_json": arguments[:middle]},
            {"type": "input_json_delta", "partial_json": arguments[middle:]},
        ]
    else:
        raise ValueError(f"the stand-in cannot stream a {block['type']!r} block")
    return [
        {"type": "content_block_start", "index": index, "content_block": start},
        *({"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas),
        {"type": "content_block_stop", "index": index},
    ]


def _error(
    status: int, error_type: str, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_fake_error"},
        status=status,
        headers=dict(headers or {}),
    )
