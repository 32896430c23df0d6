"""The tool catalog: which tools have a live worker, on which queue, under which schemas.

Read from the registry workers write (workers/registry.py), cached for a second and dropped
at once when a worker announces that it joined or left.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from redis.asyncio import Redis
from redis.exceptions import RedisError

from facade.errors import store_unavailable
from facade.protocol.headers import mirrored_parameters
from facade.protocol.tool_calls import ToolTerms
from workers import contract


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    #: The MCP Tool object as tools/list shows it.
    tool: dict[str, Any]
    queues: tuple[str, ...]
    timeout: float
    validator: Validator
    #: The same schema compiled by jsonschema-rs: says in well under a microsecond whether
    #: arguments are valid (jsonschema takes some 17), so only invalid ones pay for
    #: jsonschema's messages. None where jsonschema-rs cannot compile the schema.
    quick_check: Callable[[Any], bool] | None
    #: A dying worker's job of this tool runs again elsewhere (idempotent tools only) once its
    #: lease lapses, this long after: the caller's deadline makes room for it.
    recovery_seconds: float
    terms: ToolTerms

    def pick_queue(self) -> str:
        return self.queues[0] if len(self.queues) == 1 else random.choice(self.queues)

    def argument_errors(self, arguments: dict[str, Any]) -> list[str]:
        if self.quick_check is not None and self.quick_check(arguments):
            return []
        errors = sorted(self.validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
        messages = []
        for error in errors:
            where = ".".join(str(part) for part in error.absolute_path)
            messages.append(f"{where}: {error.message}" if where else error.message)
        return messages


@dataclass(frozen=True)
class Snapshot:
    tools: dict[str, CatalogEntry]
    #: Tools some worker once served but no live worker serves now.
    orphaned: frozenset[str]
    taken_at: float
    #: Jobs each queue's live workers run at once, together.
    slots: dict[str, int] = field(default_factory=dict)
    #: Live worker processes of each queue.
    workers: dict[str, int] = field(default_factory=dict)

    def listed(self) -> list[dict[str, Any]]:
        return [self.tools[name].tool for name in sorted(self.tools)]


_validators: dict[str, tuple[Validator, Callable[[Any], bool] | None]] = {}


def _validator(schema: dict[str, Any]) -> tuple[Validator, Callable[[Any], bool] | None]:
    """A validator for the schema's own dialect (`$schema`), JSON Schema 2020-12 by default,
    and the quick check of the same schema (CatalogEntry.quick_check)."""
    key = json.dumps(schema, sort_keys=True)
    cached = _validators.get(key)
    if cached is None:
        cls = validator_for(schema, default=Draft202012Validator)
        cls.check_schema(schema)
        cached = _validators[key] = (cls(schema), _quick_check(schema))
    return cached


def _quick_check(schema: dict[str, Any]) -> Callable[[Any], bool] | None:
    try:
        compiled = jsonschema_rs.validator_for(schema)
    except ValueError:
        return None

    def is_valid(arguments: Any) -> bool:
        try:
            return bool(compiled.is_valid(arguments))
        except (ValueError, OverflowError, TypeError):  # e.g. an integer beyond 64 bits
            return False

    return is_valid


def build_snapshot(workers: list[contract.WorkerInfo], known: set[str]) -> Snapshot:
    """Merge live workers' specs; when workers disagree on a spec, the newest worker wins."""
    chosen: dict[str, tuple[float, dict[str, Any]]] = {}
    queues: dict[str, set[str]] = {}
    slots: dict[str, int] = {}
    processes: dict[str, int] = {}
    leases: dict[str, float] = {}
    for info in workers:
        slots[info["queue"]] = slots.get(info["queue"], 0) + int(info.get("concurrency", 1))
        processes[info["queue"]] = processes.get(info["queue"], 0) + 1
        for spec in info["tools"]:
            name = spec["name"]
            leases[name] = max(leases.get(name, 0.0), float(info.get("lease_seconds", 10.0)))
            queues.setdefault(name, set()).add(info["queue"])
            if name not in chosen or info["started_at"] > chosen[name][0]:
                chosen[name] = (info["started_at"], spec)
    tools = {}
    for name, (_, spec) in chosen.items():
        extra = spec.get("x-toolq", {})
        tool = {key: value for key, value in spec.items() if key != "x-toolq"}
        input_schema = tool.get("inputSchema") or {"type": "object"}
        try:
            validator, quick_check = _validator(input_schema)
        except SchemaError:
            continue
        tools[name] = CatalogEntry(
            name=name,
            tool=tool,
            queues=tuple(sorted(queues[name])),
            timeout=float(extra.get("timeout", 30.0)),
            validator=validator,
            quick_check=quick_check,
            recovery_seconds=leases.get(name, 0.0) if extra.get("idempotent") else 0.0,
            terms=ToolTerms(
                mirrored=mirrored_parameters(input_schema),
                client_capabilities=dict(extra.get("client_capabilities") or {}),
                task_mode=str(extra.get("task", "optional")),
            ),
        )
    return Snapshot(
        tools=tools,
        orphaned=frozenset(known - set(tools)),
        taken_at=time.monotonic(),
        slots=slots,
        workers=processes,
    )


class Catalog:
    def __init__(self, redis: Redis, *, max_age_seconds: float = 1.0):
        self._redis = redis
        self._max_age = max_age_seconds
        self._snapshot: Snapshot | None = None
        self._lock = asyncio.Lock()
        #: Tools this process has seen served: still "known" if Redis restarts empty.
        self._seen: set[str] = set()

    def invalidate(self) -> None:
        self._snapshot = None

    async def snapshot(self) -> Snapshot:
        """The live tools, at most `max_age_seconds` old; raises StoreUnavailable."""
        current = self._snapshot
        if current is not None and time.monotonic() - current.taken_at < self._max_age:
            return current
        async with self._lock:
            current = self._snapshot
            if current is None or time.monotonic() - current.taken_at >= self._max_age:
                try:
                    current = self._snapshot = await self._load()
                except (RedisError, OSError) as exc:
                    raise store_unavailable("the tool registry", exc) from exc
            return current

    async def _load(self) -> Snapshot:
        now_ms = int(time.time() * 1000)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(contract.WORKERS_LIVE, now_ms, "+inf")
            pipe.smembers(contract.TOOLS_EVER_SERVED)
            ids, served = await pipe.execute()
        workers: list[contract.WorkerInfo] = []
        if ids:
            keys = [contract.worker_key(i.decode() if isinstance(i, bytes) else i) for i in ids]
            for raw in await self._redis.mget(keys):
                if raw is not None:
                    workers.append(contract.loads(raw))
        known = {n.decode() if isinstance(n, bytes) else n for n in served} | self._seen
        snapshot = build_snapshot(workers, known)
        self._seen |= set(snapshot.tools)
        return snapshot
