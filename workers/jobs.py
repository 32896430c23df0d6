"""What one job does on its worker: run a tool on the call's arguments and shape the outcome.

Every outcome but cancellation becomes a CallResult (a tool's error, a timeout, a crash, bad
arguments, a result JSON cannot carry or that is too large), so nothing a tool does can raise
through the worker. Progress reports and log entries are pushed to the waiting facade while the
tool runs; the completion itself is pushed when the result is stored (workers/claims.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from arq.connections import ArqRedis
from arq.utils import timestamp_ms
from arq.worker import Function, func
from pydantic import ValidationError
from redis.exceptions import RedisError

from workers import contract
from workers.definition import SyncRunner, ToolContext, ToolDefinition, ToolError, ToolUnavailable
from workers.sync_tools import ToolProcessDied

log = logging.getLogger("toolq.worker")

#: arq's own job timeout sits this far behind the tool's, so the tool's timeout (which returns
#: a clean error) always fires first.
ARQ_TIMEOUT_MARGIN_SECONDS = 5.0
#: Tries for idempotent tools: a job whose worker died is run again elsewhere.
IDEMPOTENT_MAX_TRIES = 3
#: Set in a job's ctx by the job: its CallResult as JSON, serialized once (the worker stores and
#: pushes those bytes as they are).
RESULT_JSON = "toolq_result_json"
#: Set in a job's ctx by the worker: how long the job waited in the queue (ms); the job puts it
#: in its CallResult, for the facade's latency split (queue wait, run, delivery).
QUEUED_MS = "toolq_queued_ms"


def describe_validation_error(tool_name: str, error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "arguments"
        problems.append(f"{where}: {item['msg']}")
    return f"Invalid arguments for tool {tool_name!r}: " + "; ".join(problems)


def failure(kind: contract.ErrorKind, message: str, worker_id: str, started: float) -> contract.CallResult:
    return contract.failed_result(kind, message, worker_id, round((time.perf_counter() - started) * 1000, 3))


async def run_tool(
    definition: ToolDefinition,
    arguments: dict[str, Any],
    context: ToolContext,
    worker_id: str,
    run_sync: SyncRunner | None = None,
) -> contract.CallResult:
    """Run one call to completion; every outcome but cancellation becomes a CallResult."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(definition.timeout) as deadline:
            output = await definition.invoke(arguments, context, run_sync=run_sync)
    except ValidationError as exc:
        return failure(
            "invalid_arguments", describe_validation_error(definition.name, exc), worker_id, started
        )
    except ToolUnavailable as exc:
        return failure("unavailable", str(exc), worker_id, started)
    except ToolError as exc:
        return failure("tool_error", str(exc), worker_id, started)
    except TimeoutError:
        if not deadline.expired():
            log.exception("tool %s raised TimeoutError", definition.name)
            return failure(
                "tool_error", f"Tool {definition.name!r} timed out inside the tool.", worker_id, started
            )
        return failure(
            "timeout",
            f"Tool {definition.name!r} did not finish within its {definition.timeout:g} s timeout.",
            worker_id,
            started,
        )
    except ToolProcessDied as exc:
        log.warning("the process running tool %s died: %s", definition.name, exc)
        return failure(
            "tool_error",
            f"Tool {definition.name!r} ended the process running it ({exc}) before it answered.",
            worker_id,
            started,
        )
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        # SystemExit and KeyboardInterrupt from a tool are its failure, never the worker's end.
        log.exception("tool %s crashed", definition.name)
        return failure(
            "tool_error",
            f"Tool {definition.name!r} failed unexpectedly ({type(exc).__name__}: {exc}).",
            worker_id,
            started,
        )
    result: contract.CallResult = {
        "ok": True,
        "worker": worker_id,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    result.update(output)  # type: ignore[typeddict-item]
    return result


async def push_event(
    redis: ArqRedis, job_id: str, event: contract.DoneEvent | contract.ProgressEvent | contract.LogEvent
) -> None:
    facade_id = contract.facade_of(job_id)
    if facade_id is None:
        return
    try:
        await redis.publish(contract.events_channel(facade_id), contract.dumps(event))
    except RedisError:
        # The facade's fallback check of the result key still finds the result.
        log.warning("could not push event for job %s", job_id, exc_info=True)


async def note_task_message(redis: ArqRedis, task: contract.TaskRef, message: str) -> None:
    """A working task's status message is its tool's latest progress message."""
    try:
        script = redis.register_script(contract.TASK_MESSAGE_SCRIPT)
        await script(keys=[task["key"]], args=[message[:1000], timestamp_ms()])
    except RedisError:
        log.warning("could not note a task's status message", exc_info=True)


def job_for(
    definition: ToolDefinition,
    worker_id: str,
    run_sync: SyncRunner | None = None,
    max_result_bytes: int = 4 * 1024 * 1024,
) -> Function:
    """The arq function that runs `definition` for one job and leaves its result's JSON in the
    job's ctx (RESULT_JSON). A job that carries out an MCP task reports its progress messages as
    the task's status message."""

    async def run(ctx: dict[str, Any], call: contract.JobArguments) -> contract.CallResult:
        redis: ArqRedis = ctx["redis"]
        job_id: str = ctx["job_id"]
        wants_progress = bool(call.get("progress"))
        log_level = call.get("log_level")
        task = call.get("task")

        async def report(progress: float, total: float | None, message: str | None) -> None:
            if task is not None and message is not None:
                await note_task_message(redis, task, message)
            if not wants_progress:
                return
            event: contract.ProgressEvent = {"type": "progress", "job_id": job_id, "progress": progress}
            if total is not None:
                event["total"] = total
            if message is not None:
                event["message"] = message
            await push_event(redis, job_id, event)

        async def write_log(level: str, data: Any, logger: str | None) -> None:
            if log_level is None or not contract.log_level_at_least(level, log_level):
                return
            event: contract.LogEvent = {"type": "log", "job_id": job_id, "level": level, "data": data}
            if logger is not None:
                event["logger"] = logger
            await push_event(redis, job_id, event)

        context = ToolContext(report, write_log)
        started = time.perf_counter()
        result = await run_tool(definition, call.get("arguments") or {}, context, worker_id, run_sync)
        if QUEUED_MS in ctx:
            result["queued_ms"] = ctx[QUEUED_MS]
        # One serialization checks both what JSON cannot say and how large the result is.
        try:
            result_json = contract.dumps(result)
        except ValueError:
            result = failure(
                "tool_error",
                f"Tool {definition.name!r} returned a number that JSON cannot carry (infinity or NaN).",
                worker_id,
                started,
            )
            result_json = contract.dumps(result)
        if len(result_json) > max_result_bytes:
            result = failure(
                "tool_error",
                f"Tool {definition.name!r} returned {len(result_json):,} bytes, more than the "
                f"{max_result_bytes:,} a result may have (TOOLQ_MAX_RESULT_BYTES).",
                worker_id,
                started,
            )
            result_json = contract.dumps(result)
        ctx[RESULT_JSON] = result_json
        return result

    run.__qualname__ = run.__name__ = f"tool_{definition.name}"
    return func(
        run,
        name=contract.job_function(definition.name),
        timeout=definition.timeout + ARQ_TIMEOUT_MARGIN_SECONDS,
        max_tries=IDEMPOTENT_MAX_TRIES if definition.idempotent else 1,
    )
