"""The suite's output: docs/benchmarks.md (tables), benchmarks.json (every figure), the plots.

Each figure is the median over the suite's passes with its range beside it; each ratio to the
SDK is taken within one pass (the two systems measured minutes apart at most) and then
summarized the same way. The design's targets are checked against those medians and each says
"met" or, where it is not, the gap and what limits it.
"""

from __future__ import annotations

import functools
import json
import math
import statistics
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from benchmarks.scenarios import IO_FACADE_PROCESSES, IO_MS, IO_SLOTS, io_configuration, io_system
from benchmarks.systems import ARQ, SDK, TOOLQ

#: DESIGN.md "Targets".
P50_AT_MOST, P99_AT_MOST = 1.5, 2.0
THROUGHPUT_AT_LEAST = {32: 1.2, 128: 1.5}
IO_SHARE_AT_LEAST = 0.9
COMMANDS_WITHIN = 0.10
IDLE_AT_MOST = 1.0
ERAS = ("handshake", "stateless")


# --- figures over the passes --------------------------------------------------------------------


def finite(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(float(v))]


def median(values: Iterable[float | None]) -> float:
    good = finite(values)
    return statistics.median(good) if good else math.nan


def spread(values: Iterable[float | None], digits: int = 2, unit: str = "") -> str:
    """`median (min-max)`, or the one value when there is one."""
    good = finite(values)
    if not good:
        return "n/a"
    mid = f"{statistics.median(good):,.{digits}f}{unit}"
    if len(good) == 1 or min(good) == max(good):
        return mid
    return f"{mid} ({min(good):,.{digits}f}-{max(good):,.{digits}f})"


def ratio(a: float | None, b: float | None) -> float:
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return math.nan
    return a / b


def per_pass(measured: dict[str, Any], pick: Callable[[dict[str, Any]], float | None]) -> list[float]:
    """One figure from every pass (NaN where a pass lacks it)."""
    values = []
    for run in measured["runs"]:
        try:
            value = pick(run)
        except (KeyError, TypeError, IndexError):
            value = None
        values.append(math.nan if value is None else float(value))
    return values


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --- the summary ----------------------------------------------------------------------------------


def seq(system: str, kind: str, key: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda run: run["sequential"][system][kind][key]


def load(
    system: str, era: str, callers: int, key: str = "calls_per_s"
) -> Callable[[dict[str, Any]], float | None]:
    return lambda run: run["callers"][system][era][str(callers)][key]


def pool(era: str, workers: int, key: str = "calls_per_s") -> Callable[[dict[str, Any]], float | None]:
    return lambda run: run["pools"][era][str(workers)][key]


def io(system: str, callers: int, key: str = "calls_per_s") -> Callable[[dict[str, Any]], float | None]:
    return lambda run: run["io"][system][str(callers)][key]


def io_cpu_ms(measured: dict[str, Any], system: str, callers: int) -> list[float]:
    """The CPU a call cost in the I/O-bound scenario, server and client together, per pass."""
    return [
        server + client
        for server, client in zip(
            per_pass(measured, io(system, callers, "server_cpu_ms_per_call")),
            per_pass(measured, io(system, callers, "client_cpu_ms_per_call")),
            strict=True,
        )
    ]


def facade_cpu_ms(run: dict[str, Any], system: str, callers: int) -> float | None:
    """The CPU a call cost toolq's facade (all of its processes) in the I/O-bound scenario."""
    value = run["io"][system][str(callers)]["cpu_ms_per_call"].get("facade")
    return None if value is None else float(value)


def paired(
    measured: dict[str, Any], a: Callable[[dict[str, Any]], Any], b: Callable[[dict[str, Any]], Any]
) -> list[float]:
    """a / b within each pass."""
    return [ratio(x, y) for x, y in zip(per_pass(measured, a), per_pass(measured, b), strict=True)]


def targets(measured: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of DESIGN.md with its measured median, range and verdict."""
    sizes = measured["sizes"]
    found: list[dict[str, Any]] = []

    def check(
        name: str, values: list[float], limit: float, *, at_least: bool, why: str = "", unit: str = "x"
    ) -> None:
        value = median(values)
        if math.isnan(value):
            return  # not measured in this run
        met = not math.isnan(value) and (value >= limit if at_least else value <= limit)
        found.append({
            "target": name,
            "values": values,
            "median": value,
            "limit": limit,
            "at_least": at_least,
            "status": "n/a" if math.isnan(value) else ("met" if met else "missed"),
            "unit": unit,
            "why": "" if met else why,
        })  # fmt: skip

    for era in ERAS:
        check(
            f"sequential p50, {era} era: at most {P50_AT_MOST:g}x the SDK",
            paired(measured, seq(TOOLQ, era, "p50_ms"), seq(SDK, era, "p50_ms")),
            P50_AT_MOST,
            at_least=False,
            why="a call crosses three processes and Redis three times (enqueue, hand-off and claim, "
            "store and push) where the SDK's runs in the process that read the request",
        )
        check(
            f"sequential p99, {era} era: at most {P99_AT_MOST:g}x the SDK",
            paired(measured, seq(TOOLQ, era, "p99_ms"), seq(SDK, era, "p99_ms")),
            P99_AT_MOST,
            at_least=False,
        )
        for callers, limit in THROUGHPUT_AT_LEAST.items():
            if callers in sizes["callers"]:
                check(
                    f"{callers} callers, one worker, {era} era: at least {limit:g}x the SDK's calls/s",
                    paired(measured, load(TOOLQ, era, callers), load(SDK, era, callers)),
                    limit,
                    at_least=True,
                    why="the client, facade, worker and Redis share two cores: CPU per call bounds it",
                )
    pools = sizes["pool_sizes"]
    if 1 in pools and 4 in pools:
        for era in ERAS:

            def workers_cpu(workers: int, era: str = era) -> float:
                return median(
                    per_pass(
                        measured, lambda run: run["pools"][era][str(workers)]["cpu_ms_per_call"]["workers"]
                    )
                )

            check(
                f"1 -> 4 workers, {era} era: calls/s not lower",
                paired(measured, pool(era, 4), pool(era, 1)),
                1.0,
                at_least=True,
                why=f"the workers' CPU per call grows from {workers_cpu(1):.2f} ms with one worker to "
                f"{workers_cpu(4):.2f} ms with four: a trivial tool's jobs spread over four processes "
                "wake each one for fewer jobs at a time, and on two cores every wake-up is CPU the "
                "facade and Redis also need (an I/O-bound tool's throughput grows with the pool: see "
                "below)",
            )
            check(
                f"1 -> 4 workers, {era} era: Redis commands per call within {COMMANDS_WITHIN:.0%}",
                paired(
                    measured, pool(era, 4, "redis_commands_per_call"), pool(era, 1, "redis_commands_per_call")
                ),
                1 + COMMANDS_WITHIN,
                at_least=False,
            )
    most_workers, most_callers = max(sizes["io_workers"]), max(sizes["io_callers"])
    bound = min(most_workers * IO_SLOTS * 1000 / IO_MS, most_callers * 1000 / IO_MS)
    # The busiest pool behind the facade of several processes, where a run measured it.
    busiest = io_system(most_workers, IO_FACADE_PROCESSES)
    if not any(busiest in run.get("io", {}) for run in measured["runs"]):
        busiest = io_system(most_workers)
    processes = (io_configuration(busiest) or (0, 1))[1]
    achieved = median(per_pass(measured, io(busiest, most_callers)))
    cpu_per_call = median(io_cpu_ms(measured, busiest, most_callers))
    cores = measured["machine"]["cpus"] or 1
    cores_allow = cores * 1000 / cpu_per_call if cpu_per_call else math.nan
    single = median(per_pass(measured, io(io_system(most_workers), most_callers)))
    facade_cpu = median(
        per_pass(measured, lambda run: facade_cpu_ms(run, io_system(most_workers), most_callers))
    )
    check(
        f"{IO_MS} ms tool, {most_callers} callers, {most_workers} workers x {IO_SLOTS} slots"
        f"{f', a facade of {processes} processes' if processes > 1 else ''}: "
        f"at least {IO_SHARE_AT_LEAST:.0%} of the {bound:,.0f} calls/s the slots allow",
        [v / bound for v in per_pass(measured, io(busiest, most_callers))],
        IO_SHARE_AT_LEAST,
        at_least=True,
        unit="",
        why=f"the {cores} cores are the bound: a call cost {cpu_per_call:.2f} ms of CPU there (the facade, "
        f"{most_workers} workers, Redis and the client together), so the cores allow about "
        f"{cores_allow:,.0f} calls/s; {achieved:,.0f} calls/s is {achieved / cores_allow:.0%} of that "
        f"(behind a facade of one process: {single:,.0f} calls/s, where that process, at "
        f"{facade_cpu:.2f} ms of CPU per call, allows at most {1000 / facade_cpu:,.0f} on its one core)",
    )
    check(
        f"{IO_MS} ms tool, {most_callers} callers, {most_workers} workers: no errors",
        per_pass(measured, io(f"{TOOLQ} {most_workers}", most_callers, "errors")),
        0,
        at_least=False,
        unit="",
    )
    idle = measured.get("idle")
    if idle:
        check(
            f"idle: at most {IDLE_AT_MOST:g} Redis command per second per idle worker",
            [idle["per_idle_worker"]],
            IDLE_AT_MOST,
            at_least=False,
            unit="/s",
        )
    return found


# --- the markdown --------------------------------------------------------------------------------


def machine_paragraph(measured: dict[str, Any]) -> str:
    m = measured["machine"]
    packages = ", ".join(f"{name} {v}" for name, v in m["packages"].items() if v != "not installed")
    return (
        f"{m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, {m['platform']}, Python "
        f"{m['python']}, redis-server {m['redis_server']}; load average {m['load_average_at_start']} "
        f"when the run began. Packages: {packages}."
    )


def seq_names(measured: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(label, system, kind) of every sequential series."""
    names = []
    first = measured["runs"][0]["sequential"]
    for system in [*measured["references"], TOOLQ]:
        for kind in first.get(system, {}):
            names.append((f"{system} {kind}", system, kind))
    return names


def headline(measured: dict[str, Any], found: list[dict[str, Any]]) -> str:
    rows = []
    for target in found:
        unit = target["unit"]
        value = spread(target["values"], 2, unit if unit != "/s" else "")
        if unit == "/s":
            value += " commands/s"
        status = target["status"]
        if status == "missed" and target["why"]:
            status = f"missed: {target['why']}"
        rows.append([target["target"], value, status])
    return table(["target (DESIGN.md)", "measured: median (range over passes)", "status"], rows)


def sequential_table(measured: dict[str, Any]) -> str:
    rows = []
    for label, system, kind in seq_names(measured):
        row = [label]
        for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms"):
            row.append(spread(per_pass(measured, seq(system, kind, key)), 3))
        era = "stateless" if kind.startswith("stateless") else "handshake"
        row.append(spread(paired(measured, seq(system, kind, "p50_ms"), seq(SDK, era, "p50_ms")), 2, "x"))
        row.append(spread(per_pass(measured, seq(system, kind, "errors")), 0))
        rows.append(row)
    return table(["system, era", "p50 ms", "p90 ms", "p99 ms", "max ms", "p50 / SDK's", "errors"], rows)


def callers_table(measured: dict[str, Any]) -> str:
    systems = [s for s in [*measured["references"], TOOLQ] if s in measured["runs"][0]["callers"]]
    headers = ["callers"]
    for system in systems:
        headers += [f"{system} {era} calls/s" for era in ERAS]
    headers += [f"toolq / SDK, {era}" for era in ERAS]
    rows = []
    for callers in measured["sizes"]["callers"]:
        row = [str(callers)]
        for system in systems:
            row += [spread(per_pass(measured, load(system, era, callers)), 0) for era in ERAS]
        row += [
            spread(paired(measured, load(TOOLQ, era, callers), load(SDK, era, callers)), 2, "x")
            for era in ERAS
        ]
        rows.append(row)
    return table(headers, rows)


def latency_under_load_table(measured: dict[str, Any]) -> str:
    rows = []
    systems = [s for s in [*measured["references"], TOOLQ] if s in measured["runs"][0]["callers"]]
    for callers in measured["sizes"]["callers"]:
        for system in systems:
            for era in ERAS:
                rows.append([
                    str(callers),
                    f"{system} {era}",
                    spread(per_pass(measured, load(system, era, callers, "p50_ms")), 2),
                    spread(per_pass(measured, load(system, era, callers, "p99_ms")), 2),
                    spread(per_pass(measured, load(system, era, callers, "server_cpu_ms_per_call")), 3),
                    spread(per_pass(measured, load(system, era, callers, "client_cpu_ms_per_call")), 3),
                    spread(per_pass(measured, load(system, era, callers, "errors")), 0),
                ])  # fmt: skip
    return table(
        ["callers", "system, era", "p50 ms", "p99 ms", "server CPU ms/call", "client CPU ms/call", "errors"],
        rows,
    )


def pools_table(measured: dict[str, Any]) -> str:
    rows = []
    for era in ERAS:
        for workers in measured["sizes"]["pool_sizes"]:
            cpu = per_pass(
                measured, lambda run, w=workers, e=era: run["pools"][e][str(w)]["cpu_ms_per_call"]["facade"]
            )
            cpu_w = per_pass(
                measured, lambda run, w=workers, e=era: run["pools"][e][str(w)]["cpu_ms_per_call"]["workers"]
            )
            cpu_r = per_pass(
                measured, lambda run, w=workers, e=era: run["pools"][e][str(w)]["cpu_ms_per_call"]["redis"]
            )
            rows.append([
                era,
                str(workers),
                spread(per_pass(measured, pool(era, workers)), 0),
                spread(paired(measured, pool(era, workers), pool(era, 1)), 2, "x"),
                spread(per_pass(measured, pool(era, workers, "redis_commands_per_call")), 1),
                spread(cpu, 3),
                spread(cpu_w, 3),
                spread(cpu_r, 3),
                spread(per_pass(measured, pool(era, workers, "p99_ms")), 1),
            ])  # fmt: skip
    return table(
        [
            "era",
            "workers",
            "calls/s",
            "vs 1 worker",
            "Redis commands/call",
            "facade CPU ms/call",
            "workers CPU ms/call",
            "Redis CPU ms/call",
            "p99 ms",
        ],
        rows,
    )


def io_table(measured: dict[str, Any]) -> str:
    rows = []
    cores = measured["machine"]["cpus"] or 1
    toolq_systems = [io_system(w) for w in measured["sizes"]["io_workers"]]
    toolq_systems.append(io_system(max(measured["sizes"]["io_workers"]), IO_FACADE_PROCESSES))
    for system in [*measured["references"], *toolq_systems]:
        configuration = io_configuration(system)
        if configuration is not None and not any(system in run.get("io", {}) for run in measured["runs"]):
            continue  # not measured in this run (an older JSON)
        for callers in measured["sizes"]["io_callers"]:
            rate = per_pass(measured, io(system, callers))
            slots = configuration[0] * IO_SLOTS * 1000 / IO_MS if configuration else math.inf
            bound = min(slots, callers * 1000 / IO_MS)
            cpu = io_cpu_ms(measured, system, callers)
            cores_allow = [cores * 1000 / c if c and not math.isnan(c) else math.nan for c in cpu]
            if configuration is None:
                name, facade_allows = system, "-"
            else:
                workers, processes = configuration
                name = f"toolq, {workers} x {IO_SLOTS} slots" + (
                    f", facade of {processes}" if processes > 1 else ""
                )
                facade_cpu = per_pass(
                    measured, functools.partial(facade_cpu_ms, system=system, callers=callers)
                )
                facade_allows = spread(
                    [
                        min(processes, cores) * 1000 / f if f and not math.isnan(f) else math.nan
                        for f in facade_cpu
                    ],
                    0,
                )
            rows.append([
                name,
                str(callers),
                spread(rate, 0),
                f"{bound:,.0f}",
                spread([r / bound for r in rate], 2),
                spread(cores_allow, 0),
                facade_allows,
                spread(per_pass(measured, io(system, callers, "p50_ms")), 1),
                spread(per_pass(measured, io(system, callers, "p99_ms")), 1),
                spread(per_pass(measured, io(system, callers, "errors")), 0),
            ])  # fmt: skip
    return table(
        [
            "system",
            "callers",
            "calls/s",
            "slots and callers allow",
            "share of that",
            "the cores allow (at this CPU per call)",
            "toolq's facade allows (its processes, at its CPU per call)",
            "p50 ms",
            "p99 ms",
            "errors",
        ],
        rows,
    )


def idle_section(measured: dict[str, Any]) -> str:
    idle = measured.get("idle")
    if not idle:
        return "Not measured."
    alone, together = idle["facade_alone"], idle["facade_and_workers"]
    return (
        f"Over {together['seconds']:g} s: one idle facade alone, {alone['per_second']:.2f} Redis commands/s "
        f"({json.dumps(alone['by_command'])}); the facade and {idle['workers']} idle workers that had just "
        f"served calls, {together['per_second']:.2f} commands/s ({json.dumps(together['by_command'])}). "
        "Per idle worker: "
        f"**{idle['per_idle_worker']:.2f} commands/s**; per idle facade: **{idle['per_idle_facade']:.2f}**."
    )


def memory_section(measured: dict[str, Any]) -> str:
    memory = measured.get("memory")
    if not memory:
        return "Not measured."
    rows = []
    for system, figures in memory.items():
        label = "toolq facade" if system == TOOLQ else f"{system} server (tools in-process)"
        rows.append([
            label,
            f"{figures['calls']:,}",
            f"{figures['per_connection_kib']:.1f}",
            f"{figures['per_waiting_call_kib']:.1f}",
            f"{figures['per_session_kib']:.1f}",
            str(figures["failed"]),
        ])  # fmt: skip
    return table(
        [
            "process",
            "calls waiting",
            "KiB per open connection",
            "KiB per waiting call",
            "KiB per session",
            "failed",
        ],
        rows,
    )


def tasks_section(measured: dict[str, Any]) -> str:
    with_tasks = paired(measured, seq(TOOLQ, "stateless tasks", "p50_ms"), seq(TOOLQ, "stateless", "p50_ms"))
    return (
        "A short `add` from a stateless-era client that declares the tasks extension (a call still running "
        "after the 1 s window would come back as a task) against one that does not, same facade, same pass: "
        f"p50 {spread(per_pass(measured, seq(TOOLQ, 'stateless tasks', 'p50_ms')), 3)} ms against "
        f"{spread(per_pass(measured, seq(TOOLQ, 'stateless', 'p50_ms')), 3)} ms, "
        f"**{spread(with_tasks, 2, 'x')}**."
    )


def client_cost_section(measured: dict[str, Any]) -> str:
    def cost(system: str, client: str, key: str) -> Callable[[dict[str, Any]], float | None]:
        return lambda run: run["client_cost"][system][client][key]

    rows = []
    for system in (SDK, TOOLQ):
        for client, label in (("raw", "the suite's raw client"), ("aiohttp", "aiohttp ClientSession")):
            rows.append([
                system,
                label,
                spread(per_pass(measured, cost(system, client, "calls_per_s")), 0),
                spread(per_pass(measured, cost(system, client, "client_cpu_ms_per_call")), 3),
                spread(per_pass(measured, cost(system, client, "server_cpu_ms_per_call")), 3),
            ])  # fmt: skip
    raw = paired(measured, cost(TOOLQ, "raw", "calls_per_s"), cost(SDK, "raw", "calls_per_s"))
    heavy = paired(measured, cost(TOOLQ, "aiohttp", "calls_per_s"), cost(SDK, "aiohttp", "calls_per_s"))
    return (
        table(["system", "client", "calls/s", "client CPU ms/call", "server CPU ms/call"], rows)
        + f"\n\ntoolq / SDK: **{spread(raw, 2, 'x')}** through the raw client, **{spread(heavy, 2, 'x')}** "
        "through aiohttp's."
    )


def operations_section(measured: dict[str, Any]) -> str:
    names = [name for name in measured["runs"][0]["operations"] if name != "spans_received"]
    base = names[0]

    def figure(name: str, part: str, key: str) -> Callable[[dict[str, Any]], float | None]:
        return lambda run: run["operations"][name][part][key]

    rows = []
    for name in names:
        p50, base_p50 = figure(name, "sequential", "p50_ms"), figure(base, "sequential", "p50_ms")
        rate, base_rate = figure(name, "load", "calls_per_s"), figure(base, "load", "calls_per_s")
        rows.append([
            name,
            spread(per_pass(measured, p50), 3),
            spread(paired(measured, p50, base_p50), 2, "x"),
            spread(per_pass(measured, rate), 0),
            spread(paired(measured, rate, base_rate), 2, "x"),
        ])  # fmt: skip
    spans = spread(per_pass(measured, lambda run: run["operations"]["spans_received"]), 0)
    return (
        table(["toolq with", "sequential p50 ms", "vs all off", "calls/s, 32 callers", "vs all off"], rows)
        + f"\n\nSpans received by the OTLP receiver in a pass: {spans}."
    )


def measured_in_passes(measured: dict[str, Any], scenario: str) -> bool:
    return bool(measured["runs"]) and scenario in measured["runs"][0]


UNDER_LOAD = (
    "Latency and CPU under load (server CPU: all of a system's processes, toolq's Redis included; client "
    "CPU: the suite's own):"
)
IO_NOTE = (
    f"toolq's workers run {IO_SLOTS} calls at once each; the references run every call in their one process. "
    '"The cores allow" is the machine\'s cores over the CPU a call cost there (server and client): where it '
    "is below what the slots allow, the cores are the bound. A facade process answers on one core: "
    "\"toolq's facade allows\" is its processes (at most the cores) over the facade's CPU per call. The "
    f"pool with the most workers is measured again behind a facade of {IO_FACADE_PROCESSES} processes "
    "(TOOLQ_FACADE_PROCESSES)."
)
MEMORY_NOTE = (
    "Resident memory of the process that answers HTTP while calls wait (toolq: the facade; its calls wait in "
    "Redis and on the workers), per open connection, per waiting call and per handshake-era session:"
)
CLIENT_NOTE = (
    "The earlier benchmark (`tests/benchmarks/latency.py`) drove the servers through aiohttp's ClientSession "
    "and read toolq at about 0.7x the SDK's throughput at 32 callers where other harnesses read about 1x. "
    "The same load through both clients, in this run:"
)
OPERATIONS_NOTE = (
    "toolq with one worker, `add` in the stateless era, with its operational features off and then on "
    "one by one: Prometheus metrics (TOOLQ_METRICS), a log line per call in the facade and per job in "
    "the worker (TOOLQ_LOG_CALLS; the default has both on), and OpenTelemetry traces exported over OTLP "
    "to a real receiver running in the suite's own process."
)
CLIENT_WHY = (
    "On two cores the client shares the cores with the servers: each millisecond of client CPU is one the "
    "servers do not get. The SDK serves from one process and cannot use the second core anyway, so the "
    "client's cost hardly touches it; toolq spreads a call over a facade, a worker and Redis and needs both "
    "cores, so every microsecond the client takes comes out of toolq's throughput. A heavy client compresses "
    "toolq's ratio; the suite's client costs a fraction of aiohttp's."
)


def sections(measured: dict[str, Any], plots: bool) -> list[tuple[str, list[str]]]:
    """(heading, paragraphs) of every scenario that was measured, in reading order."""
    sizes = measured["sizes"]
    found: list[tuple[str, list[str]]] = []

    def plot(name: str, caption: str) -> list[str]:
        return [f"![{caption}](benchmarks/{name}.png)"] if plots else []

    if measured_in_passes(measured, "sequential"):
        table_and_plot = [sequential_table(measured), *plot("latency_distribution", "latency distribution")]
        found.append(("Sequential latency (`tools/call add`, one caller)", table_and_plot))
    if measured_in_passes(measured, "callers"):
        heading = (
            f"Throughput by callers (`add`, closed loop, {sizes['load_seconds']:g} s each; toolq: one worker)"
        )
        found.append((
            heading,
            [
                callers_table(measured),
                *plot("throughput_by_callers", "throughput by callers"),
                UNDER_LOAD,
                latency_under_load_table(measured),
            ],
        ))  # fmt: skip
    if measured_in_passes(measured, "pools"):
        both = measured_in_passes(measured, "io")  # the plot has both
        heading = f"Throughput by workers in one pool (`add`, {sizes['pool_callers']} callers)"
        found.append(
            (heading, [pools_table(measured), *(plot("throughput_by_workers", "by workers") if both else [])])
        )
    if measured_in_passes(measured, "io"):
        found.append(
            (f"An I/O-bound tool ({IO_MS} ms per call, stateless era)", [IO_NOTE, io_table(measured)])
        )
    if "idle" in measured:
        found.append(("Idle cost", [idle_section(measured)]))
    if "memory" in measured:
        found.append(("Memory", [MEMORY_NOTE, memory_section(measured)]))
    if measured_in_passes(measured, "sequential"):
        found.append(("A short call from a client that takes tasks", [tasks_section(measured)]))
    arq = measured.get(ARQ)
    if arq:
        line = (
            "enqueue_job + job.result() against a default arq worker (0.5 s polls on both sides), "
            f"{arq['calls']} sequential calls: p50 {arq['p50_ms']:,.1f} ms, p99 {arq['p99_ms']:,.1f} ms."
        )
        found.append(("arq with its defaults", [line]))
    if measured_in_passes(measured, "operations"):
        found.append(("What metrics, logs and traces cost", [OPERATIONS_NOTE, operations_section(measured)]))
    if measured_in_passes(measured, "client_cost"):
        found.append(("The client's own cost", [CLIENT_NOTE, client_cost_section(measured), CLIENT_WHY]))
    return found


def write_markdown(measured: dict[str, Any], found: list[dict[str, Any]], plots: bool) -> str:
    passes = len(measured["runs"])
    not_measured = "".join(
        f"\n- {name} not measured: {why}" for name, why in measured.get("not_measured", {}).items()
    )
    parts = [
        "# Benchmarks",
        "",
        f"Written by `./toolq bench` on {measured['started']} in {measured['seconds']:,.0f} s; do not edit "
        "by hand (run it again). Every figure is the median over "
        f"{passes} pass{'es' if passes != 1 else ''} with the range in brackets; every ratio is taken "
        "within a pass, then summarized the same way. The machine: "
        + machine_paragraph(measured)
        + not_measured,
        "",
        "The systems: **toolq** (its own redis-server, one facade, N workers, all processes on loopback); "
        "the official MCP Python SDK's own server (**SDK**) and **FastMCP**'s, each with the same tools "
        "running in-process, each started anew for each scenario; **arq** with its defaults as the naive "
        "queue. One client drives them all (`tests/benchmarks/raw_http.py`: keep-alive HTTP/1.1, one "
        "connection per caller, every answer checked), and every connection and session is open before a "
        "timer starts.",
        "",
    ]
    if found:
        parts += ["## Targets", "", headline(measured, found), ""]
    for heading, paragraphs in sections(measured, plots):
        parts += [f"## {heading}", ""]
        for paragraph in paragraphs:
            parts += [paragraph, ""]
    return "\n".join(parts)


def write(measured: dict[str, Any], out: Path, *, plots: bool = True) -> list[Path]:
    """Write benchmarks.md and benchmarks.json (and the plots) under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    found = targets(measured)
    written = []
    if plots:
        from benchmarks.plots import draw  # noqa: PLC0415 - matplotlib only when plots are drawn

        written += draw(measured, out / "benchmarks")
    data = {**measured, "targets": found}
    json_path = out / "benchmarks.json"
    json_path.write_text(json.dumps(without_nan(data), indent=1) + "\n")
    md_path = out / "benchmarks.md"
    md_path.write_text(write_markdown(measured, found, plots))
    return [md_path, json_path, *written]


def without_nan(value: Any) -> Any:
    """NaN (nothing measured) as null, so the JSON is valid JSON."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {key: without_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nan(item) for item in value]
    return value
