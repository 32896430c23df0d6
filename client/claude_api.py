"""The Messages API: the SDK client, one reply of Claude's (whole or streamed), errors in words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
from anthropic import (
    APIConnectionError,
    APIRequest,
    APIStatusError,
    APITimeoutError,
    AsyncAnthropic,
    AsyncAPIResponse,
    AsyncCallNext,
    Middleware,
    omit,
)
from anthropic.types import Message, MessageParam, ToolParam

from client.errors import ClientError, ExitCode
from client.settings import ClientSettings

Notify = Callable[[str], None]


class Claude:
    """Asks Claude for its next turn, with the facade's tools on offer."""

    def __init__(
        self,
        anthropic: AsyncAnthropic,
        *,
        model: str,
        max_tokens: int,
        tools: list[ToolParam],
        stream: bool = False,
    ) -> None:
        self._anthropic = anthropic
        self._model = model
        self._max_tokens = max_tokens
        self._tools = tools
        self._stream = stream

    def offer(self, tools: list[ToolParam]) -> None:
        """The tools Claude may use from the next turn on (the facade's list changed)."""
        self._tools = tools

    async def reply(self, messages: list[MessageParam], on_text: Callable[[str], None]) -> Message:
        """The next assistant message. `on_text` gets Claude's text: piece by piece as it arrives
        when streaming, one whole text block at a time otherwise."""
        tools = self._tools or omit
        if not self._stream:
            message = await self._anthropic.messages.create(
                model=self._model, max_tokens=self._max_tokens, messages=messages, tools=tools
            )
            for block in message.content:
                if block.type == "text":
                    on_text(block.text)
            return message
        async with self._anthropic.messages.stream(
            model=self._model, max_tokens=self._max_tokens, messages=messages, tools=tools
        ) as stream:
            async for event in stream:
                if event.type == "text":
                    on_text(event.text)
            return await stream.get_final_message()


def make_anthropic(settings: ClientSettings, notify: Notify) -> AsyncAnthropic:
    """The SDK client. The key is passed explicitly, so the SDK reads no profile from disk."""
    return AsyncAnthropic(
        api_key=settings.api_key,
        base_url=settings.anthropic_base_url,
        max_retries=settings.max_retries,
        middleware=[RetryNotices(settings.max_retries, notify)],
    )


#: What the SDK retries (besides network errors), and how we name it.
RETRIED_STATUSES = {
    408: "request timeout",
    409: "conflict",
    429: "rate limited",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
    529: "overloaded",
}


class RetryNotices(Middleware):
    """Says on stderr when the SDK is about to retry, so a wait (retry-after) is not a mystery."""

    def __init__(self, max_retries: int, notify: Notify) -> None:
        self._max_retries = max_retries
        self._notify = notify

    async def handle_async(self, request: APIRequest, call_next: AsyncCallNext) -> AsyncAPIResponse[Any]:
        retry = f"retry {request.retries_taken + 1} of {self._max_retries}"
        retrying = request.retries_taken < self._max_retries
        try:
            response = await call_next(request)
        except APIConnectionError as error:
            if retrying:
                self._notify(f"the Anthropic API did not answer ({_cause(error)}); {retry}")
            raise
        status = response.status_code
        told = response.headers.get("x-should-retry")
        if retrying and told != "false" and (told == "true" or status in RETRIED_STATUSES or status >= 500):
            what = RETRIED_STATUSES.get(status, "server error")
            self._notify(f"the Anthropic API answered HTTP {status} ({what}); {retry}{_asked_wait(response)}")
        return response


def _asked_wait(response: AsyncAPIResponse[Any]) -> str:
    """The wait the API asked for in seconds (retry-after-ms or retry-after), as words."""
    for header, per_second in (("retry-after-ms", 1000), ("retry-after", 1)):
        try:
            return f" in {float(response.headers[header]) / per_second:g} s, as the API asks"
        except (KeyError, ValueError):
            continue
    return ""


def explain_anthropic_error(error: anthropic.AnthropicError, settings: ClientSettings) -> ClientError:
    """The SDK's exception as a message that says what to do."""
    code = ExitCode.ANTHROPIC_ERROR
    retries = {0: "(retries are off)", 1: "after 1 retry"}.get(
        settings.max_retries, f"after {settings.max_retries} retries"
    )
    where = settings.anthropic_base_url or "https://api.anthropic.com"
    if isinstance(error, APITimeoutError):
        return ClientError(f"the Anthropic API at {where} did not answer in time {retries}", code)
    if isinstance(error, APIConnectionError):
        return ClientError(
            f"cannot reach the Anthropic API at {where} ({_cause(error)}) {retries}: check the network"
            + (" and ANTHROPIC_BASE_URL" if settings.anthropic_base_url else ""),
            code,
        )
    if not isinstance(error, APIStatusError):
        return ClientError(f"the Anthropic SDK failed: {error}", code)
    said = f": {error.api_message}" if error.api_message else ""
    # An error event inside a stream arrives with the stream's status, 200: its type says what it is.
    status = error.status_code if error.status_code != 200 else _STATUS_OF_TYPE.get(error.type or "", 200)
    if status == 401:
        return ClientError(f"Anthropic rejected the API key (HTTP 401){said}. Check ANTHROPIC_API_KEY.", code)
    if status == 403:
        return ClientError(f"the API key may not do this (HTTP 403){said}", code)
    if status == 404:
        return ClientError(
            f"the Anthropic API found no such thing (HTTP 404){said}. "
            f"Is the model id {settings.model!r} right? (--model / ANTHROPIC_MODEL)",
            code,
        )
    if status == 429:
        return ClientError(
            f"rate limited by the Anthropic API (HTTP 429) {retries}{said}. "
            "Wait a little and try again, or raise --max-retries.",
            code,
        )
    if status == 529:
        return ClientError(
            f"the Anthropic API is overloaded (HTTP 529) {retries}{said}. Try again in a few minutes.", code
        )
    if status == 200:
        return ClientError(f"the Anthropic API broke off its answer ({error.type or 'error'}){said}", code)
    if status >= 500:
        return ClientError(f"the Anthropic API failed (HTTP {status}) {retries}{said}", code)
    return ClientError(f"the Anthropic API refused the request (HTTP {status}){said}", code)


_STATUS_OF_TYPE = {
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def _cause(error: BaseException) -> str:
    cause = error.__cause__
    return f"{type(cause).__name__}: {cause}" if cause is not None else str(error)
