"""Runs the browser SDK's Node unit tests (tests/js, Node's built-in runner) inside the pytest suite."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT


def test_node_unit_tests_of_the_sdk_pass() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: run `bash scripts/browser-deps.sh` (it installs Debian's nodejs)", pytrace=False)
    run = subprocess.run([node, "--test", "tests/js/"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    assert "# fail 0" in report and "# pass 0" not in report, report[-3000:]
