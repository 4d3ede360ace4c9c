"""`voxcall serve --workers 2`: two call-plane processes on one port, each a cluster node (PostgreSQL, Redis).

The LLM is an OpenAI-compatible endpoint on loopback (the workers hold no model);
speech is off. A call joined on one worker is reached through REST requests that
land on either worker; SIGTERM to the supervisor stops both workers.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.cluster.conftest import service_url
from tests.cluster.test_multinode import TEXT_CALL, fresh_database
from tests.conftest import free_port
from tests.server.wire import Wire
from tests.toolserver import Seen, ToolServer
from voxcall.config import Settings
from voxcall.server.supervisor import worker_problem


def sse_hello(seen: Seen) -> tuple[int, dict[str, str], bytes]:
    chunk = {"choices": [{"index": 0, "delta": {"content": "Hello from a worker."}}]}
    return 200, {"Content-Type": "text/event-stream"}, b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"


def test_more_than_one_worker_needs_redis_postgres_and_the_models_on_urls(tmp_path: Path) -> None:
    ready = {"workers": 2, "redis_url": "redis://127.0.0.1:1/0", "database_url": "postgresql+asyncpg://u:p@h/db",
             "llm": "openai", "llm_url": "http://127.0.0.1:1/v1", "speech": False, "data_dir": tmp_path}
    assert worker_problem(Settings(**ready)) is None
    assert worker_problem(Settings(**{**ready, "workers": 1, "redis_url": None})) is None
    for change, words in (({"redis_url": None}, "VOXCALL_REDIS_URL"), ({"database_url": None}, "PostgreSQL"),
                          ({"llm": "smollm2-135m"}, "VOXCALL_LLM_URL"), ({"speech": True}, "VOXCALL_STT_URL")):
        problem = worker_problem(Settings(**{**ready, **change}))
        assert problem is not None and words in problem and "--workers 2" in problem
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VOXCALL_")}, "VOXCALL_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "voxcall", "serve", "--workers", "2"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 1 and "error: --workers 2 needs VOXCALL_REDIS_URL" in done.stderr, done.stderr
    assert not (tmp_path / "voxcall.db").exists()  # refused before anything was created


@pytest.fixture(scope="module")
def workers(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    database = fresh_database(service_url("VOXCALL_TEST_POSTGRES_URL", "test-services.sh"))
    data = tmp_path_factory.mktemp("workers")
    port = free_port()
    with ToolServer() as llm:
        llm.routes["/v1/chat/completions"] = sse_hello
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("VOXCALL_")}, "HF_HUB_OFFLINE": "1",
               "VOXCALL_DATA_DIR": str(data), "VOXCALL_DATABASE_URL": database, "VOXCALL_REDIS_URL": redis_url,
               "VOXCALL_DRAIN_SECONDS": "0", "VOXCALL_NODE_ID": "box"}
        proc = subprocess.Popen([sys.executable, "-m", "voxcall", "serve", "--port", str(port), "--workers", "2",
                                 "--no-speech", "--llm-url", f"{llm.url}/v1", "--log-level", "warning"],
                                env=env, stdout=subprocess.PIPE, stderr=(data / "stderr.log").open("wb"), text=True)
        try:
            assert proc.stdout is not None
            deadline = time.monotonic() + 120
            key = ""
            while time.monotonic() < deadline and not key:
                line = proc.stdout.readline()
                assert line, f"the supervisor exited: {(data / 'stderr.log').read_text()[-3000:]}"
                if line.startswith("Your API key"):
                    key = line.split(":", 1)[1].strip()
            assert key, "no ready line and key"
            yield proc, f"http://127.0.0.1:{port}", key
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def test_two_workers_answer_on_one_port_as_two_nodes(workers: tuple[subprocess.Popen[str], str, str]) -> None:
    _, url, _ = workers
    nodes = set()
    for _ in range(40):
        if len(nodes) == 2:
            break
        nodes.add(httpx.get(f"{url}/readyz", headers={"Connection": "close"}, timeout=5).json()["load"]["node"])
    assert nodes == {"box-0", "box-1"}


async def test_a_call_on_one_worker_is_reached_through_either_and_sigterm_stops_both(
    workers: tuple[subprocess.Popen[str], str, str],
) -> None:
    proc, url, key = workers
    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(base_url=f"{url}/api", headers=headers, timeout=30) as api:
        call = (await api.post("/calls", json=TEXT_CALL)).json()
        wire = Wire(await websockets.connect(call["joinUrl"]))
        await wire.until(lambda m: m == {"type": "state", "state": "listening"})
        await wire.send({"type": "user_text_message", "text": "Hi"})
        assert (await wire.agent_final())["text"] == "Hello from a worker."
        for i in range(6):  # fresh connections: the kernel spreads them over both workers
            async with httpx.AsyncClient(base_url=f"{url}/api", headers={**headers, "Connection": "close"}, timeout=30) as one:
                r = await one.post(f"/calls/{call['callId']}/send_data_message",
                                   json={"type": "forced_agent_message", "content": f"Relayed {i}."})
            assert r.status_code == 204, r.text
            assert (await wire.agent_final())["text"] == f"Relayed {i}."
        proc.send_signal(signal.SIGTERM)
        assert await wire.closed(timeout=20) == 1012
        await wire.ws.close()
    assert await asyncio.to_thread(proc.wait, 30) == 0
