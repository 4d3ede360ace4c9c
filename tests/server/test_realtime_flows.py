"""Realtime protocol flows against a real server process and a real (small) model."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets

from tests.conftest import RunningServer
from tests.server.wire import Wire, create_call, get, wait_for_end

USER_FIRST = {"firstSpeakerSettings": {"user": {}}}


async def test_seed_flow(qwen_server: RunningServer) -> None:
    """The C# seed: only systemPrompt, join the URL unchanged, say hello, get a streamed reply, hang up.

    Without a medium the call is a voice call: replies are spoken (audio frames) and transcribed in step.
    """
    server = qwen_server
    call = create_call(server, {"systemPrompt": "You are a friendly assistant. Answer briefly."})
    async with websockets.connect(call["joinUrl"]) as ws:
        wire = Wire(ws)
        started = await wire.until(lambda m: True)
        assert started == {"type": "call_started", "callId": call["callId"]}
        greeting = await wire.agent_final()  # the agent speaks first by default
        assert greeting["ordinal"] == 0 and greeting["text"]
        await wire.until(lambda m: m == {"type": "state", "state": "listening"})
        await wire.send({"type": "user_text_message", "text": "Hello, how are you?"})
        user = await wire.until(lambda m: m["type"] == "transcript" and m["role"] == "user")
        assert user == {"type": "transcript", "role": "user", "medium": "text", "text": "Hello, how are you?", "final": True, "ordinal": 1}
        reply = await wire.agent_final()
        parts = [m for m in wire.of("transcript") if m["role"] == "agent" and m["ordinal"] == 2]
        assert "text" in parts[0] and "delta" not in parts[0]
        assert all(("delta" in m) != ("text" in m) and m.get("text") != "" and m.get("delta") != "" for m in parts)
        assert reply["text"] == parts[0]["text"] + "".join(m.get("delta", "") for m in parts[1:-1])
        assert reply["medium"] == "voice"
        await wire.send({"type": "hang_up"})
        assert await wire.closed() == 1000
    ended = await wait_for_end(server, call["callId"])
    assert ended["endReason"] == "hangup" and ended["joined"] and ended["ended"]
    messages = get(server, f"/calls/{call['callId']}/messages")["results"]
    assert [(m["role"], m["text"]) for m in messages] == [
        ("MESSAGE_ROLE_AGENT", greeting["text"]), ("MESSAGE_ROLE_USER", "Hello, how are you?"), ("MESSAGE_ROLE_AGENT", reply["text"])]
    assert [m["callStageMessageIndex"] for m in messages] == [0, 1, 2]


async def test_forced_message_defer_output_medium_ping_and_client_version(server: RunningServer) -> None:
    call = create_call(server, USER_FIRST)
    async with websockets.connect(call["joinUrl"] + "&apiVersion=1&clientVersion=python_test:1.0") as ws:
        wire = Wire(ws)
        await wire.until(lambda m: m == {"type": "state", "state": "listening"})
        await wire.send({"type": "ping", "timestamp": 12345})
        await wire.send({"type": "ping", "timestamp": 0.5})
        assert (await wire.until(lambda m: m["type"] == "pong"))["timestamp"] == 12345
        assert (await wire.until(lambda m: m["type"] == "pong"))["timestamp"] == 0.5
        await wire.send({"type": "forced_agent_message", "content": "This is a forced message."})
        assert (await wire.agent_final())["text"] == "This is a forced message."
        await wire.send({"type": "input_text_message", "text": "Remember the code 1234.", "deferResponse": True})
        await wire.send({"type": "set_output_medium", "medium": "text"})
        await wire.until(lambda m: m["type"] == "transcript" and m["role"] == "user")
        await asyncio.sleep(1.5)
        assert len([m for m in wire.of("transcript") if m["role"] == "agent" and m["final"]]) == 1  # no reply to the deferred text
        await wire.send({"type": "user_text_message", "text": "Say something."})
        final = await wire.agent_final()
        assert final["medium"] == "text"
        assert not wire.of("debug")  # debug stays off unless enabled
    ended = await wait_for_end(server, call["callId"])
    assert ended["endReason"] == "hangup" and ended["clientVersion"] == "python_test:1.0"
    texts = [m["text"] for m in get(server, f"/calls/{call['callId']}/messages")["results"]]
    assert texts[:2] == ["This is a forced message.", "Remember the code 1234."]


async def test_bad_input_never_ends_the_call(server: RunningServer) -> None:
    call = create_call(server, USER_FIRST)
    async with websockets.connect(call["joinUrl"] + "&experimentalMessages=&experimentalMessages=debug&additionalMessages=") as ws:
        wire = Wire(ws)
        await wire.until(lambda m: m == {"type": "state", "state": "listening"})
        for bad in ["not json", "[1,2]", '{"type": "no_such_type"}', '{"type": "user_text_message"}',
                    '{"type": "user_text_message", "text": 42}', json.dumps({"type": "user_text_message", "text": "x" * 70000}),
                    '{"type": "client_tool_result", "invocationId": "nope", "result": "late"}']:
            await wire.send(bad)
        await ws.send(b"")
        await ws.send(b"\x01\x02\x03")
        await wire.until(lambda m: m["type"] == "debug" and "unknown or finished invocation" in m["message"])
        assert len(wire.of("debug")) == 7
        await wire.send({"type": "ping", "timestamp": 7})
        await wire.until(lambda m: m["type"] == "pong")
        await wire.send({"type": "set_output_medium", "medium": "text"})
        await wire.send({"type": "user_text_message", "text": "Are you still there?"})
        assert (await wire.agent_final())["text"]


async def test_join_tokens_are_single_use_signed_and_expire(server: RunningServer) -> None:
    call = create_call(server, USER_FIRST)
    base, token = call["joinUrl"].split("?token=")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for url in (base, f"{base}?token={forged}", f"{base}?token=garbage"):
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(url)
    async with websockets.connect(call["joinUrl"]) as ws:
        await Wire(ws).until(lambda m: m["type"] == "call_started")
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(call["joinUrl"])  # already used
    short = create_call(server, {**USER_FIRST, "joinTimeout": "1s"})
    await asyncio.sleep(2.1)
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(short["joinUrl"])
    assert get(server, f"/calls/{short['callId']}")["endReason"] == "unjoined"


async def test_client_disconnect_ends_call_as_hangup_quickly(server: RunningServer) -> None:
    call = create_call(server, USER_FIRST)
    ws = await websockets.connect(call["joinUrl"])
    await Wire(ws).until(lambda m: m["type"] == "state")
    await ws.close()
    started = time.monotonic()
    ended = await wait_for_end(server, call["callId"], timeout=5)
    assert ended["endReason"] == "hangup" and time.monotonic() - started < 1.5


async def test_data_message_injection_and_delete_of_a_live_call(server: RunningServer) -> None:
    call = create_call(server, USER_FIRST)
    async with websockets.connect(call["joinUrl"]) as ws:
        wire = Wire(ws)
        await wire.until(lambda m: m == {"type": "state", "state": "listening"})
        r = httpx.post(f"{server.api}/calls/{call['callId']}/send_data_message", headers=server.headers(),
                       json={"type": "forced_agent_message", "content": "Injected hello."})
        assert r.status_code == 204
        assert (await wire.agent_final())["text"] == "Injected hello."
        bad = httpx.post(f"{server.api}/calls/{call['callId']}/send_data_message", headers=server.headers(), json={"type": "ping"})
        assert bad.status_code == 422
        assert get(server, "/accounts/me")["activeCalls"] >= 1
        assert httpx.delete(f"{server.api}/calls/{call['callId']}", headers=server.headers()).status_code == 204
        assert await wire.closed() == 1000
    assert httpx.get(f"{server.api}/calls/{call['callId']}", headers=server.headers()).status_code == 404


async def test_max_duration_says_the_message_and_ends_with_timeout(server: RunningServer) -> None:
    call = create_call(server, {**USER_FIRST, "maxDuration": "2s", "timeExceededMessage": "Our time is up, goodbye."})
    async with websockets.connect(call["joinUrl"]) as ws:
        wire = Wire(ws)
        assert (await wire.agent_final(timeout=10))["text"] == "Our time is up, goodbye."
        assert await wire.closed() == 1000
    assert (await wait_for_end(server, call["callId"]))["endReason"] == "timeout"
