"""README.md's table of the hosted API's operations is the one scripts/compat_table.py writes."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import ModuleType

from tests.conftest import ROOT
from voxcall.server.operations import OPERATIONS, implemented

SCRIPT = ROOT / "scripts" / "compat_table.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compat_table", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_table_is_up_to_date() -> None:
    readme = (ROOT / "README.md").read_text()
    assert _script().update(readme) == readme, "README.md is out of date: run python scripts/compat_table.py"
    assert subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True).returncode == 0


def test_the_table_has_one_row_per_operation() -> None:
    table = _script().render()
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) == len(OPERATIONS) == 114
    assert sum(row.endswith("| yes |") for row in rows) == len(implemented())
    assert f"| `GET /api/corpora` | {OPERATIONS[('GET', '/api/corpora')]} |" in rows


def test_a_stale_table_is_detected() -> None:
    script = _script()
    readme = (ROOT / "README.md").read_text()
    stale = readme.replace("| `POST /api/calls` | yes |", "| `POST /api/calls` | not yet |")
    assert stale != readme and script.update(stale) == readme
