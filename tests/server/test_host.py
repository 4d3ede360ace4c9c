"""The call host, in-process on a loopback port with scripted providers: every way a call ends."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.server.inprocess import InProcess, build_services, serving
from voxcall.engine.call import INTERRUPTED
from voxcall.engine.spec import Speech
from voxcall.providers.base import TextDelta
from voxcall.providers.fake import ScriptedLLM, ScriptedSTT, ToneTTS
from voxcall.server.serve import drain
from voxcall.server.services import Services

TEXT_USER_FIRST = {"systemPrompt": "Host test.", "firstSpeakerSettings": {"user": {}},
                   "initialOutputMedium": "MESSAGE_MEDIUM_TEXT"}
LONG_REPLY = " ".join(f"word{i}" for i in range(400)) + "."


def recording_hook(svc: Services) -> list[tuple[str, str]]:
    ended: list[tuple[str, str]] = []

    async def hook(call_id: str, reason: str) -> None:
        ended.append((call_id, reason))

    svc.on_ended.append(hook)
    return ended


async def until_unregistered(svc: Services, timeout: float = 5) -> None:
    """Wait until the host has finished ending its calls: the end hooks run, then the call leaves `svc.live`."""
    async with asyncio.timeout(timeout):
        while len(svc.live):
            await asyncio.sleep(0.01)


async def messages_until(ws: Any, predicate: Any, timeout: float = 10) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.recv()
            if isinstance(frame, str):
                seen.append(json.loads(frame))
                if predicate(seen[-1]):
                    return seen


async def close_of(ws: Any, timeout: float = 10) -> tuple[int, str]:
    """Read until the server closes the socket; its close code and reason."""
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def stored_messages(srv: InProcess, call_id: str) -> list[Any]:
    page, _, _, _ = await srv.svc.store.list_messages(call_id)
    return page


async def test_a_call_whose_speech_factory_fails_ends_as_system_error_and_closes_with_a_reason(tmp_path: Path) -> None:
    def broken_vad() -> Any:
        raise RuntimeError("no VAD session left")

    speech = Speech(vad=broken_vad, stt=ScriptedSTT([]), tts=ToneTTS())
    svc = await build_services(tmp_path, ScriptedLLM([]), speech)
    ended = recording_hook(svc)
    async with serving(svc) as srv:
        call = await srv.create_call({"systemPrompt": "Voice call."})  # a voice call: the VAD is built per call
        async with websockets.connect(call["joinUrl"]) as ws:
            code, reason = await close_of(ws)
        assert code == 1011 and "internal error" in reason
        stored = await srv.get_call(call["callId"])
        assert stored["endReason"] == "system_error" and stored["joined"] and stored["ended"]
        # The socket closes before the end hooks run, and this call was never registered live (its build
        # failed), so wait for the hook itself.
        async with asyncio.timeout(5):
            while not ended:
                await asyncio.sleep(0.01)
        assert ended == [(call["callId"], "system_error")]
        assert len(svc.live) == 0


async def test_a_hang_up_ends_the_call_once_through_the_hook_with_close_1000(tmp_path: Path) -> None:
    svc = await build_services(tmp_path, ScriptedLLM([[TextDelta("Hi there.")]]))
    ended = recording_hook(svc)
    async with serving(svc) as srv:
        call = await srv.create_call(TEXT_USER_FIRST)
        async with websockets.connect(call["joinUrl"]) as ws:
            seen = await messages_until(ws, lambda m: m == {"type": "state", "state": "listening"})
            assert seen[0] == {"type": "call_started", "callId": call["callId"]}
            assert call["callId"] in svc.live
            await ws.send(json.dumps({"type": "user_text_message", "text": "Hello"}))
            await messages_until(ws, lambda m: m["type"] == "transcript" and m["role"] == "agent" and m["final"])
            await ws.send(json.dumps({"type": "hang_up"}))
            assert await close_of(ws) == (1000, "")
        assert (await srv.get_call(call["callId"]))["endReason"] == "hangup"
        await until_unregistered(svc)
        assert ended == [(call["callId"], "hangup")]
        assert all(m.metadata is None for m in await stored_messages(srv, call["callId"]))  # nothing was cut off


async def test_while_draining_a_join_is_refused_with_1013_and_the_token_stays_usable(tmp_path: Path) -> None:
    svc = await build_services(tmp_path, ScriptedLLM([]))
    async with serving(svc) as srv:
        call = await srv.create_call(TEXT_USER_FIRST)
        svc.draining = True
        async with websockets.connect(call["joinUrl"]) as ws:
            code, reason = await close_of(ws)
        assert code == 1013 and "try again later" in reason
        assert (await srv.get_call(call["callId"]))["joined"] is None
        svc.draining = False
        async with websockets.connect(call["joinUrl"]) as ws:
            seen = await messages_until(ws, lambda m: m["type"] == "call_started")
            assert seen[-1]["callId"] == call["callId"]


async def test_drain_lets_a_live_call_go_on_then_ends_it_with_1012_and_stores_the_cut_reply_as_interrupted(
        tmp_path: Path) -> None:
    svc = await build_services(tmp_path, ScriptedLLM([[TextDelta(LONG_REPLY)]], delay=0.02))  # about 8 s of typing
    ended = recording_hook(svc)
    async with serving(svc) as srv:
        call = await srv.create_call(TEXT_USER_FIRST)
        late = await srv.create_call(TEXT_USER_FIRST)
        async with websockets.connect(call["joinUrl"]) as ws:
            await messages_until(ws, lambda m: m == {"type": "state", "state": "listening"})
            await ws.send(json.dumps({"type": "user_text_message", "text": "Tell me everything."}))
            await messages_until(ws, lambda m: m["type"] == "transcript" and m["role"] == "agent")
            started = time.monotonic()
            draining = asyncio.create_task(drain(svc, 1.0))
            await asyncio.sleep(0.2)
            async with websockets.connect(late["joinUrl"]) as refused:
                assert (await close_of(refused))[0] == 1013
            during = await messages_until(ws, lambda m: m["type"] == "transcript" and m.get("delta") is not None)
            assert during, "the live call went on while draining"
            code, reason = await close_of(ws)
            assert (code, reason) == (1012, "server shutting down")
            await draining
            assert 1.0 <= time.monotonic() - started < 6.0
        assert (await srv.get_call(call["callId"]))["endReason"] == "system_error"
        assert ended == [(call["callId"], "system_error")]
        agent = [m for m in await stored_messages(srv, call["callId"]) if m.role == "MESSAGE_ROLE_AGENT"]
        assert len(agent) == 1 and agent[0].text and len(agent[0].text) < len(LONG_REPLY)
        assert LONG_REPLY.startswith(agent[0].text.rstrip("."))
        assert agent[0].metadata == {INTERRUPTED: "system_error"}
        assert (await srv.get_call(late["callId"]))["joined"] is None


async def test_drain_with_no_live_calls_returns_at_once(tmp_path: Path) -> None:
    svc = await build_services(tmp_path, ScriptedLLM([]))
    started = time.monotonic()
    await drain(svc, 30.0)
    assert time.monotonic() - started < 1.0 and svc.draining and svc.stopping
    await svc.close()
