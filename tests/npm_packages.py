"""npm packages the tests run (MCP clients, the conformance suite), pinned by their lock files.

Each package directory under tests/ (package.json + package-lock.json) is installed with
`npm ci` into .toolq/cache/<name>/ (ignored by git), again only when one of the two files
changes. Needs `node` and `npm` on PATH: tests skip without them, and fail instead when
TOOLQ_REQUIRE_NODE=1. npm needs its registry for the first install; when it cannot reach it
the test fails with npm's output.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".toolq" / "cache"
PACKAGE_FILES = ("package.json", "package-lock.json")
STAMP = ".installed-sha256"
NPM_CI_TIMEOUT = 300.0


def require_node() -> tuple[str, str]:
    """`node` and `npm`, or skip (fail when TOOLQ_REQUIRE_NODE=1)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    missing = [name for name, path in (("node", node), ("npm", npm)) if path is None]
    if node is None or npm is None:
        reason = (
            f"{' and '.join(missing)} not found on PATH: this test needs Node.js 20+ and npm "
            "(https://nodejs.org/)"
        )
        if os.environ.get("TOOLQ_REQUIRE_NODE") == "1":
            pytest.fail(reason + " and TOOLQ_REQUIRE_NODE=1", pytrace=False)
        pytest.skip(reason)
    return node, npm


def outputs(stdout: str | bytes | None, stderr: str | bytes | None) -> str:
    def text(output: str | bytes | None) -> str:
        return output.decode(errors="replace") if isinstance(output, bytes) else output or ""

    return f"\n--- stdout ---\n{text(stdout)}\n--- stderr ---\n{text(stderr)}"


def _package_hash(source: Path) -> str:
    digest = hashlib.sha256()
    for name in PACKAGE_FILES:
        digest.update(name.encode() + b"\0" + (source / name).read_bytes() + b"\0")
    return digest.hexdigest()


@contextlib.contextmanager
def install_lock(target: Path) -> Iterator[None]:
    """Serialize installs between concurrent pytest processes (POSIX only; a no-op elsewhere)."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl  # noqa: PLC0415
    except ImportError:  # Windows
        yield
        return
    with (target / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_or_fail(
    command: list[str], *, timeout: float, cwd: Path | None = None, where: str = "", hint: str = ""
) -> None:
    """Run an install step; fail the test with its output if it fails or outlasts `timeout`."""
    what = f"`{' '.join(command)}`{where}"
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(
            f"{what} did not finish within {timeout:.0f} s{hint}{outputs(expired.stdout, expired.stderr)}",
            pytrace=False,
        )
    if done.returncode != 0:
        pytest.fail(
            f"{what} failed with exit code {done.returncode}{outputs(done.stdout, done.stderr)}",
            pytrace=False,
        )


def _npm_ci(npm: str, target: Path) -> None:
    run_or_fail(
        [npm, "ci", "--no-audit", "--no-fund"],
        timeout=NPM_CI_TIMEOUT,
        cwd=target,
        where=f" in {target}",
        hint=" (is the npm registry reachable?)",
    )


def installed(name: str, scripts: Sequence[str] = ()) -> Path:
    """The cache dir of tests/<name>/ with its pinned packages installed, and `scripts` (files of
    that directory) copied next to them on every run: they change more often than the lock."""
    _, npm = require_node()
    source = ROOT / "tests" / name
    target = CACHE / name
    wanted = _package_hash(source)
    with install_lock(target):
        stamp = target / STAMP
        current = stamp.read_text().strip() if stamp.exists() else None
        if current != wanted or not (target / "node_modules").is_dir():
            stamp.unlink(missing_ok=True)
            for file in PACKAGE_FILES:
                shutil.copyfile(source / file, target / file)
            _npm_ci(npm, target)
            stamp.write_text(wanted + "\n")
        for script in scripts:
            partial = target / f".{script}.{os.getpid()}"
            shutil.copyfile(source / script, partial)
            partial.replace(target / script)
    return target


async def run_json(
    command: Sequence[str],
    *,
    cwd: Path,
    timeout: float,  # noqa: ASYNC109 - how long the child process may take, then it is killed
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run a program that prints one JSON object, without blocking the event loop."""
    name = " ".join(Path(part).name for part in command[:2])
    process = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
        pytest.fail(f"{name} did not finish within {timeout:.0f} s{outputs(out, err)}")
    assert process.returncode == 0, f"{name} exited with {process.returncode}{outputs(out, err)}"
    try:
        report: dict[str, Any] = json.loads(out)
    except json.JSONDecodeError:
        pytest.fail(f"{name} did not print one JSON object{outputs(out, err)}")
    return report
