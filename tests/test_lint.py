"""The type checker and the linter are part of the test command: `mypy --strict` on src/, ruff on everything.

Both read their settings from pyproject.toml ([tool.mypy], [tool.ruff]).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_mypy_strict_finds_nothing() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_ruff_finds_nothing() -> None:
    result = _run("ruff", "check", "--output-format", "concise")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
