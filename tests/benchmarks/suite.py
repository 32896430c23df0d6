"""`./toolq bench`: toolq and its references side by side, in one run, on this machine.

Starts everything itself on loopback (its own redis-servers, facades, workers and reference
servers, each anew for each measurement), measures every scenario `repeat` times, alternating
the order of the systems between repeats, and writes docs/benchmarks.md (tables), beside it
benchmarks.json (every figure) and benchmarks/*.png (plots). Every ratio to the SDK is taken
within one repeat, where both ran minutes apart at most; the tables give the median over the
repeats and their range.

    ./toolq bench                 # the full suite (about 15 minutes on two cores)
    ./toolq bench --repeat 1      # one pass
    ./toolq bench --quick --out /tmp/bench   # the smoke test's size
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from otlp_receiver import OtlpReceiver

from benchmarks import report, scenarios, systems
from benchmarks.machine import describe_machine
from benchmarks.mcp_client import STATELESS
from benchmarks.scenarios import IO_FACADE_PROCESSES, IO_SLOTS, Sizes, io_system, log
from benchmarks.systems import FASTMCP, SDK, TOOLQ
from workers.event_loop import use_fast_event_loop

ROOT = Path(__file__).resolve().parents[2]


async def on_each_system(
    ordered: list[str], measure: Callable[[systems.Running], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """`measure` on each reference (a fresh process each), then on toolq with one worker."""
    measured = {}
    for name in ordered:
        with systems.reference(name) as running:
            measured[name] = await measure(running)
    with systems.toolq(1) as running:
        measured[TOOLQ] = await measure(running)
    return measured


async def sequential_pass(sizes: Sizes, ordered: list[str]) -> dict[str, Any]:
    return await on_each_system(
        ordered, lambda running: scenarios.sequential_latency(running, sizes, tasks_too=running.name == TOOLQ)
    )


async def callers_pass(sizes: Sizes, ordered: list[str]) -> dict[str, Any]:
    return await on_each_system(ordered, lambda running: scenarios.callers_sweep(running, sizes))


async def pools_pass(sizes: Sizes, _ordered: list[str]) -> dict[str, Any]:
    measured: dict[str, Any] = {}
    for workers in sizes.pool_sizes:
        with systems.toolq(workers) as running:
            for era in scenarios.ERAS:
                log(f"  toolq, {workers} worker(s), {era}")
                measured.setdefault(era, {})[str(workers)] = await scenarios.throughput(
                    running, era, sizes.pool_callers, sizes.load_seconds
                )
    return measured


async def io_pass(sizes: Sizes, ordered: list[str]) -> dict[str, Any]:
    measured: dict[str, Any] = {}
    for name in ordered:
        with systems.reference(name) as running:
            for callers in sizes.io_callers:
                log(f"  {name}, {callers} callers")
                measured.setdefault(name, {})[str(callers)] = await scenarios.io_bound(
                    running, callers, sizes.io_seconds
                )
    most = max(sizes.io_workers)
    for workers, processes in [*((w, 1) for w in sizes.io_workers), (most, IO_FACADE_PROCESSES)]:
        with systems.toolq(workers, tools="nap", concurrency=IO_SLOTS, facade_processes=processes) as running:
            key = io_system(workers, processes)
            for callers in sizes.io_callers:
                log(f"  {key}: {workers} x {IO_SLOTS} slots, facade of {processes}, {callers} callers")
                measured.setdefault(key, {})[str(callers)] = await scenarios.io_bound(
                    running, callers, sizes.io_seconds
                )
    return measured


#: What operations cost: toolq with its operational features off, then on one by one. The
#: default is metrics and a log line per call on; traces go to a real OTLP receiver in this
#: process (the suite's client shares it: its CPU counts as the client's).
OPERATIONS = {
    "all off": {"TOOLQ_METRICS": "0", "TOOLQ_LOG_CALLS": "0"},
    "metrics": {"TOOLQ_LOG_CALLS": "0"},
    "metrics and logs (default)": {},
    "metrics, logs and traces": {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    },
}


async def operations_pass(sizes: Sizes, _ordered: list[str]) -> dict[str, Any]:
    """Every setting of OPERATIONS on a toolq of its own, all running at once (an idle one costs
    next to nothing), measured in alternating rounds so that the machine's drift hits all alike."""
    receiver = OtlpReceiver()
    await receiver.start()
    try:
        with contextlib.ExitStack() as running_stacks:
            targets = {}
            for name, settings in OPERATIONS.items():
                env = dict(settings)
                if "OTEL_TRACES_EXPORTER" in env:
                    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
                targets[name] = running_stacks.enter_context(systems.toolq(1, env=env))
            measured = await scenarios.alternating(targets, sizes)
    finally:
        await receiver.stop()
    measured["spans_received"] = len(receiver.spans)
    return measured


async def idle_once(sizes: Sizes) -> dict[str, Any]:
    with systems.toolq(0) as running:
        await asyncio.sleep(1.0)
        facade = scenarios.idle_commands(running, sizes.idle_seconds)
    with systems.toolq(sizes.idle_workers) as running:
        await scenarios.throughput(running, STATELESS, 2, 0.2)  # the workers have worked
        await asyncio.sleep(SETTLE_SECONDS)
        together = scenarios.idle_commands(running, sizes.idle_seconds)
    return {
        "facade_alone": facade,
        "facade_and_workers": together,
        "workers": sizes.idle_workers,
        "per_idle_worker": (together["per_second"] - facade["per_second"]) / max(1, sizes.idle_workers),
        "per_idle_facade": facade["per_second"],
    }


async def memory_once(sizes: Sizes) -> dict[str, Any]:
    measured = {}
    with systems.reference(SDK) as running:
        measured[SDK] = await scenarios.memory_per_call(running, sizes.memory_calls, sizes.memory_sessions)
    with systems.toolq(1, tools="nap", concurrency=sizes.memory_calls + 10) as running:
        measured[TOOLQ] = await scenarios.memory_per_call(running, sizes.memory_calls, sizes.memory_sessions)
    return measured


async def arq_once(sizes: Sizes) -> dict[str, Any]:
    with systems.arq_defaults() as running:
        return await scenarios.arq_defaults_latency(running, sizes.arq_calls)


async def client_pass(sizes: Sizes, _ordered: list[str]) -> dict[str, Any]:
    async def both_clients(running: systems.Running) -> dict[str, Any]:
        return await scenarios.client_cost(running, sizes.pool_callers, sizes.load_seconds)

    return await on_each_system([SDK], both_clients)


#: Measured in every pass (their ratios taken within the pass), then once per suite.
REPEATED: dict[str, tuple[str, Callable[[Sizes, list[str]], Awaitable[dict[str, Any]]]]] = {
    "sequential": ("sequential latency", sequential_pass),
    "callers": ("throughput by callers", callers_pass),
    "pools": ("throughput by workers in one pool", pools_pass),
    "io": (f"an I/O-bound tool ({scenarios.IO_MS} ms)", io_pass),
    "client_cost": ("the client's own cost", client_pass),
    "operations": ("what metrics, logs and traces cost", operations_pass),
}
ONCE: dict[str, tuple[str, Callable[[Sizes], Awaitable[dict[str, Any]]]]] = {
    "idle": ("idle cost: Redis commands per second", idle_once),
    "memory": ("memory per waiting call and per session", memory_once),
    "arq": ("arq with its defaults", arq_once),
}
#: After a burst of calls, long enough for every worker's poll to go back to its idle pace and
#: its last recent figures to be written (with its next heartbeat).
SETTLE_SECONDS = 6.0


async def run_suite(sizes: Sizes, only: set[str]) -> dict[str, Any]:
    references = [SDK] + ([FASTMCP] if systems.fastmcp_installed() else [])
    started = time.time()
    machine = describe_machine()
    runs = []
    for number in range(sizes.repeat):
        ordered = references if number % 2 == 0 else references[::-1]
        run = {}
        for key, (title, measure) in REPEATED.items():
            if key in only:
                log(f"pass {number + 1}/{sizes.repeat}: {title}")
                run[key] = await measure(sizes, ordered)
        runs.append(run)
    measured: dict[str, Any] = {}
    for key, (title, measure_once) in ONCE.items():
        if key in only:
            log(title)
            measured[key] = await measure_once(sizes)
    return {
        "machine": machine,
        "sizes": asdict(sizes),
        "references": references,
        "not_measured": {} if FASTMCP in references else {FASTMCP: "not installed (pip install fastmcp)"},
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
        "runs": runs,
        **measured,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="./toolq bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a tiny size (the smoke test's): minutes become seconds"
    )
    parser.add_argument(
        "--repeat", type=int, help="passes over the repeated scenarios (default 3; --quick 1)"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs", help="where benchmarks.md, .json and the plots go (docs/)"
    )
    parser.add_argument("--no-plots", action="store_true", help="tables and JSON only")
    parser.add_argument(
        "--only",
        help=f"comma-separated scenarios to measure (default all): {', '.join([*REPEATED, *ONCE])}",
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        help="write the report and plots again from a saved benchmarks.json, measure nothing",
    )
    args = parser.parse_args(argv)
    known = {*REPEATED, *ONCE}
    args.only = set(args.only.split(",")) if args.only else known
    if not args.only <= known:
        parser.error(f"unknown scenario(s): {', '.join(sorted(args.only - known))}")
    return args


def raise_on_sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.repeat is not None:
        sizes = replace(sizes, repeat=max(1, args.repeat))
    if args.from_json is not None:
        measured = json.loads(args.from_json.read_text())
    else:
        if shutil.which("redis-server") is None:
            print("error: redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
            return 2
        # SIGTERM unwinds like Ctrl-C, so every process started here is stopped on the way out.
        signal.signal(signal.SIGTERM, raise_on_sigterm)
        try:
            use_fast_event_loop()
            measured = asyncio.run(run_suite(sizes, args.only))
        except KeyboardInterrupt:
            print("interrupted; every process this suite started has been stopped", file=sys.stderr)
            return 130
    written = report.write(measured, args.out, plots=not args.no_plots)
    for path in written:
        log(f"wrote {path}")
    return 0
