"""What would it cost to build the facade's outgoing shapes with `mcp-types` models instead of dicts?

The facade builds its results as plain dicts (facade/protocol/results.py) and serializes them
with json.dumps (aiohttp's json_response). This script times, per operation, for the two results
on the hot path:
- a `tools/call add` CallToolResult as the stateless era (2026-07-28) sends it: one text block,
  structuredContent {a, b, sum}, isError, resultType, _meta (toolq's worker/duration and the
  serverInfo stamp);
- a `tools/list` result with the two tools toolq ships (add, weather), with resultType, ttlMs,
  cacheScope and _meta;

each built as:
1. dict: the facade's own builders (`call_tool_result`, `tools_page`) + the stateless era's
   framing, then json.dumps of the JSON-RPC response: what toolq does today;
2. model: the `mcp_types` top-level (version-free) models, constructed field by field, then
   model_dump(by_alias=True, exclude_none=True, mode="json") + json.dumps;
3. validate: `<Model>.model_validate(dict)` of the dict from 1, validation only (what checking the
   dicts against the models would add on top of 1);
4. surface: `mcp_types.methods.serialize_server_result(method, version, dict)` + json.dumps: the
   per-era wire check-and-dump the SDK's own server runs on every result (mcp/server/runner.py),
   for 2026-07-28 and 2025-11-25.

Where the models live: `mcp_types` exports at top level the version-free models
(mcp_types._types: CallToolResult, TextContent, Tool, ToolAnnotations, ListToolsResult, ...);
the per-era packages `mcp_types._v2025_11_25` and `mcp_types._v2026_07_28` are generated wire
shapes the package calls internal ("not for direct import"), reached through the public
`mcp_types.methods` functions (variant 4).

Each figure is the best of --repeat timeit runs of at least --min-seconds each (µs per op); the
variants of one shape take turns run by run, so machine noise hits them alike.

Run from the repository root:
    .venv/bin/python tests/benchmarks/wire_models.py [--repeat R] [--min-seconds S] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mcp_types
from mcp_types import methods as mcp_methods

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from facade.protocol.envelope import SERVER_INFO
from facade.protocol.results import call_tool_result, tools_page
from facade.protocol.tool_calls import ToolOutcome
from workers.tools import discover

STATELESS_VERSION = "2026-07-28"
HANDSHAKE_VERSION = "2025-11-25"
SERVER_META = {SERVER_INFO: {"name": "toolq", "title": "toolq", "version": "0.1.0"}}
#: toolq's ~1.3 ms sequential `tools/call add` (DESIGN.md, measured 2026-12-01).
TOOLQ_CALL_MS = 1.3

#: The one variant that would come on top of the dict path rather than replace it.
VALIDATE_ONLY = "model_validate(dict) only (on top of dict)"

OUTCOME = ToolOutcome(
    ok=True, structured={"a": 15, "b": 27, "sum": 42}, worker="bench-worker", duration_ms=0.11
)


def response(result: dict[str, Any]) -> str:
    """The JSON-RPC response as the facade puts it on the wire (aiohttp json_response: json.dumps)."""
    return json.dumps({"jsonrpc": "2.0", "id": 7, "result": result})


def stateless_framing(result: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """What the stateless era adds to a result (mirrors facade/protocol/stateless.py `_complete`)."""
    result["resultType"] = "complete"
    result.update(extra)
    meta = result.get("_meta")
    result["_meta"] = {**meta, **SERVER_META} if meta else SERVER_META
    return result


def dump(model: mcp_types.Result) -> dict[str, Any]:
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


# --- tools/call add ----------------------------------------------------------------------------


def call_as_dict() -> dict[str, Any]:
    return stateless_framing(call_tool_result(OUTCOME))


def call_as_model() -> mcp_types.CallToolResult:
    structured = OUTCOME.structured
    text = json.dumps(structured, ensure_ascii=False, separators=(", ", ": "))
    return mcp_types.CallToolResult(
        content=[mcp_types.TextContent(text=text)],
        structured_content=structured,
        is_error=False,
        result_type="complete",
        meta={"toolq/worker": OUTCOME.worker, "toolq/durationMs": OUTCOME.duration_ms, **SERVER_META},
    )


# --- tools/list --------------------------------------------------------------------------------

#: The MCP Tool objects as the catalog holds them (the workers' specs without toolq's routing).
TOOL_SPECS = [
    {key: value for key, value in definition.spec().items() if key != "x-toolq"}
    for _, definition in sorted(discover().items())
]


def list_as_dict() -> dict[str, Any]:
    return stateless_framing(tools_page(TOOL_SPECS, None, 100), ttlMs=0, cacheScope="public")


def tool_model(spec: dict[str, Any]) -> mcp_types.Tool:
    return mcp_types.Tool(
        name=spec["name"],
        title=spec.get("title"),
        description=spec.get("description"),
        input_schema=spec["inputSchema"],
        output_schema=spec.get("outputSchema"),
        annotations=mcp_types.ToolAnnotations(**spec["annotations"]) if "annotations" in spec else None,
    )


#: Tool models built once (a catalog snapshot could hold them, rebuilt when workers change).
TOOL_MODELS = [tool_model(spec) for spec in TOOL_SPECS]


def list_as_model(tools: list[mcp_types.Tool]) -> mcp_types.ListToolsResult:
    return mcp_types.ListToolsResult(
        tools=tools, ttl_ms=0, cache_scope="public", result_type="complete", meta=dict(SERVER_META)
    )


# --- timing ------------------------------------------------------------------------------------


def per_op_us(
    variants: dict[str, Callable[[], object]], *, repeat: int, min_seconds: float
) -> dict[str, float]:
    """µs per op of each variant: the best of `repeat` runs of at least `min_seconds` each.

    The variants take turns run by run (A B C, A B C, ...), so a burst of load on the machine
    hits them alike instead of spoiling one figure.
    """
    timers: dict[str, tuple[timeit.Timer, int]] = {}
    for name, fn in variants.items():
        fn()  # warm up (pydantic builds some validators lazily)
        timer, number = timeit.Timer(fn), 1
        while timer.timeit(number) < min_seconds:
            number *= 2
        timers[name] = (timer, number)
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(repeat):
        for name, (timer, number) in timers.items():
            best[name] = min(best[name], timer.timeit(number) / number * 1e6)
    return best


def same_json(a: str, b: str) -> bool:
    return json.loads(a) == json.loads(b)


def cases() -> dict[str, dict[str, Callable[[], object]]]:
    call_dict = call_as_dict()
    list_dict = list_as_dict()
    return {
        "tools/call add (CallToolResult)": {
            "dict + json.dumps (toolq today)": lambda: response(call_as_dict()),
            "model + model_dump + json.dumps": lambda: response(dump(call_as_model())),
            VALIDATE_ONLY: lambda: mcp_types.CallToolResult.model_validate(call_dict),
            f"dict + serialize_server_result {STATELESS_VERSION} + dumps": lambda: response(
                mcp_methods.serialize_server_result("tools/call", STATELESS_VERSION, call_as_dict())
            ),
            f"dict + serialize_server_result {HANDSHAKE_VERSION} + dumps": lambda: response(
                mcp_methods.serialize_server_result("tools/call", HANDSHAKE_VERSION, call_as_dict())
            ),
        },
        "tools/list, 2 tools (ListToolsResult)": {
            "dict + json.dumps (toolq today)": lambda: response(list_as_dict()),
            "model (Tool models cached) + dump + dumps": lambda: response(dump(list_as_model(TOOL_MODELS))),
            "model (Tool models per call) + dump + dumps": lambda: response(
                dump(list_as_model([tool_model(spec) for spec in TOOL_SPECS]))
            ),
            VALIDATE_ONLY: lambda: mcp_types.ListToolsResult.model_validate(list_dict),
            f"dict + serialize_server_result {STATELESS_VERSION} + dumps": lambda: response(
                mcp_methods.serialize_server_result("tools/list", STATELESS_VERSION, list_as_dict())
            ),
        },
    }


def fidelity() -> dict[str, bool]:
    """Whether the model path puts the same JSON on the wire as the dict path."""
    return {
        "tools/call add": same_json(response(call_as_dict()), response(dump(call_as_model()))),
        "tools/list": same_json(response(list_as_dict()), response(dump(list_as_model(TOOL_MODELS)))),
    }


def run(repeat: int, min_seconds: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for shape, variants in cases().items():
        rows = {}
        timings = per_op_us(variants, repeat=repeat, min_seconds=min_seconds)
        baseline = next(iter(timings.values()))  # the first variant: the dict path
        for name, us in timings.items():
            # A replacement costs its difference from the dict path; an add-on costs all of itself.
            extra = us if name == VALIDATE_ONLY else us - baseline
            rows[name] = {
                "us_per_op": us,
                "ratio_to_dict": us / baseline,
                "adds_to_dict_path": name == VALIDATE_ONLY,
                "extra_us_over_dict": extra,
                "extra_share_of_toolq_call": extra / (TOOLQ_CALL_MS * 1000),
            }
        results[shape] = rows
    return {
        "versions": {name: version(name) for name in ("mcp-types", "pydantic", "pydantic-core")},
        "python": sys.version.split()[0],
        "repeat": repeat,
        "min_seconds": min_seconds,
        "toolq_call_ms": TOOLQ_CALL_MS,
        "same_json_as_dict": fidelity(),
        "results": results,
    }


def print_report(report: dict[str, Any]) -> None:
    versions = ", ".join(f"{name} {v}" for name, v in report["versions"].items())
    print(
        f"Python {report['python']}, {versions}; "
        f"best of {report['repeat']} runs of >= {report['min_seconds']:g} s each"
    )
    same = ", ".join(f"{shape}: {'yes' if ok else 'NO'}" for shape, ok in report["same_json_as_dict"].items())
    print(f"model path puts the same JSON on the wire as the dict path: {same}\n")
    headers = (
        "shape / way of building it",
        "µs per op",
        "x dict",
        "extra µs",
        f"of a {report['toolq_call_ms']:g} ms call",
    )
    lines: list[tuple[str, ...]] = []
    for shape, rows in report["results"].items():
        lines.append((shape, "", "", "", ""))
        for name, row in rows.items():
            lines.append(
                (
                    "  " + name,
                    f"{row['us_per_op']:.2f}",
                    f"{row['ratio_to_dict']:.2f}x",
                    f"{row['extra_us_over_dict']:+.2f}",
                    f"{row['extra_share_of_toolq_call'] * 100:+.2f}%",
                )
            )
    widths = [max(len(line[i]) for line in (headers, *lines)) for i in range(len(headers))]
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for line in lines:
        cells = [line[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True))]
        print(" | ".join(cells))
    print(
        "\nextra µs: what each way costs over the dict path per result; the model_validate row comes "
        "on top of the dict path (validating the dicts), every other row replaces it."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repeat", type=int, default=15, help="timeit runs per figure, best kept (default 15)"
    )
    parser.add_argument(
        "--min-seconds", type=float, default=0.1, help="least duration of one run (default 0.1)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = run(args.repeat, args.min_seconds)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
