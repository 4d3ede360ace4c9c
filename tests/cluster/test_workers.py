"""`voxcall serve --workers 2`: two call-plane processes on one port, each a cluster node (PostgreSQL, Redis).

The LLM is an OpenAI-compatible endpoint on loopback (the workers hold no model);
speech is off. A call joined on one worker is reached through REST requests that
land on either worker; a scrape of /metrics, whichever worker answers it, counts
the calls of both; SIGTERM to the supervisor stops both workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.cluster.conftest import service_url
from tests.cluster.test_multinode import TEXT_CALL, fresh_database
from tests.conftest import free_port
from tests.server.test_ops import samples
from tests.server.wire import Wire
from tests.toolserver import Seen, ToolServer
from voxcall.config import Settings
from voxcall.server.supervisor import EARLY_EXIT, worker_problem


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
            if proc.poll() is None:  # a test failed before the SIGTERM test: stop it so that it cleans up
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
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


async def _create_call(api: httpx.AsyncClient) -> dict[str, Any]:
    for _ in range(30):  # calls_per_second holds across both workers: wait as told
        r = await api.post("/calls", json=TEXT_CALL)
        if r.status_code != 429:
            break
        await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def _live_per_worker(url: str) -> dict[str, int]:
    """Each worker's own count of hosted calls (its /readyz), asked on fresh connections until both answered."""
    seen: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(60):
            if len(seen) == 2:
                break
            load = (await client.get(f"{url}/readyz", headers={"Connection": "close"})).json()["load"]
            seen[load["node"]] = load["liveCalls"]
    return seen


async def _scrapes(url: str, count: int) -> list[dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """`count` scrapes of /metrics, each on a fresh connection (so either worker may answer it)."""
    async with httpx.AsyncClient(timeout=10) as client:
        texts = [(await client.get(f"{url}/metrics", headers={"Connection": "close"})).text for _ in range(count)]
    return [samples(text) for text in texts]


async def _calls_on_both_workers(url: str, key: str) -> tuple[list[Wire], dict[str, int]]:
    """Open calls until each worker hosts at least one (at most 16); the calls and each worker's count."""
    wires: list[Wire] = []
    per_worker: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=f"{url}/api", headers={"X-API-Key": key}, timeout=30) as api:
        while len(wires) < 16 and not (len(per_worker) == 2 and all(per_worker.values())):
            call = await _create_call(api)  # each join is a new connection: the kernel picks its worker
            wire = Wire(await websockets.connect(call["joinUrl"]))
            wires.append(wire)
            await wire.until(lambda m: m == {"type": "state", "state": "listening"})
            per_worker = await _live_per_worker(url)
    return wires, per_worker


async def _hang_up(wires: list[Wire]) -> None:
    for wire in wires:
        with contextlib.suppress(websockets.ConnectionClosed):  # a call of a worker that was killed
            await wire.send({"type": "hang_up"})
        await wire.closed()
        await wire.ws.close()


def _worker_pids(supervisor: int) -> dict[str, int]:
    """The supervisor's workers by node id (`box-<index>`), from the processes' parent ids and command lines."""
    found: dict[str, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == supervisor:
                argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
                found[f"box-{argv[argv.index(b'--worker-index') + 1].decode()}"] = int(stat.parent.name)
    return found


def _age(pid: int) -> float:
    """Seconds since process `pid` started."""
    started = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
    return float(Path("/proc/uptime").read_text().split()[0]) - started


async def test_one_scrape_sums_the_calls_of_both_workers(workers: tuple[subprocess.Popen[str], str, str]) -> None:
    _, url, key = workers
    hangups = ("voxcall_calls_ended_total", (("end_reason", "hangup"),))
    before = (await _scrapes(url, 1))[0].get(hangups, 0.0)
    wires, per_worker = await _calls_on_both_workers(url, key)
    try:
        assert len(per_worker) == 2 and all(per_worker.values()), f"the calls did not land on both workers: {per_worker}"
        assert sum(per_worker.values()) == len(wires)
        for got in await _scrapes(url, 6):  # whichever worker answers, it counts the calls of both
            assert got[("voxcall_live_calls", ())] == len(wires)
    finally:
        await _hang_up(wires)
    for _ in range(100):  # each host unregisters its call just after it closed the socket
        got = (await _scrapes(url, 1))[0]
        if got[("voxcall_live_calls", ())] == 0 and got.get(hangups) == before + len(wires):
            break
        await asyncio.sleep(0.05)
    for got in await _scrapes(url, 4):
        assert got[("voxcall_live_calls", ())] == 0
        assert got[hangups] == before + len(wires)  # the counters of both workers, summed


async def test_a_killed_worker_leaves_the_live_sum_keeps_its_counts_and_is_started_again(
    workers: tuple[subprocess.Popen[str], str, str],
) -> None:
    proc, url, key = workers
    hangups = ("voxcall_calls_ended_total", (("end_reason", "hangup"),))
    counted = (await _scrapes(url, 1))[0].get(hangups, 0.0)  # the calls of the test above, on both workers
    wires, per_worker = await _calls_on_both_workers(url, key)
    try:
        assert len(per_worker) == 2 and all(per_worker.values()), f"the calls did not land on both workers: {per_worker}"
        pids = _worker_pids(proc.pid)
        assert set(pids) == {"box-0", "box-1"}
        # A worker that dies within EARLY_EXIT of its start is taken for a broken configuration (the node stops).
        await asyncio.sleep(max(0.0, EARLY_EXIT + 1 - _age(pids["box-0"])))
        os.kill(pids["box-0"], signal.SIGKILL)
        survivors = per_worker["box-1"]
        got: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for _ in range(100):  # the supervisor reaps the worker every 0.2 s and takes it out of the live sums
            with contextlib.suppress(httpx.TransportError):  # a connection the dying worker had accepted
                got = (await _scrapes(url, 1))[0]
            if got.get(("voxcall_live_calls", ())) == survivors:
                break
            await asyncio.sleep(0.05)
        assert got[("voxcall_live_calls", ())] == survivors
        assert got.get(hangups, 0.0) == counted  # what the killed worker counted stays counted
        for _ in range(600):  # started again: both node ids answer, the new box-0 with no calls
            if len(again := await _live_per_worker(url)) == 2:
                break
            await asyncio.sleep(0.1)
        assert again == {"box-0": 0, "box-1": survivors}
        assert _worker_pids(proc.pid)["box-0"] != pids["box-0"] and proc.poll() is None
        for got in await _scrapes(url, 4):
            assert got[("voxcall_live_calls", ())] == survivors
    finally:
        await _hang_up(wires)


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
