"""MCP tasks kept in Redis, so that every facade replica serves every task, also after the
facade that made one is gone.

A task is a hash under a digest of its id (the id itself is never a key name), expiring with
the task's TTL. It is made `working` by the facade that queued its job; whoever sees the job end
first ends it (the worker, when it stores the result; the facade, when the result reaches it),
and once ended it never changes again (one script decides, contract.FINISH_TASK_SCRIPT). Every
facade hears on contract.TASKS_CHANNEL that a task ended, which wakes `tasks/result`. A task
whose job Redis lost (restarted empty, say) is found out when someone asks: its job is neither
queued, nor held by a worker, nor answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, cast

from arq.connections import ArqRedis
from arq.utils import timestamp_ms
from redis.exceptions import RedisError

from facade.errors import store_unavailable
from facade.outcomes import outcome_of
from facade.protocol.tasks import TERMINAL_STATUSES, TaskRecord, TaskRequest
from facade.queue_client import QueueClient
from workers import contract

log = logging.getLogger("toolq.tasks")

#: A working task whose job nobody holds any more is called lost only after this long: a job
#: is queued before its task is made, and a worker puts a lease back soon after a Redis gap.
LOST_AFTER_SECONDS = 3.0
#: tasks/result looks at its task at least this often, whether or not it heard it end.
RECHECK_SECONDS = 5.0

#: Cancels a task that has not ended. KEYS: the task. ARGV: the message, now in ms, the channel.
#: Returns {0} (no such task), {2} (it had ended), or {1, queue, job} (cancelled: stop the job).
CANCEL_SCRIPT = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {0} end
if status == 'completed' or status == 'failed' or status == 'cancelled' then return {2} end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'message', ARGV[1], 'updated', ARGV[2])
redis.call('PUBLISH', ARGV[3], KEYS[1])
return {1, redis.call('HGET', KEYS[1], 'queue'), redis.call('HGET', KEYS[1], 'job')}
"""

#: Told when a task this facade made changes (to send the client a notification).
TaskListener = Callable[[TaskRecord, TaskRequest], Awaitable[None]]


def new_task_id() -> str:
    return secrets.token_urlsafe(24)


def task_key(task_id: str) -> str:
    return contract.task_key(hashlib.sha256(task_id.encode()).hexdigest())


def _owner_index(owner: str) -> str:
    return contract.task_index_key(hashlib.sha256(owner.encode()).hexdigest())


def _text(value: bytes | None) -> str | None:
    return value.decode() if value is not None else None


class RedisTaskStore:
    def __init__(self, redis: ArqRedis, queue: QueueClient, *, poll_interval_ms: int = 1000):
        """Registers on the queue client's broadcasts: make it before the client starts."""
        self.redis = redis
        self.queue = queue
        self.poll_interval_ms = poll_interval_ms
        self._finish = redis.register_script(contract.FINISH_TASK_SCRIPT)
        self._cancel = redis.register_script(CANCEL_SCRIPT)
        self._waiting: dict[str, set[asyncio.Event]] = {}
        queue.on_broadcast(contract.TASKS_CHANNEL, self._ended)

    # --- made and ended by this facade -----------------------------------------------------------

    async def create(
        self, task_id: str, request: TaskRequest, *, ttl_ms: int, queue: str, job_id: str
    ) -> TaskRecord:
        """Make the task `working`, durably (any replica finds it once this returns)."""
        now = timestamp_ms()
        key = task_key(task_id)
        fields = {
            "id": task_id,
            "owner": request.owner or "",
            "status": "working",
            "created": now,
            "updated": now,
            "ttl": ttl_ms,
            "poll": self.poll_interval_ms,
            "queue": queue,
            "job": job_id,
            "era": request.era,
        }
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=fields)
                pipe.pexpire(key, ttl_ms)
                if request.owner is not None:
                    index = _owner_index(request.owner)
                    pipe.zadd(index, {task_id: now})
                    pipe.pexpire(index, ttl_ms)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise store_unavailable("the task store", exc) from exc
        return TaskRecord(task_id, "working", now, now, ttl_ms, self.poll_interval_ms)

    async def finish(self, task_id: str, job_id: str, result: contract.CallResult) -> TaskRecord | None:
        """End the task with its job's result unless it has ended: the task now, if it changed."""
        ended = await self._finish(
            keys=[task_key(task_id), contract.result_key(job_id)],
            args=[
                contract.task_status(result),
                contract.dumps(result),
                timestamp_ms(),
                contract.TASKS_CHANNEL,
            ],
        )
        return await self.read(task_id) if ended else None

    # --- asked by clients (TaskStore) --------------------------------------------------------------

    async def get(self, task_id: str, owner: str | None) -> TaskRecord | None:
        try:
            fields = await self._fields(task_id, owner)
            if fields is None:
                return None
            if fields[b"status"] == b"working" and await self._job_is_gone(task_id, fields):
                fields = await self._fields(task_id, owner)
        except (RedisError, OSError) as exc:
            raise store_unavailable("the task store", exc) from exc
        return _record(fields) if fields is not None else None

    async def list(
        self, owner: str | None, cursor: str | None, limit: int
    ) -> tuple[list[TaskRecord], str | None]:
        if owner is None:
            return [], None
        if cursor is not None and not cursor.isdigit():
            raise ValueError("cursor is not valid")
        start = int(cursor or 0)
        index = _owner_index(owner)
        try:
            ids = [raw.decode() for raw in await self.redis.zrevrange(index, start, start + limit)]
            async with self.redis.pipeline(transaction=False) as pipe:
                for task_id in ids[:limit]:
                    pipe.hgetall(task_key(task_id))
                rows = await pipe.execute()
            gone = [task_id for task_id, row in zip(ids, rows, strict=False) if not row]
            if gone:
                await self.redis.zrem(index, *gone)
        except (RedisError, OSError) as exc:
            raise store_unavailable("the task store", exc) from exc
        records = [_record(row) for row in rows if row and _text(row.get(b"owner")) == owner]
        return records, str(start + limit) if len(ids) > limit else None

    async def cancel(self, task_id: str, owner: str | None) -> tuple[TaskRecord, bool] | None:
        try:
            if await self._fields(task_id, owner) is None:
                return None
            outcome = await self._cancel(
                keys=[task_key(task_id)],
                args=["Cancelled by request.", timestamp_ms(), contract.TASKS_CHANNEL],
            )
            if outcome[0] == 1:
                await self.queue.abort(outcome[1].decode(), outcome[2].decode())
            record = await self.read(task_id)
        except (RedisError, OSError) as exc:
            raise store_unavailable("the task store", exc) from exc
        if record is None:
            return None
        return record, outcome[0] == 2

    async def wait(self, task_id: str, owner: str | None) -> TaskRecord | None:
        record = await self.get(task_id, owner)
        if record is None or record.terminal:
            return record
        key = task_key(task_id)
        ended = asyncio.Event()
        self._waiting.setdefault(key, set()).add(ended)
        try:
            while record is not None and not record.terminal:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECHECK_SECONDS):
                        await ended.wait()
                ended.clear()
                record = await self.get(task_id, owner)
            return record
        finally:
            waiting = self._waiting.get(key)
            if waiting is not None:
                waiting.discard(ended)
                if not waiting:
                    del self._waiting[key]

    # --- parts ---------------------------------------------------------------------------------------

    def _ended(self, payload: bytes) -> None:
        for event in self._waiting.get(payload.decode(), ()):
            event.set()

    async def _fields(self, task_id: str, owner: str | None) -> dict[bytes, bytes] | None:
        fields = await self._hgetall(task_id)
        if not fields:
            return None
        stored_owner = fields.get(b"owner", b"").decode()
        if stored_owner and stored_owner != owner:
            return None  # another's task is as good as unknown
        return fields

    async def read(self, task_id: str) -> TaskRecord | None:
        """The task as it is now, whoever owns it."""
        fields = await self._hgetall(task_id)
        return _record(fields) if fields else None

    async def _hgetall(self, task_id: str) -> dict[bytes, bytes]:
        return await cast(Awaitable[dict[bytes, bytes]], self.redis.hgetall(task_key(task_id)))

    async def _job_is_gone(self, task_id: str, fields: dict[bytes, bytes]) -> bool:
        """A working task's job ended without ending it (its worker and facade died), or was lost
        with Redis: end it from the job's stored result, or as lost. True if it was ended."""
        if timestamp_ms() - int(fields[b"created"]) < LOST_AFTER_SECONDS * 1000:
            return False
        job_id = fields[b"job"].decode()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(contract.job_key(job_id), contract.IN_PROGRESS_KEY_PREFIX + job_id)
            pipe.get(contract.result_key(job_id))
            alive, stored = await pipe.execute()
        if stored is not None:
            result = contract.call_result_from_arq_record(stored)
        elif not alive:
            result = contract.failed_result(
                "unavailable",
                "The queue lost this task's job (Redis restarted without its data, or its worker and "
                "facade stopped); it may or may not have run. Try again.",
            )
        else:
            return False
        return await self.finish(task_id, job_id, result) is not None


def _record(fields: dict[bytes, bytes]) -> TaskRecord:
    raw_outcome = fields.get(b"outcome")
    status = fields[b"status"].decode()
    outcome = outcome_of(contract.loads(raw_outcome)) if raw_outcome else None
    error: dict[str, Any] | None = contract.loads(fields[b"error"]) if b"error" in fields else None
    if status not in TERMINAL_STATUSES and status != "working":
        status = "working"
    return TaskRecord(
        task_id=fields[b"id"].decode(),
        status=status,
        created_ms=int(fields[b"created"]),
        updated_ms=int(fields[b"updated"]),
        ttl_ms=int(fields[b"ttl"]),
        poll_interval_ms=int(fields[b"poll"]),
        status_message=_text(fields.get(b"message")),
        outcome=outcome,
        error=error,
    )
