"""The README's Python SDK example, run as written against a real server (only the key and URL change)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import RunningServer

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_example_runs(qwen_server: RunningServer) -> None:
    code = re.search(r"```python\n(import asyncio\nfrom voxcall import .*?)```", README.read_text(), re.S)
    assert code, "the README lost its Python SDK example"
    source = code.group(1).replace("AbCdEfGh.0123...", qwen_server.api_key).replace("http://127.0.0.1:8000", qwen_server.url)
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Paris" in done.stdout or "paris" in done.stdout, done.stdout
    calls = httpx.get(f"{qwen_server.api}/calls", headers=qwen_server.headers(), params={"pageSize": 1}).json()["results"]
    messages = httpx.get(f"{qwen_server.api}/calls/{calls[0]['callId']}/messages", headers=qwen_server.headers()).json()["results"]
    assert [m["role"] for m in messages] == ["MESSAGE_ROLE_USER", "MESSAGE_ROLE_TOOL_CALL", "MESSAGE_ROLE_TOOL_RESULT", "MESSAGE_ROLE_AGENT"]
    assert "21" in messages[-1]["text"] or "21" in done.stdout
