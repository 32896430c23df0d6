"""Python packages the tests run that cannot share toolq's venv, pinned by a requirements file.

Each package directory under tests/ holding a requirements.txt (every distribution pinned with
`==`) gets a venv of its own in .toolq/cache/<name>/venv (ignored by git), made by `python -m venv`
from the interpreter running the tests and filled by pip, again only when the file or the
interpreter changes. pip needs its index for the first install; when it cannot reach it the test
fails with pip's output. The npm counterpart is tests/npm_packages.py.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

from npm_packages import CACHE, install_lock, run_or_fail

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = "requirements.txt"
STAMP = ".installed-sha256"
PIP_INSTALL_TIMEOUT = 300.0


def _wanted(requirements: Path) -> str:
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(f"\0{sys.version}\0{sys.base_prefix}".encode())
    return digest.hexdigest()


def _run(command: list[str], what: str) -> None:
    run_or_fail(
        command, timeout=PIP_INSTALL_TIMEOUT, where=f" ({what})", hint=" (is the package index reachable?)"
    )


def venv_python(name: str) -> Path:
    """The python of a venv holding exactly tests/<name>/requirements.txt."""
    requirements = ROOT / "tests" / name / REQUIREMENTS
    target = CACHE / name
    venv = target / "venv"
    python = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    wanted = _wanted(requirements)
    with install_lock(target):
        stamp = target / STAMP
        current = stamp.read_text().strip() if stamp.exists() else None
        if current != wanted or not python.exists():
            stamp.unlink(missing_ok=True)
            shutil.rmtree(venv, ignore_errors=True)
            _run([sys.executable, "-m", "venv", str(venv)], f"making the venv {venv}")
            install = [str(python), "-m", "pip", "install", "--no-input", "-r", str(requirements)]
            _run(install, f"installing tests/{name}/{REQUIREMENTS}")
            stamp.write_text(wanted + "\n")
    return python
