"""The suite's plots (matplotlib, PNG): latency distribution, throughput by callers and by workers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks.report import ERAS, median, per_pass, pool, seq_names
from benchmarks.scenarios import IO_FACADE_PROCESSES, IO_MS, IO_SLOTS, io_system
from benchmarks.systems import TOOLQ

COLOURS = {"SDK": "#1f77b4", "FastMCP": "#2ca02c", TOOLQ: "#d62728", "arq": "#7f7f7f"}
STYLES = {"handshake": "-", "stateless": "--", "stateless tasks": ":"}


def _errorbars(ax: Any, xs: list[int], bands: list[tuple[float, float, float]], **style: Any) -> None:
    """Medians at `xs` with their ranges over the passes as error bars."""
    ax.errorbar(
        xs,
        [b[0] for b in bands],
        yerr=[[b[0] - b[1] for b in bands], [b[2] - b[0] for b in bands]],
        marker="o",
        **style,
    )


def _band(measured: dict[str, Any], pick: Any) -> tuple[float, float, float]:
    values = [v for v in per_pass(measured, pick) if not math.isnan(v)]
    if not values:
        return math.nan, math.nan, math.nan
    return median(values), min(values), max(values)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_distribution(measured: dict[str, Any], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, system, kind in seq_names(measured):
        percentiles = measured["runs"][0]["sequential"][system][kind]["percentiles_ms"]
        ax.plot(
            percentiles,
            range(len(percentiles)),
            STYLES.get(kind, "-"),
            color=COLOURS.get(system),
            label=label,
        )
    ax.set_xscale("log")
    ax.set_xlabel("latency of one sequential tools/call add (ms, log scale)")
    ax.set_ylabel("percentile")
    ax.set_title("Sequential latency, first pass")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def throughput_by_callers(measured: dict[str, Any], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    callers = measured["sizes"]["callers"]
    for system in measured["runs"][0]["callers"]:
        for era in ERAS:
            bands = [
                _band(measured, lambda run, c=c, e=era, s=system: run["callers"][s][e][str(c)]["calls_per_s"])
                for c in callers
            ]
            _errorbars(
                ax, callers, bands, fmt=STYLES[era], color=COLOURS.get(system), label=f"{system} {era}"
            )
    ax.set_xscale("log", base=2)
    ax.set_xticks(callers, [str(c) for c in callers])
    ax.set_xlabel("concurrent callers (closed loop)")
    ax.set_ylabel("calls/s (median, range over passes)")
    ax.set_title("Throughput of tools/call add by callers (toolq: one worker)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def throughput_by_workers(measured: dict[str, Any], path: Path) -> Path:
    sizes = measured["sizes"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    workers = sizes["pool_sizes"]
    for era in ERAS:
        bands = [_band(measured, pool(era, w)) for w in workers]
        _errorbars(left, workers, bands, fmt=STYLES[era], color=COLOURS[TOOLQ], label=f"toolq {era}: calls/s")
    twin = left.twinx()
    for era in ERAS:
        commands = [_band(measured, pool(era, w, "redis_commands_per_call"))[0] for w in workers]
        twin.plot(
            workers, commands, STYLES[era], marker="s", color="#9467bd", label=f"{era}: Redis commands/call"
        )
    twin.set_ylim(bottom=0)
    twin.set_ylabel("Redis commands per call")
    left.set_xticks(workers)
    left.set_xlabel("workers in the pool")
    left.set_ylabel("calls/s")
    left.set_ylim(bottom=0)
    left.set_title(f"add, {sizes['pool_callers']} callers")
    lines, labels = left.get_legend_handles_labels()
    more, more_labels = twin.get_legend_handles_labels()
    left.legend(lines + more, labels + more_labels, fontsize=7, loc="lower right")

    io_workers = sizes["io_workers"]
    for callers in sizes["io_callers"]:
        bands = [
            _band(measured, lambda run, w=w, c=callers: run["io"][f"{TOOLQ} {w}"][str(c)]["calls_per_s"])
            for w in io_workers
        ]
        _errorbars(right, io_workers, bands, label=f"toolq, {callers} callers")
        most = max(io_workers)
        several = io_system(most, IO_FACADE_PROCESSES)
        if all(several in run.get("io", {}) for run in measured["runs"]):
            level, low, high = _band(
                measured, lambda run, c=callers, s=several: run["io"][s][str(c)]["calls_per_s"]
            )
            right.errorbar(
                [most], [level], yerr=[[level - low], [high - level]], fmt="D", capsize=3,
                label=f"toolq, {callers} callers, a facade of {IO_FACADE_PROCESSES} processes",
            )  # fmt: skip
        for reference in measured["references"]:
            level = _band(measured, lambda run, c=callers, r=reference: run["io"][r][str(c)]["calls_per_s"])[
                0
            ]
            right.axhline(level, linestyle=":", color=COLOURS.get(reference), alpha=0.7)
            right.annotate(f"{reference}, {callers} callers", (io_workers[0], level), fontsize=7, va="bottom")
    bound = [min(w * IO_SLOTS * 1000 / IO_MS, max(sizes["io_callers"]) * 1000 / IO_MS) for w in io_workers]
    right.plot(io_workers, bound, "k--", alpha=0.5, label=f"what {IO_SLOTS} slots per worker allow")
    right.set_xticks(io_workers)
    right.set_xlabel(f"workers in the pool ({IO_SLOTS} slots each)")
    right.set_ylabel("calls/s")
    right.set_ylim(bottom=0)
    right.set_title(f"an I/O-bound tool ({IO_MS} ms)")
    right.legend(fontsize=7)
    return _save(fig, path)


def draw(measured: dict[str, Any], directory: Path) -> list[Path]:
    """The plots of the scenarios measured (`./toolq bench --only` may leave some out)."""
    directory.mkdir(parents=True, exist_ok=True)
    first = measured["runs"][0] if measured["runs"] else {}
    drawn = []
    if "sequential" in first:
        drawn.append(latency_distribution(measured, directory / "latency_distribution.png"))
    if "callers" in first:
        drawn.append(throughput_by_callers(measured, directory / "throughput_by_callers.png"))
    if "pools" in first and "io" in first:
        drawn.append(throughput_by_workers(measured, directory / "throughput_by_workers.png"))
    return drawn
