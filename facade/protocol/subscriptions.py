"""Notification streams: what a client asks to hear, and the messages that travel on the stream.

A handshake-era session hears the server on its `GET /mcp` stream; a stateless-era client opens
`subscriptions/listen`, a POST whose SSE response stays open: the server first acknowledges the
subscription (the subset of the filter it agreed to), then sends only the notifications asked
for, each tagged with the subscription's id (the listen request's JSON-RPC id). When the server
ends the subscription itself (shutting down), its last message is the listen request's result.

Pure: the service that holds the open streams (facade/listeners.py) is handed in as a
`Subscriptions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from facade.protocol.envelope import Envelope
from facade.protocol.jsonrpc import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    MISSING_CLIENT_CAPABILITY,
    JsonRpcError,
    Request,
    RequestId,
    notification,
)
from facade.protocol.notifications import RequestStream
from facade.protocol.tasks import TASKS_EXTENSION

__all__ = [
    "MAX_TASK_IDS",
    "MAX_TASK_ID_CHARS",
    "SUBSCRIPTION_ID",
    "TOOLS_LIST_CHANGED",
    "Subscription",
    "Subscriptions",
    "acknowledged",
    "closed",
    "listen",
    "read_subscription",
    "task_status",
    "tools_list_changed",
]

#: The `_meta` key naming the subscription a message belongs to (2026-07-28).
SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"
TOOLS_LIST_CHANGED = "notifications/tools/list_changed"
#: A subscription watches at most this many tasks, of ids at most this long; more are left out
#: of the acknowledgement (it names what the server agreed to).
MAX_TASK_IDS = 100
MAX_TASK_ID_CHARS = 256


@dataclass(frozen=True)
class Subscription:
    """What one `subscriptions/listen` request asks to hear, as far as toolq serves it."""

    #: The listen request's JSON-RPC id: every message of the subscription carries it.
    id: RequestId
    tools_list_changed: bool = False
    #: Tasks whose status the client wants (`notifications/tasks`); asked only with the tasks
    #: extension declared. Not yet checked: who may watch which task is the service's to decide.
    task_ids: tuple[str, ...] = ()
    #: Whether the client asked for task notifications at all (an empty list included): the
    #: acknowledgement then names the task ids agreed to, perhaps none.
    asked_tasks: bool = False


class Subscriptions(Protocol):
    """The service that holds open subscriptions and feeds them."""

    async def listen(self, subscription: Subscription, principal: str | None, stream: RequestStream) -> None:
        """Acknowledge the subscription on `stream`, then send its notifications until the server
        ends it (return: the caller sends the closing result) or the client leaves (cancelled)."""
        ...


def _flag(filter_: dict[str, Any], name: str, request_id: RequestId) -> bool:
    value = filter_.get(name, False)
    if not isinstance(value, bool):
        raise JsonRpcError(
            INVALID_PARAMS, f"Invalid params: notifications.{name} must be a boolean", id=request_id
        )
    return value


def read_subscription(request: Request, envelope: Envelope) -> Subscription:
    """The subscription a `subscriptions/listen` asks for; -32602 for a filter that is not one,
    -32021 for task notifications without the tasks extension declared."""
    filter_ = request.params.get("notifications")
    if not isinstance(filter_, dict):
        raise JsonRpcError(
            INVALID_PARAMS, 'Invalid params: "notifications" must be an object (the filter)', id=request.id
        )
    for name in ("promptsListChanged", "resourcesListChanged"):
        _flag(filter_, name, request.id)  # well-formed, though toolq has no prompts or resources
    subscriptions = filter_.get("resourceSubscriptions", [])
    if not isinstance(subscriptions, list) or not all(isinstance(uri, str) for uri in subscriptions):
        raise JsonRpcError(
            INVALID_PARAMS,
            "Invalid params: notifications.resourceSubscriptions must be an array of strings",
            id=request.id,
        )
    task_ids = filter_.get("taskIds")
    if task_ids is not None:
        if not isinstance(task_ids, list) or not all(isinstance(task, str) for task in task_ids):
            raise JsonRpcError(
                INVALID_PARAMS,
                "Invalid params: notifications.taskIds must be an array of strings",
                id=request.id,
            )
        if not envelope.declares_extension(TASKS_EXTENSION):
            raise JsonRpcError(
                MISSING_CLIENT_CAPABILITY,
                f"Missing required client capability: task notifications need the {TASKS_EXTENSION} "
                "extension declared in clientCapabilities.extensions",
                data={"requiredCapabilities": {"extensions": {TASKS_EXTENSION: {}}}},
                id=request.id,
            )
    wanted = [task for task in dict.fromkeys(task_ids or []) if 0 < len(task) <= MAX_TASK_ID_CHARS]
    return Subscription(
        id=request.id,
        tools_list_changed=_flag(filter_, "toolsListChanged", request.id),
        task_ids=tuple(wanted[:MAX_TASK_IDS]),
        asked_tasks=task_ids is not None,
    )


async def listen(
    service: Subscriptions, request: Request, envelope: Envelope, principal: str | None, stream: RequestStream
) -> dict[str, Any]:
    """Serve one `subscriptions/listen` until the server ends it; its closing result."""
    subscription = read_subscription(request, envelope)
    if not stream.can_stream:
        raise JsonRpcError(
            INVALID_REQUEST,
            "Invalid Request: subscriptions/listen answers with a stream; accept text/event-stream",
            id=request.id,
        )
    await service.listen(subscription, principal, stream)
    return closed(subscription.id)


def _tagged(meta: Any, subscription_id: RequestId | None) -> dict[str, Any]:
    tagged = dict(meta) if isinstance(meta, dict) else {}
    if subscription_id is not None:
        tagged[SUBSCRIPTION_ID] = subscription_id
    return tagged


def acknowledged(subscription_id: RequestId, agreed: dict[str, Any]) -> dict[str, Any]:
    """The first message of a subscription: the part of its filter the server honours."""
    return notification(
        "notifications/subscriptions/acknowledged",
        {"_meta": _tagged(None, subscription_id), "notifications": agreed},
    )


def tools_list_changed(subscription_id: RequestId | None = None) -> dict[str, Any]:
    """The tool list changed: for a subscription (tagged) or a handshake-era GET stream (bare)."""
    if subscription_id is None:
        return {"jsonrpc": "2.0", "method": TOOLS_LIST_CHANGED}
    return notification(TOOLS_LIST_CHANGED, {"_meta": _tagged(None, subscription_id)})


def task_status(task_id: str, params: dict[str, Any], subscription_id: RequestId) -> dict[str, Any]:
    """`notifications/tasks` for a subscription watching the task: `params` is the task as
    `tasks/get` shows it."""
    body = {**params, "taskId": task_id, "_meta": _tagged(params.get("_meta"), subscription_id)}
    return notification("notifications/tasks", body)


def closed(subscription_id: RequestId) -> dict[str, Any]:
    """The listen request's result, sent when the server ends the subscription gracefully."""
    return {"resultType": "complete", "_meta": _tagged(None, subscription_id)}
