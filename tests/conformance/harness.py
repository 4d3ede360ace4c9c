"""Run a third-party client driver in its own virtualenv and read back its JSON report.

The virtualenvs come from scripts/conformance-venvs.sh. A missing one fails the test (never a
skip): a conformance suite that silently stops running proves nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, RunningServer

__all__ = ["HERE", "driver_report", "messages", "server_get", "summary", "wait_for_end"]

HERE = Path(__file__).resolve().parent
VENVS = Path(os.environ.get("VENVS_DIR", ROOT / ".venvs"))
ARTIFACTS = ROOT / "test-artifacts" / "conformance"  # each report is kept here for reading after a run
DRIVER_TIMEOUT = 120.0
# Variables that would point the venv's interpreter at the project's packages.
_LEAKY_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")


def _venv_python(name: str) -> Path:
    python = VENVS / name / "bin" / "python"
    marker = VENVS / name / ".voxcall-complete"
    if not python.exists() or not marker.exists():
        pytest.fail(
            f"the {name!r} client virtualenv is missing or incomplete ({VENVS / name}): "
            "run scripts/conformance-venvs.sh",
            pytrace=False,
        )
    return python


def driver_report(venv: str, script: str, server: RunningServer, *args: str) -> dict[str, Any]:
    """Run `script` with the venv's Python against `server`; return its JSON report."""
    python = _venv_python(venv)
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV}
    env["ULTRAVOX_API_KEY"] = server.api_key
    command = [str(python), str(HERE / script), server.api, *args]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=DRIVER_TIMEOUT, cwd=HERE)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{script} {' '.join(args)} ran past {DRIVER_TIMEOUT:.0f} s; stderr tail:\n{_tail(exc.stderr)}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        pytest.fail(f"{script} {' '.join(args)} exited {proc.returncode}; stderr tail:\n{_tail(proc.stderr)}")
    try:
        report: dict[str, Any] = json.loads(lines[-1])
    except ValueError:
        pytest.fail(f"{script} printed no JSON report; stdout tail:\n{_tail(proc.stdout)}")
    report["driver_wall_s"] = round(time.monotonic() - t0, 2)
    report["stderr_tail"] = _tail(proc.stderr)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{Path(script).stem}-{'-'.join(args) or 'run'}.json").write_text(json.dumps(report, indent=1))
    return report


def _tail(text: str | bytes | None, size: int = 3000) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return (text or "")[-size:]


def summary(report: dict[str, Any]) -> str:
    """The parts of a livekit driver report worth reading when an assertion fails."""
    keep = ("scenario", "steps", "event_types", "errors", "texts", "function_calls", "call_ids",
            "invalid_event_data", "exception", "elapsed_s")
    short = {k: report.get(k) for k in keep}
    short["log_lines"] = [line for line in report.get("log_lines", []) if line.get("level") != "DEBUG"][:20]
    short["server_events"] = [json.dumps(e) for e in report.get("server_events", [])][:40]
    return json.dumps(short, indent=1, default=repr)


def server_get(server: RunningServer, path: str, *, expect: int = 200) -> Any:
    response = httpx.get(f"{server.api}{path}", headers=server.headers(), timeout=10)
    assert response.status_code == expect, f"GET {path}: {response.status_code} {response.text[:500]}"
    return response.json() if response.content else None


def wait_for_end(server: RunningServer, call_id: str, timeout: float = 15.0) -> dict[str, Any]:
    """The call resource once the server has recorded its end (the client closed the socket)."""
    deadline = time.monotonic() + timeout
    while True:
        call: dict[str, Any] = server_get(server, f"/calls/{call_id}")
        if call.get("ended") or time.monotonic() > deadline:
            return call
        time.sleep(0.2)


def messages(server: RunningServer, call_id: str) -> list[dict[str, Any]]:
    return list(server_get(server, f"/calls/{call_id}/messages?pageSize=200")["results"])
