"""Telling clients that their task changed: `notifications/tasks/status` on a handshake-era
session's GET stream, `notifications/tasks` on the stateless era's `subscriptions/listen`
streams that watch the task. Best effort, as the specification allows: clients poll anyway."""

from __future__ import annotations

from facade.listeners import Listeners, TaskWatchPredicate
from facade.protocol.tasks import TaskRecord, TaskRequest, handshake_task, stateless_task, task_owner
from facade.tasks import RedisTaskStore, TaskListener

__all__ = ["task_notifier", "task_watch_predicate"]


def task_notifier(listeners: Listeners) -> TaskListener:
    """What QueuedToolCalls calls when a task it follows has ended."""

    async def notify(record: TaskRecord, request: TaskRequest) -> None:
        if request.era == "handshake":
            if request.session_id is not None:
                notification = {
                    "jsonrpc": "2.0",
                    "method": "notifications/tasks/status",
                    "params": handshake_task(record),
                }
                await listeners.to_session(request.session_id, notification)
            return
        await listeners.to_task_watchers(record.task_id, stateless_task(record, detailed=True))

    return notify


def task_watch_predicate(tasks: RedisTaskStore) -> TaskWatchPredicate:
    """Who may watch a task on a `subscriptions/listen` stream: whoever may `tasks/get` it."""

    async def may_watch(task_id: str, principal: str | None) -> bool:
        return await tasks.get(task_id, task_owner(principal, None)) is not None

    return may_watch
