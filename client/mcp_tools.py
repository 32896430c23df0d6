"""The facade's tools over MCP: discover them, hand them to Claude, run the calls Claude asks for.

Discovery and calls go through the official `mcp` client; the conversion to Anthropic tools and
of results to tool_result content is the anthropic SDK's own MCP helper (`async_mcp_tool`), so
an MCP `isError` result reaches Claude as `is_error: true` exactly as the SDK maps it.

The facade tells when its tool list changes (a worker with a new tool joined, the last worker of
one left): on the handshake era's GET stream, which the `mcp` client opens itself, or on a
`subscriptions/listen` stream opened here in the 2026-07-28 era. The tools are listed again
only then, between two of Claude's turns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, cast

import httpx2
import mcp
import mcp.types
from anthropic.lib.tools import BetaAsyncFunctionTool, BetaFunctionToolResultType, ToolError
from anthropic.lib.tools.mcp import async_mcp_tool
from anthropic.types import ToolParam, ToolUseBlock
from anthropic.types.tool_result_block_param import Content as ToolResultContent
from mcp.client.session import ClientSession, IncomingMessage
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ListenNotSupportedError

from client.errors import ClientError, ExitCode
from client.transcript import ToolCall

#: As the `mcp` client's own default: a tool may hold its response stream open for minutes.
FACADE_TIMEOUT = httpx2.Timeout(30.0, read=300.0)
START_HINT = "Start it with `./toolq up`, or point --url (TOOLQ_URL) at it."


class FacadeTools:
    """The tools one facade serves, ready for Claude, and the way to run them."""

    def __init__(self, client: mcp.Client, listed: Sequence[mcp.types.Tool], changed: asyncio.Event) -> None:
        self._client = client
        #: Set when the facade says its tool list changed.
        self._changed = changed
        self._tools = self._wrap(listed)

    def _wrap(self, listed: Sequence[mcp.types.Tool]) -> dict[str, BetaAsyncFunctionTool[Any]]:
        # async_mcp_tool only uses `call_tool(name=..., arguments=...)`; mcp.Client has it (and,
        # unlike the bare session, re-lists and resends when a stateless-era server asks to).
        session = cast(ClientSession, self._client)
        return {tool.name: async_mcp_tool(tool, session) for tool in listed}

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    async def relisted(self) -> list[ToolParam] | None:
        """The tools listed again if the facade said they changed since they were listed last;
        None (and no request) otherwise."""
        if not self._changed.is_set():
            return None
        self._changed.clear()  # a change while listing is listed at the next turn
        self._tools = self._wrap(await _list_all_tools(self._client))
        return self.params()

    def params(self) -> list[ToolParam]:
        """The tools as the Messages API takes them."""
        params: list[ToolParam] = []
        for tool in self._tools.values():
            spec = tool.to_dict()
            param: ToolParam = {"name": spec["name"], "input_schema": spec["input_schema"]}
            if spec.get("description"):
                param["description"] = spec["description"]
            params.append(param)
        return params

    async def call(self, block: ToolUseBlock) -> ToolCall:
        """Run one tool_use block on the facade. A failing tool is a result with is_error set,
        for Claude to read; only a broken connection to the facade raises."""
        started = time.monotonic()
        tool = self._tools.get(block.name)
        is_error = True
        if tool is None:
            content = _text(
                f"Unknown tool {block.name!r}; this server has: {', '.join(self._tools) or 'none'}."
            )
        else:
            try:
                content = _as_content(await tool.call(block.input))
                is_error = False
            except ToolError as failure:
                content = _as_content(failure.content)
            except mcp.MCPError as failure:
                content = _text(f"The server rejected the call to {block.name}: {failure.message}")
            except ValueError as failure:
                # Arguments the SDK helper cannot pass on, or a result that breaks the tool's schema.
                content = _text(f"The call to {block.name} failed: {failure}")
        return ToolCall(
            id=block.id,
            name=block.name,
            arguments=dict(block.input),
            is_error=is_error,
            content=content,
            seconds=time.monotonic() - started,
        )


class FacadeConnection:
    """An MCP session with the facade, and what its HTTP answers said (for explaining failures).

    The `mcp` client turns an HTTP 401 into a generic JSON-RPC error, so the statuses are
    recorded on the way in, by an httpx2 response hook.
    """

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.token = token
        self.statuses: list[int] = []

    @asynccontextmanager
    async def open(self) -> AsyncIterator[FacadeTools]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        changed = asyncio.Event()

        async def on_message(message: IncomingMessage) -> None:
            if isinstance(message, mcp.types.ToolListChangedNotification):
                changed.set()

        async with httpx2.AsyncClient(
            headers=headers, timeout=FACADE_TIMEOUT, event_hooks={"response": [self._record]}
        ) as http:
            transport = streamable_http_client(self.url, http_client=http)
            async with mcp.Client(transport, message_handler=on_message) as client, AsyncExitStack() as stack:
                await _listen_for_tool_changes(client, stack)
                yield FacadeTools(client, await _list_all_tools(client), changed)

    async def _record(self, response: httpx2.Response) -> None:
        self.statuses.append(response.status_code)

    def explain(self, errors: Sequence[BaseException]) -> ClientError | None:
        """A message for a failure of this connection, or None when these errors are not ours."""
        if 401 in self.statuses:
            fix = (
                "the token in TOOLQ_TOKEN (or --token) is not one of the facade's TOOLQ_TOKENS"
                if self.token
                else "set TOOLQ_TOKEN to one of the facade's TOOLQ_TOKENS"
            )
            return ClientError(
                f"the toolq facade at {self.url} rejected the request (HTTP 401): {fix}",
                ExitCode.FACADE_AUTH_REJECTED,
            )
        if 403 in self.statuses:
            return ClientError(
                f"the toolq facade at {self.url} refused the request (HTTP 403 Forbidden)",
                ExitCode.FACADE_AUTH_REJECTED,
            )
        for error in errors:
            if isinstance(error, httpx2.ConnectError | httpx2.ConnectTimeout):
                return ClientError(
                    f"cannot reach the toolq facade at {self.url} ({error or 'connection failed'}). "
                    f"Is it running? {START_HINT}",
                    ExitCode.FACADE_UNREACHABLE,
                )
            if isinstance(error, httpx2.TransportError):
                return ClientError(
                    f"the connection to the toolq facade at {self.url} failed "
                    f"({type(error).__name__}: {error or 'no details'})",
                    ExitCode.FACADE_UNREACHABLE,
                )
            if isinstance(error, mcp.MCPError):
                failed = [status for status in self.statuses if status >= 400]
                answered = f" (it answered HTTP {failed[-1]})" if failed else ""
                return ClientError(
                    f"{self.url} did not answer as an MCP server{answered}: {error.message}. "
                    "Is it the toolq facade's /mcp URL (by default http://127.0.0.1:8000/mcp)?",
                    ExitCode.FACADE_UNREACHABLE,
                )
        return None


async def _listen_for_tool_changes(client: mcp.Client, stack: AsyncExitStack) -> None:
    """In the 2026-07-28 era, open a `subscriptions/listen` stream for tool-list changes (its
    notifications reach the client's message handler, as the GET stream's do in the handshake
    era). A server that declares no changes, or refuses the stream, is simply not listened to."""
    tools = client.server_capabilities.tools
    if tools is None or not tools.list_changed:
        return
    try:
        await stack.enter_async_context(client.listen(tools_list_changed=True))
    except (ListenNotSupportedError, mcp.MCPError, TimeoutError):
        return  # the handshake era (its GET stream is the client's own), or no listening here


async def _list_all_tools(client: mcp.Client) -> list[mcp.types.Tool]:
    tools: list[mcp.types.Tool] = []
    cursor: str | None = None
    while True:
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            return tools


def _text(message: str) -> list[ToolResultContent]:
    return [{"type": "text", "text": message}]


def _as_content(value: BetaFunctionToolResultType) -> list[ToolResultContent]:
    """The SDK helper's result (text, or blocks in the beta types) as tool_result content."""
    if isinstance(value, str):
        return _text(value)
    return list(value)
