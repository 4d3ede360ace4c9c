"""The `voxcall` command as a new user meets it: one data directory whatever the cwd, ready means listening."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXCALL_")}
    return {**env, "HOME": str(tmp_path / "home"), "XDG_DATA_HOME": "", "HF_HUB_OFFLINE": "1"}


def test_keys_use_one_database_from_any_directory(tmp_path: Path) -> None:
    env = _env(tmp_path)
    printed = []
    for cwd in (tmp_path / "a", tmp_path / "b"):
        cwd.mkdir()
        done = subprocess.run([sys.executable, "-m", "voxcall", "keys", "create", "--name", cwd.name], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=120, check=True)
        printed.append(done.stderr)
        assert not (cwd / "data").exists()
    database = tmp_path / "home" / ".local" / "share" / "voxcall" / "voxcall.db"
    assert all(f"stored in {database}" in text for text in printed), printed
    listing = subprocess.run([sys.executable, "-m", "voxcall", "keys", "list"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120, check=True).stdout
    assert re.search(r"\ba\n", listing) and re.search(r"\bb\n", listing), listing


def test_ready_line_comes_once_the_port_listens_and_docs_work_offline(tmp_path: Path, models_dir: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "models").symlink_to(models_dir, target_is_directory=True)
    env = {**_env(tmp_path), "VOXCALL_DATA_DIR": str(tmp_path / "data")}
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "voxcall", "serve", "--port", str(port), "--llm", "smollm2-135m", "--no-speech"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 240
        line = ""
        while time.monotonic() < deadline and "voxcall is ready" not in line:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "server exited before it was ready"
        assert "voxcall is ready" in line
        with socket.create_connection(("127.0.0.1", port), timeout=1):  # listening at the moment it says so
            pass
        page = httpx.get(f"http://127.0.0.1:{port}/api/docs", timeout=10)
        assert page.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert assets and all(a.startswith("/api/docs/assets/") for a in assets), assets
        for asset in assets:
            assert httpx.get(f"http://127.0.0.1:{port}{asset}", timeout=10).status_code == 200
        assert "/api/openapi.json" in page.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
