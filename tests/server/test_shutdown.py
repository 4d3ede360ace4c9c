"""SIGTERM on a real `voxcall serve`: refuse new joins, drain live calls, end the rest as system_error."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from typing import Any

import pytest
import websockets

from tests.conftest import RunningServer
from tests.server.wire import Wire, create_call
from voxcall.engine.call import INTERRUPTED
from voxcall.store import open_store

DRAIN = 3.0
USER_FIRST = {"systemPrompt": "Shutdown test.", "firstSpeakerSettings": {"user": {}}}
# Spoken at real time this takes minutes, so the drain deadline always cuts it off mid-way.
LONG = " ".join(["This is a long announcement that goes on and on, so that it is still playing at the end."] * 20)


async def close_of(ws: Any, timeout: float) -> tuple[int, str]:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


def wait_exit(process: subprocess.Popen[bytes], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.returncode is not None, "the server did not exit after SIGTERM"
    return process.returncode


async def test_sigterm_refuses_joins_drains_then_ends_calls_as_system_error(server_factory: Any) -> None:
    server: RunningServer = server_factory(extra_env={"VOXCALL_DRAIN_SECONDS": str(DRAIN)})
    assert server.process is not None
    live, late = create_call(server, USER_FIRST), create_call(server, USER_FIRST)
    async with websockets.connect(live["joinUrl"]) as ws:
        wire = Wire(ws)
        await wire.until(lambda m: m == {"type": "state", "state": "listening"})
        await wire.send({"type": "forced_agent_message", "content": LONG})
        await wire.until(lambda m: m["type"] == "transcript" and m["role"] == "agent", timeout=60)
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        await asyncio.sleep(0.5)
        async with websockets.connect(late["joinUrl"]) as refused:
            code, reason = await close_of(refused, 5)
        assert code == 1013 and "try again later" in reason
        await wire.send({"type": "ping", "timestamp": 42})  # the live call goes on while the server drains
        assert (await wire.until(lambda m: m["type"] == "pong", timeout=5))["timestamp"] == 42
        code, reason = await close_of(ws, DRAIN + 20)
        drained = time.monotonic() - signalled
    assert (code, reason) == (1012, "server shutting down")
    assert DRAIN - 0.5 <= drained < DRAIN + 20
    wait_exit(server.process, 60)
    store = await open_store(f"sqlite+aiosqlite:///{server.data_dir / 'voxcall.db'}")
    try:
        ended = await store.get_call(live["callId"])
        assert ended.end_reason == "system_error"
        messages, _, _, _ = await store.list_messages(live["callId"])
        [agent] = [m for m in messages if m.role == "MESSAGE_ROLE_AGENT"]
        assert agent.text and len(agent.text) < len(LONG) and LONG.startswith(agent.text.rstrip(",."))
        assert agent.metadata == {INTERRUPTED: "system_error"}
        assert (await store.get_call(late["callId"])).joined is None  # its join token was not used up
    finally:
        await store.close()
    log = server.log.read_text()
    assert f"[call {live['callId']}]: call ended: system_error (close 1012)" in log
