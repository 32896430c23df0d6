"""Notifications: progress and log messages a request's caller receives while a tool runs, and
the `notifications/cancelled` a handshake-era client sends.

Both eras carry progress and log messages only on the stream of the request they belong to.
"""

from __future__ import annotations

from typing import Any, Protocol

from facade.protocol.jsonrpc import RequestId, notification
from facade.protocol.tool_calls import CallOptions, LogEntry, ProgressUpdate, ToolEvent, log_level_at_least

__all__ = ["CallNotifier", "RequestStream", "cancelled_request_id"]


class RequestStream(Protocol):
    """The response stream of one request, as the HTTP edge provides it."""

    @property
    def can_stream(self) -> bool:
        """Whether notifications can reach the client before the response (it takes SSE)."""
        ...

    async def send(self, message: dict[str, Any]) -> None:
        """Send one notification ahead of the response (the first one opens the stream)."""
        ...


class CallNotifier:
    """Turns the events of one running call into the notifications its caller asked for.

    Progress goes out only with the caller's token and only when it increases (the spec's
    MUST); log messages only at or above the caller's level.
    """

    def __init__(self, stream: RequestStream, token: str | int | None, log_level: str | None):
        streaming = stream.can_stream
        self._stream = stream
        self._token = token if streaming else None
        self._log_level = log_level if streaming else None
        self._last_progress = float("-inf")

    def options(self, traceparent: str | None = None, principal: str | None = None) -> CallOptions:
        wanted = self._token is not None or self._log_level is not None
        return CallOptions(
            listener=self if wanted else None,
            progress=self._token is not None,
            log_level=self._log_level,
            traceparent=traceparent,
            principal=principal,
        )

    async def __call__(self, event: ToolEvent) -> None:
        if isinstance(event, ProgressUpdate):
            if self._token is None or event.progress <= self._last_progress:
                return
            self._last_progress = event.progress
            params: dict[str, Any] = {"progressToken": self._token, "progress": event.progress}
            if event.total is not None:
                params["total"] = event.total
            if event.message is not None:
                params["message"] = event.message
            await self._stream.send(notification("notifications/progress", params))
        elif isinstance(event, LogEntry):
            if self._log_level is None or not log_level_at_least(event.level, self._log_level):
                return
            params = {"level": event.level, "data": event.data}
            if event.logger is not None:
                params["logger"] = event.logger
            await self._stream.send(notification("notifications/message", params))


def cancelled_request_id(params: dict[str, Any]) -> RequestId | None:
    """The id a `notifications/cancelled` names, if it is one a request of ours can have."""
    request_id = params.get("requestId")
    if isinstance(request_id, str | int) and not isinstance(request_id, bool):
        return request_id
    return None
