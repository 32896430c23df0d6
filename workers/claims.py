"""A job's records in Redis as one worker sees them: claimed and read, then stored and told.

arq's worker spends four round trips on every job besides running it: claim (WATCH, EXISTS,
ZSCORE, MULTI), read (GET, INCR, EXPIRE, ZREM in a MULTI), the completion push and store (a
MULTI of five). Here each step is one script (scripts/claim.lua, scripts/finish.lua): a batch of
jobs is claimed and read in one round trip, and a finished job is stored, ended and announced
in another. The records themselves stay arq's: the job record `serialize_job` writes, the result
record `serialize_result` writes, arq's in-progress, retry and abort keys.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from arq.connections import ArqRedis
from arq.constants import retry_key_prefix

from workers import contract
from workers.pipelined_redis import HotPath, Script

_SCRIPTS = Path(__file__).parent / "scripts"
_CLAIM_JOBS = (_SCRIPTS / "claim_jobs.lua").read_text()
CLAIM_SCRIPT = Script(_CLAIM_JOBS + (_SCRIPTS / "claim.lua").read_text())
FINISH_SCRIPT = Script(_CLAIM_JOBS + (_SCRIPTS / "finish.lua").read_text())
FINISH_TASK_SCRIPT = Script(contract.FINISH_TASK_SCRIPT)


@dataclass(frozen=True)
class ClaimedJob:
    """A job this worker now holds (its in-progress key is this worker's lease)."""

    job_id: str
    #: Its score in the queue: when it was due (arq's `score` in the job's ctx).
    score: int
    #: arq's job record; None when the job expired in the queue (its key is gone).
    record: bytes | None
    #: Which run of the job this is (arq's job_try), 1 on the first.
    job_try: int
    #: The job was aborted before it started.
    aborted: bool
    #: When it was claimed, by Redis's clock (the clock its score is on): its wait in the queue is
    #: `claimed_at_ms - score`.
    claimed_at_ms: int

    @property
    def queued_ms(self) -> int:
        return max(0, self.claimed_at_ms - self.score)


@dataclass(frozen=True)
class Outcome:
    """A finished job's outcome, ready to store."""

    job_id: str
    #: arq's result record, and how long it is kept.
    record: bytes
    keep_ms: int
    #: The CallResult, and its JSON (pushed to the facade, and kept in the task if there is one).
    result: contract.CallResult
    result_json: bytes
    #: The MCP task the job carries out, if any.
    task: contract.TaskRef | None
    now_ms: int


def claimed_jobs(answers: list[Any]) -> list[ClaimedJob]:
    """The jobs a claim_jobs script claimed (scripts/claim_jobs.lua), as ClaimedJobs."""
    return [
        ClaimedJob(raw_id.decode(), int(float(score)), record, int(job_try), bool(aborted), int(now))
        for raw_id, score, record, job_try, aborted, now in answers
    ]


class JobRecords:
    """Claims, stores and hands back the jobs of one pool's queue for one worker."""

    def __init__(self, redis: ArqRedis, hot: HotPath, pops: HotPath, queue: str, worker_id: str) -> None:
        """`hot` carries claims and stores, `pops` the blocking pops of the ready list (a
        connection of their own: a pop holds its connection while it waits); `redis` the rest."""
        self.redis = redis
        self.scripts = hot
        self.pops = pops
        self.queue = queue
        self.ready = contract.ready_list(queue)
        self.worker_id = worker_id

    def _claim_args(self, lease_ms: int) -> list[Any]:
        """What claim_jobs (scripts/claim_jobs.lua) takes, in its order."""
        return [
            self.worker_id,
            lease_ms,
            self.queue,
            contract.ABORT_JOBS,
            contract.IN_PROGRESS_KEY_PREFIX,
            contract.JOB_KEY_PREFIX,
            retry_key_prefix,
        ]

    async def claim(self, job_ids: list[str], most: int, lease_ms: int) -> list[ClaimedJob]:
        """Claim up to `most` of these jobs, in order, and read them (one round trip); the ones
        that were not this worker's to run (held by another, no longer queued, not yet due) are
        left out."""
        args = [*self._claim_args(lease_ms), most, *job_ids]
        return claimed_jobs(
            await self.scripts.run_script(CLAIM_SCRIPT, [self.queue, contract.ABORT_JOBS], args)
        )

    async def store(self, outcome: Outcome, take: int, lease_ms: int) -> list[ClaimedJob]:
        """Store the job's result record, end the job and push its completion to the waiting
        facade (and end its MCP task too, if it carries one), and claim up to `take` of the
        jobs waiting on the pool's ready list: one round trip. Returns the jobs taken."""
        job_id = outcome.job_id
        keys = [
            contract.IN_PROGRESS_KEY_PREFIX + job_id,
            contract.result_key(job_id),
            retry_key_prefix + job_id,
            contract.job_key(job_id),
            contract.ABORT_JOBS,
            self.queue,
            self.ready,
        ]
        args: list[Any] = [
            *self._claim_args(lease_ms),
            outcome.record,
            outcome.keep_ms,
            job_id,
            completion_channel(job_id),
            done_event(job_id, outcome.result_json),
            take,
        ]
        finish = self.scripts.run_script(FINISH_SCRIPT, keys, args)
        task = outcome.task
        if task is None:
            return claimed_jobs(await finish)
        task_keys = [task["key"], contract.result_key(job_id)]
        status = contract.task_status(outcome.result)
        task_args: list[Any] = [status, outcome.result_json, outcome.now_ms, contract.TASKS_CHANNEL]
        # Sent together: on a PipelinedRedis, one round trip.
        answers, _ = await asyncio.gather(
            finish, self.scripts.run_script(FINISH_TASK_SCRIPT, task_keys, task_args)
        )
        return claimed_jobs(answers)

    async def hand_back(self, job_id: str) -> None:
        """A job this worker stopped before it finished (it is stopping): give up the lease and
        put the id back where the pool's next worker takes it first."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(contract.IN_PROGRESS_KEY_PREFIX + job_id)
            pipe.rpush(self.ready, job_id)
            await pipe.execute()

    async def give_back(self, job_ids: list[str]) -> None:
        """Ids popped from the ready list that this worker will not claim go back where the
        pool's next worker pops them first, the oldest first."""
        await self.scripts.execute("RPUSH", self.ready, *reversed(job_ids))

    async def pop_ready(self, free: int, wait_seconds: int) -> list[str]:
        """Up to `free` ids from the pool's ready list, waiting up to `wait_seconds` for the
        first: one BLMPOP (Redis 7.0 or newer)."""
        popped = await self.pops.execute("BLMPOP", wait_seconds, 1, self.ready, "RIGHT", "COUNT", free)
        return [raw.decode() for raw in popped[1]] if popped else []

    async def queued(self, limit: int) -> list[str]:
        """Ids of the jobs in the queue, oldest first (the safety net: ids the ready list lost,
        jobs whose worker died); some may be running on a worker still, some not due yet (the
        claim checks that, by Redis's clock)."""
        ids = await self.redis.zrange(self.queue, 0, limit - 1)
        return [raw.decode() for raw in ids]

    async def abort_marked(self, job_ids: list[str]) -> list[str]:
        """Which of these jobs are marked to abort (the safety net of the abort push)."""
        scores = await cast(Any, self.redis).zmscore(contract.ABORT_JOBS, job_ids)
        return [job_id for job_id, score in zip(job_ids, scores, strict=True) if score is not None]


def completion_channel(job_id: str) -> str:
    """Where a job's completion is pushed: the events channel of the facade waiting for it (its
    id is in the job id), or "" for a job no facade made."""
    facade_id = contract.facade_of(job_id)
    return contract.events_channel(facade_id) if facade_id else ""


def done_event(job_id: str, result_json: bytes) -> bytes:
    """The completion event for a job's facade: with the result when it is small enough to push
    through the facade's shared events channel, else an announcement (the facade reads it)."""
    if len(result_json) > contract.INLINE_RESULT_BYTES:
        return contract.dumps(contract.DoneEvent(type="done", job_id=job_id))
    return b'{"type":"done","job_id":' + contract.dumps(job_id) + b',"result":' + result_json + b"}"
