"""The queue contract: the one module that both the facade and the workers import.

Every Redis key and channel name toolq uses, the envelopes that travel between the two sides
and the JSON serializer arq is configured with live here, so that neither side can drift from
the other. Nothing on any Redis hop is pickled: a shared Redis must never become a way to run
code in a worker or a facade.
"""

from __future__ import annotations

import json
import math
import secrets
from typing import Any, Literal, NotRequired, TypedDict, TypeGuard

import orjson
from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import DeserializationError, deserialize_result

PREFIX = "toolq"

#: Sorted set of live workers: member = worker id, score = unix ms after which it is dead.
WORKERS_LIVE = f"{PREFIX}:workers"
#: Set of every tool name any worker ever served: a call to one with no live worker fails fast.
TOOLS_EVER_SERVED = f"{PREFIX}:tools"
#: Published (payload: worker id) when a worker joins or leaves, so catalogs refresh at once.
REGISTRY_CHANNEL = f"{PREFIX}:registry"
#: Facade to facade: a client cancelled a request that another replica may be serving
#: (payload: JSON {"session", "request"}).
CANCEL_CHANNEL = f"{PREFIX}:cancel"
#: Facade to facade: a notification for an open stream that another replica may hold, or the
#: end of a session's stream (payload: JSON {"kind", "from", ...}, sessions and tasks named by
#: digests of their ids; facade/listeners.py).
NOTIFY_CHANNEL = f"{PREFIX}:notify"

#: arq's keys, from arq itself: the sorted set of jobs to abort, and the prefixes of a job, its
#: result and its in-progress claim (the worker's lease).
ABORT_JOBS = abort_jobs_ss
JOB_KEY_PREFIX = job_key_prefix
RESULT_KEY_PREFIX = result_key_prefix
IN_PROGRESS_KEY_PREFIX = in_progress_key_prefix

#: How often workers renew their registry entry, and how long an entry lives without renewal.
HEARTBEAT_SECONDS = 5.0
WORKER_TTL_SECONDS = 15.0


def worker_key(worker_id: str) -> str:
    """JSON description of one worker: its queue and the specs of the tools it serves."""
    return f"{PREFIX}:worker:{worker_id}"


def queue_name(pool: str) -> str:
    """The arq queue (a sorted set) that every worker of one pool reads."""
    return f"{PREFIX}:queue:{pool}"


def ready_list(queue: str) -> str:
    """Every enqueued job's id is pushed here; each is popped by one worker of the pool, the one
    that has waited longest with a free slot. The queue (arq's sorted set) stays the record: a
    worker's safety-net poll finds what the list lost."""
    return f"{queue}:ready"


def wake_channel(queue: str) -> str:
    """Published on every abort so workers act at once (see wake_message)."""
    return f"{queue}:wake"


#: A wake message is the id of a new job, or this prefix and the id of a job to abort.
WAKE_ABORT_PREFIX = "abort:"


def wake_message(job_id: str, *, abort: bool = False) -> str:
    return f"{WAKE_ABORT_PREFIX}{job_id}" if abort else job_id


def events_channel(facade_id: str) -> str:
    """Where workers push completions and progress for the calls one facade is waiting on."""
    return f"{PREFIX}:events:{facade_id}"


def rate_key(kind: str, name: str) -> str:
    """A token bucket of the facades' rate limits (kind: "principal" or "tool")."""
    return f"{PREFIX}:rate:{kind}:{name}"


def auth_failures_key(address: str, minute: int) -> str:
    """Failed authentications from one client address in one minute (facade/security.py)."""
    return f"{PREFIX}:authfail:{address}:{minute}"


def session_key(digest: str) -> str:
    """One handshake-era session, under a digest of its id (facade/sessions.py)."""
    return f"{PREFIX}:session:{digest}"


def session_index_key(principal: str | None) -> str:
    """The sessions of one principal (token name; empty without authentication), by last use."""
    return f"{PREFIX}:sessions:{principal or ''}"


#: Recent per-tool figures for `toolq status`, written by the workers (workers/metrics.py): one
#: hash per tool and minute with fields `calls`, `errors`, and `w<i>`/`r<i>`, the count of queue
#: waits/run times in bucket i, whose upper bounds in ms are STATS_BUCKETS_MS (then +inf).
STATS_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000)
STATS_KEEP_SECONDS = 15 * 60


def stats_key(tool: str, minute: int) -> str:
    """One tool's figures for one minute (minute: unix time // 60)."""
    return f"{PREFIX}:stats:{tool}:{minute}"


def job_function(tool_name: str) -> str:
    """The arq function name under which a worker registers a tool."""
    return f"tool:{tool_name}"


def new_facade_id() -> str:
    return secrets.token_hex(6)


def new_job_id(facade_id: str) -> str:
    """A fresh job id that names the facade waiting for it, so completion goes only there."""
    return f"{facade_id}.{secrets.token_hex(12)}"


def facade_of(job_id: str) -> str | None:
    facade_id, sep, _ = job_id.partition(".")
    return facade_id if sep else None


def job_key(job_id: str) -> str:
    return JOB_KEY_PREFIX + job_id


def result_key(job_id: str) -> str:
    return RESULT_KEY_PREFIX + job_id


# --- envelopes --------------------------------------------------------------------------------

ErrorKind = Literal[
    "cancelled",  # the call was stopped before it finished (its caller left, or its task was cancelled)
    "invalid_arguments",  # the arguments do not match the tool's input schema
    "tool_error",  # the tool ran and reported a failure (ToolError) or crashed
    "timeout",  # the tool did not finish within its timeout
    "unavailable",  # the tool is not served by this worker
]


class ToolFailure(TypedDict):
    kind: ErrorKind
    message: str


def failed_result(kind: ErrorKind, message: str, worker: str = "", duration_ms: float = 0.0) -> CallResult:
    """The CallResult of a call that failed (`kind` says how)."""
    return {
        "ok": False,
        "error": {"kind": kind, "message": message},
        "worker": worker,
        "duration_ms": duration_ms,
    }


class CallResult(TypedDict):
    """What a worker returns for one call (and what arq stores as the job's result).

    A success carries `structured` (the tool's data, as its output schema describes it),
    `content` (MCP content blocks), or both; without `content` the data is shown as JSON text.
    """

    ok: bool
    structured: NotRequired[Any]
    content: NotRequired[list[dict[str, Any]]]
    error: NotRequired[ToolFailure]
    worker: str
    #: How long the tool ran.
    duration_ms: float
    #: How long the job waited in the queue before a worker claimed it (Redis's clock).
    queued_ms: NotRequired[float]


class ToolOutput(TypedDict):
    """What a tool produced: data (as its output schema describes it), content blocks, or both."""

    structured: NotRequired[Any]
    content: NotRequired[list[dict[str, Any]]]


class JobArguments(TypedDict):
    """The single positional argument of every toolq job."""

    arguments: dict[str, Any]
    #: Whether the caller receives progress reports (else the worker publishes none).
    progress: bool
    #: The least severe log level the caller receives (one of LOG_LEVELS); absent: no logs.
    log_level: NotRequired[str]
    #: W3C trace context of the MCP request that made this job.
    traceparent: NotRequired[str]
    #: The MCP task this job carries out, if the call may become one.
    task: NotRequired[TaskRef]


class TaskRef(TypedDict):
    """Where a job's MCP task lives: the worker records the job's outcome there."""

    #: The task's Redis key (a digest of its id, never the id).
    key: str


TASK_KEY_PREFIX = "toolq:task:"
#: Every facade hears here that a task reached its end (the message is the task's key).
TASKS_CHANNEL = "toolq:tasks:ended"
TERMINAL_TASK_STATUSES = ("completed", "failed", "cancelled")


def task_key(digest: str) -> str:
    return TASK_KEY_PREFIX + digest


def task_index_key(owner_digest: str) -> str:
    """The tasks of one owner, by creation time (for tasks/list)."""
    return f"toolq:tasks:owner:{owner_digest}"


#: Ends a task with the job's outcome, unless it has ended already (cancelled, say) or is gone
#: (its TTL passed, or it was never made: the call was answered inline); the job's stored result
#: is then kept as long as the task. KEYS: the task, the job's result.
#: ARGV: status, outcome (JSON CallResult), now in ms, the channel to announce it on.
FINISH_TASK_SCRIPT = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'completed' or status == 'failed' or status == 'cancelled' then
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'outcome', ARGV[2], 'updated', ARGV[3])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
redis.call('PUBLISH', ARGV[4], KEYS[1])
return 1
"""
#: Sets a working task's status message (the tool's latest progress message). KEYS: the task.
#: ARGV: the message, now in ms.
TASK_MESSAGE_SCRIPT = """
if redis.call('HGET', KEYS[1], 'status') == 'working' then
  redis.call('HSET', KEYS[1], 'message', ARGV[1], 'updated', ARGV[2])
  return 1
end
return 0
"""


#: Results up to this size travel inside their completion event; a larger one is only announced
#: and the facade reads it from arq's result key, so that no result can overflow the pub/sub
#: buffer of a facade's events channel, which every call it waits on shares.
INLINE_RESULT_BYTES = 64 * 1024


class DoneEvent(TypedDict):
    type: Literal["done"]
    job_id: str
    #: Absent for a result larger than INLINE_RESULT_BYTES: read it from result_key(job_id).
    result: NotRequired[CallResult]


class ProgressEvent(TypedDict):
    type: Literal["progress"]
    job_id: str
    progress: float
    total: NotRequired[float]
    message: NotRequired[str]


class LogEvent(TypedDict):
    """A log entry a tool wrote through its context while running (MCP notifications/message)."""

    type: Literal["log"]
    job_id: str
    level: str
    data: Any
    logger: NotRequired[str]


#: MCP's log levels (RFC 5424 severities), least severe first.
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
_SEVERITY = {level: rank for rank, level in enumerate(LOG_LEVELS)}


def log_level_at_least(level: str, minimum: str) -> bool:
    """Whether a message at `level` passes a caller's `minimum` (unknown levels pass nothing)."""
    return level in _SEVERITY and _SEVERITY[level] >= _SEVERITY.get(minimum, len(LOG_LEVELS))


class WorkerInfo(TypedDict):
    """What a worker publishes under worker_key(): enough for a facade to route and list."""

    worker_id: str
    pool: str
    queue: str
    tools: list[dict[str, Any]]
    host: str
    pid: int
    started_at: float
    #: Jobs it runs at once (its slots): what the facades' admission control counts on.
    concurrency: NotRequired[int]
    #: How long its claim on a job outlives it: a dead worker's job runs again this late.
    lease_seconds: NotRequired[float]
    #: Jobs it ran at its last heartbeat.
    running: NotRequired[int]


# --- serialization ----------------------------------------------------------------------------


def _encode_default(value: Any) -> Any:
    # arq stores exceptions as results on its own failure paths (job expired, aborted, max tries
    # exceeded, crash): keep their type and message, never the object.
    if isinstance(value, BaseException):
        return {"__exception__": type(value).__name__, "message": str(value)}
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    """The serializer for every Redis hop (arq jobs, results, events, registry): compact UTF-8
    JSON. NaN and Infinity are not JSON: what cannot be said in JSON is a ValueError here.

    orjson writes it in a fraction of the time, but writes NaN and Infinity as null: output
    with a null in it is searched for them. What orjson refuses (an integer beyond 64 bits) is
    written by the standard library, which keeps big integers exact.
    """
    encoded = dumps_finite(value)
    if b"null" in encoded and _non_finite(value):
        raise ValueError("Out of range float values are not JSON compliant (NaN or Infinity)")
    return encoded


def dumps_finite(value: Any) -> bytes:
    """dumps() for a value known to hold no NaN or Infinity (it came from JSON, or was checked
    by dumps() already): no search for them."""
    try:
        return orjson.dumps(value, default=_encode_default, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(
            value, default=_encode_default, separators=(",", ":"), allow_nan=False, ensure_ascii=False
        ).encode()


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_non_finite(item) for item in value)
    return False


def loads(data: bytes | str) -> Any:
    return json.loads(data)


def is_exception_record(value: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and "__exception__" in value


#: The messages of the JobExecutionFailed that arq's Worker.run_job records by itself (arq has no
#: codes for them); tests/test_arq_fence.py fails if an arq release changes them.
ARQ_EXPIRED = "job expired"
ARQ_RETRIES_EXCEEDED = "retries exceeded"


def call_result_from_arq_record(raw: bytes, worker_id: str = "") -> CallResult:
    """An arq result record -> the CallResult the job returned, or a failure saying why.

    Decoded with arq's own deserialize_result. arq writes a record of its own (with an exception
    as the result) when a job expires in the queue, is aborted before it starts, or runs out of
    tries; that becomes a failure here.
    """
    try:
        record = deserialize_result(raw, deserializer=loads)
    except DeserializationError:
        record = None
    value = record.result if record is not None else None
    if record is not None and record.success and isinstance(value, dict) and "ok" in value:
        return value  # type: ignore[return-value]
    kind: ErrorKind = "tool_error"
    if is_exception_record(value):
        name, message = value["__exception__"], value.get("message") or ""
        if name == "CancelledError":
            reason = "the call was cancelled"
            kind = "cancelled"
        elif ARQ_RETRIES_EXCEEDED in message:
            reason = (
                "the worker running it stopped before it finished, and the tool is not idempotent, "
                "so it was not run again; it may or may not have taken effect"
            )
        elif message == ARQ_EXPIRED:
            reason = "no worker picked it up before its deadline"
        else:
            reason = f"{name}: {message}" if message else name
    else:
        reason = str(value)
    return failed_result(kind, f"The job did not run to completion ({reason}).", worker_id)


def task_of_arq_record(raw: bytes) -> TaskRef | None:
    """The task a job's arq record (its arguments are in it) carries out, if any."""
    try:
        record = deserialize_result(raw, deserializer=loads)
    except DeserializationError:
        return None
    call = record.args[0] if record.args else None
    task = call.get("task") if isinstance(call, dict) else None
    if isinstance(task, dict) and isinstance(task.get("key"), str):
        return {"key": task["key"]}
    return None


def task_status(result: CallResult) -> str:
    """The MCP task status a job's outcome gives its task: a tool's own failure still completes
    it (with isError); a cancellation cancels it; a call that could not be served at all (the
    queue lost it, or the tool said it is unavailable) fails it."""
    error = result.get("error")
    if result.get("ok") or error is None:
        return "completed"
    return {"cancelled": "cancelled", "unavailable": "failed"}.get(error["kind"], "completed")
