"""The official MCP TypeScript SDK client against the facade: `@modelcontextprotocol/sdk`'s
`Client` over `StreamableHTTPClientTransport` (tests/typescript_client/client.mjs), run by
Node.js against the facade app in-process on a real port of 127.0.0.1, its queue on fakeredis
with an in-process worker.

Needs `node` and `npm` on PATH: skipped without them, failed instead when TOOLQ_REQUIRE_NODE=1.
The SDK version pinned by tests/typescript_client/package-lock.json is installed once with
`npm ci` into .toolq/cache/typescript_client/ (ignored by git) and reinstalled only when
package.json or package-lock.json changes. npm needs the registry for that first install; when it
cannot reach it the test fails with npm's output.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from arq.connections import ArqRedis

from facade.app import create_app
from facade.settings import FacadeSettings

ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path(__file__).resolve().parent / "typescript_client"
CACHE = ROOT / ".toolq" / "cache" / "typescript_client"
PACKAGE_FILES = ("package.json", "package-lock.json")
STAMP = ".installed-sha256"
NPM_CI_TIMEOUT = 180.0
CLIENT_TIMEOUT = 30.0


def _require_node() -> tuple[str, str]:
    """`node` and `npm`, or skip (fail when TOOLQ_REQUIRE_NODE=1)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    missing = [name for name, path in (("node", node), ("npm", npm)) if path is None]
    if node is None or npm is None:
        reason = (
            f"{' and '.join(missing)} not found on PATH: the TypeScript SDK client test needs "
            "Node.js 20+ and npm (https://nodejs.org/)"
        )
        if os.environ.get("TOOLQ_REQUIRE_NODE") == "1":
            pytest.fail(reason + " and TOOLQ_REQUIRE_NODE=1", pytrace=False)
        pytest.skip(reason)
    return node, npm


def _package_hash() -> str:
    digest = hashlib.sha256()
    for name in PACKAGE_FILES:
        digest.update(name.encode() + b"\0" + (SOURCE / name).read_bytes() + b"\0")
    return digest.hexdigest()


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    """Serialize installs between concurrent pytest processes (POSIX only; a no-op elsewhere)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl  # noqa: PLC0415
    except ImportError:  # Windows
        yield
        return
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _npm_ci(npm: str) -> None:
    command = [npm, "ci", "--no-audit", "--no-fund"]
    try:
        done = subprocess.run(
            command, cwd=CACHE, capture_output=True, text=True, timeout=NPM_CI_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(
            f"`{' '.join(command)}` in {CACHE} did not finish within {NPM_CI_TIMEOUT:.0f} s "
            f"(is the npm registry reachable?){_outputs(timeout.stdout, timeout.stderr)}",
            pytrace=False,
        )
    if done.returncode != 0:
        pytest.fail(
            f"`{' '.join(command)}` in {CACHE} failed with exit code {done.returncode}"
            f"{_outputs(done.stdout, done.stderr)}",
            pytrace=False,
        )


def _outputs(stdout: str | bytes | None, stderr: str | bytes | None) -> str:
    def text(output: str | bytes | None) -> str:
        return output.decode(errors="replace") if isinstance(output, bytes) else output or ""

    return f"\n--- stdout ---\n{text(stdout)}\n--- stderr ---\n{text(stderr)}"


@pytest.fixture(scope="session")
def typescript_client() -> tuple[str, Path]:
    """`node` and the path of client.mjs inside the cache dir, its pinned SDK installed next to it."""
    node, npm = _require_node()
    wanted = _package_hash()
    with _install_lock():
        stamp = CACHE / STAMP
        installed = stamp.read_text().strip() if stamp.exists() else None
        if installed != wanted or not (CACHE / "node_modules").is_dir():
            stamp.unlink(missing_ok=True)
            for name in PACKAGE_FILES:
                shutil.copyfile(SOURCE / name, CACHE / name)
            _npm_ci(npm)
            stamp.write_text(wanted + "\n")
        # The script changes more often than the lock: copy it on every run (atomically).
        script = CACHE / "client.mjs"
        partial = CACHE / f".client.mjs.{os.getpid()}"
        shutil.copyfile(SOURCE / "client.mjs", partial)
        partial.replace(script)
    return node, script


async def run_client(node: str, script: Path, url: str) -> dict[str, Any]:
    """Run client.mjs against `url` without blocking the loop the facade serves on."""
    process = await asyncio.create_subprocess_exec(
        node,
        str(script),
        url,
        cwd=script.parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), CLIENT_TIMEOUT)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
        pytest.fail(f"client.mjs did not finish within {CLIENT_TIMEOUT:.0f} s{_outputs(out, err)}")
    assert process.returncode == 0, f"client.mjs exited with {process.returncode}{_outputs(out, err)}"
    try:
        report: dict[str, Any] = json.loads(out)
    except json.JSONDecodeError:
        pytest.fail(f"client.mjs did not print one JSON object{_outputs(out, err)}")
    return report


@pytest.mark.timeout(NPM_CI_TIMEOUT + 60)
async def test_the_typescript_sdk_client_lists_calls_and_terminates(
    typescript_client: tuple[str, Path],
    aiohttp_server: Any,
    redis: ArqRedis,
    start_worker: Any,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("TOOLQ_WEATHER_PROVIDER", "offline")
    await start_worker()
    settings = FacadeSettings(call_grace_seconds=1.0, max_call_seconds=10.0)
    server = await aiohttp_server(create_app(settings, redis=redis), host="127.0.0.1")
    node, script = typescript_client

    report = await run_client(node, script, f"http://127.0.0.1:{server.port}/mcp")

    assert report["serverInfo"]["name"] == "toolq"
    assert report["capabilities"]["tools"] == {"listChanged": False}
    assert report["protocolVersion"] == "2025-11-25"
    assert report["hadSessionId"] is True
    assert report["tools"] == ["add", "weather"]

    add = report["add"]["result"]
    assert add["isError"] is False
    assert add["structuredContent"] == {"a": 15, "b": 27, "sum": 42}

    weather = report["weather"]["result"]
    assert weather["isError"] is False
    assert weather["structuredContent"]["city"] == "Delhi"
    assert weather["structuredContent"]["source"] == "offline-sample"

    unknown = report["unknownTool"]
    assert "result" not in unknown, unknown
    assert unknown["error"]["code"] == -32602
    assert "no_such_tool" in unknown["error"]["message"]

    bad = report["badArguments"]["result"]
    assert bad["isError"] is True
    assert "structuredContent" not in bad
    message = " ".join(block.get("text", "") for block in bad["content"])
    assert "Invalid arguments for tool 'add'" in message, message
    assert "'b'" in message, message  # missing
    assert "'x'" in message, message  # not a number

    assert report["sessionIdAfterTerminate"] is None
    assert {"method": "DELETE", "status": 200} in report["http"], report["http"]
    assert report["reusedSessionStatus"] == 404
