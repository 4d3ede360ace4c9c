"""Hostile realtime input against a real server process (SmolLM2): each frame is refused and the call goes on."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import websockets

from tests.conftest import RunningServer
from tests.server.wire import create_call, get

TEXT_CALL = {"firstSpeakerSettings": {"user": {}}, "initialOutputMedium": "MESSAGE_MEDIUM_TEXT"}
APOLOGY = "Sorry, I ran into a problem. Could you say that again?"


def strict(frame: str) -> dict[str, Any]:
    def refuse(constant: str) -> None:
        raise AssertionError(f"the server wrote invalid JSON ({constant}): {frame[:200]}")

    return json.loads(frame, parse_constant=refuse)  # type: ignore[no-any-return]


class StrictWire:
    """Server frames, each parsed as strict JSON; binary frames skipped."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def until(self, predicate: Any, timeout: float = 30) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.ws.recv()
                if isinstance(frame, str):
                    message = strict(frame)
                    self.seen.append(message)
                    if predicate(message):
                        return message

    async def debug(self, words: str) -> dict[str, Any]:
        return await self.until(lambda m: m["type"] == "debug" and words in m["message"])

    async def pong(self, timestamp: float) -> None:
        await self.ws.send(json.dumps({"type": "ping", "timestamp": timestamp}))
        await self.until(lambda m: m == {"type": "pong", "timestamp": timestamp})


async def join(server: RunningServer) -> tuple[dict[str, Any], Any]:
    call = create_call(server, TEXT_CALL)
    ws = await websockets.connect(call["joinUrl"] + "&experimentalMessages=debug")
    return call, ws


async def test_a_lone_surrogate_is_refused_and_later_turns_still_work(server: RunningServer) -> None:
    call, ws = await join(server)
    async with ws:
        wire = StrictWire(ws)
        await wire.until(lambda m: m == {"type": "state", "state": "listening"})
        await ws.send('{"type":"user_text_message","text":"hello \\ud800 there"}')
        await wire.debug("text contains a lone surrogate (U+D800)")
        await ws.send('{"type":"user_text_message","text":"Hello! Who are you?","urgency":"immediate"}')
        reply = await wire.until(lambda m: m["type"] == "transcript" and m["role"] == "agent" and m["final"], timeout=180)
        assert reply["text"] and reply["text"] != APOLOGY
    messages = get(server, f"/calls/{call['callId']}/messages")["results"]
    assert [m["text"] for m in messages if m["role"] == "MESSAGE_ROLE_USER"] == ["Hello! Who are you?"]


async def test_a_deeply_nested_frame_is_refused_and_the_call_goes_on(server: RunningServer) -> None:
    call, ws = await join(server)
    async with ws:
        wire = StrictWire(ws)
        await wire.until(lambda m: m["type"] == "state")
        await ws.send("[" * 1000 + "]" * 1000)  # 2 KB, nested 1,000 deep: it used to end the call as hangup
        await wire.debug("nested more than 64 levels deep")
        await ws.send('{"type":"ping","timestamp":1,"x":' + "[" * 30_000 + "]" * 30_000 + "}")  # 60 KB
        await wire.debug("nested more than 64 levels deep")
        await wire.pong(7)
        assert get(server, f"/calls/{call['callId']}")["endReason"] is None


async def test_non_finite_numbers_are_refused_and_every_frame_is_strict_json(server: RunningServer) -> None:
    _, ws = await join(server)
    async with ws:
        wire = StrictWire(ws)
        await wire.until(lambda m: m["type"] == "state")
        for number in ("1e309", "NaN", "-Infinity"):
            await ws.send('{"type":"ping","timestamp":%s}' % number)
            await wire.debug(f"timestamp must be a finite number, not {number}")
        await wire.pong(8)
        assert not [m for m in wire.seen if m["type"] == "pong" and m["timestamp"] != 8]


async def test_a_flood_is_rate_limited_reported_and_survived(server: RunningServer) -> None:
    call, ws = await join(server)
    async with ws:
        wire = StrictWire(ws)
        await wire.until(lambda m: m["type"] == "state")
        started = time.monotonic()
        for i in range(3000):
            await ws.send('{"type":"ping","timestamp":%d}' % i)
        await wire.debug("client frames over the rate limits")
        await asyncio.sleep(1.1)
        await wire.pong(99_999.5)  # answered once the flood has passed, and reports what was dropped
        pongs = [m for m in wire.seen if m["type"] == "pong"]
        assert len(pongs) <= 100 + 50 * (time.monotonic() - started) + 1  # the burst, then 50 a second
    async with asyncio.timeout(10):
        while not (events := httpx.get(f"{server.api}/calls/{call['callId']}/events", headers=server.headers(),
                                       params={"type": "rate_limited", "minimum_severity": "warning"}).json()["results"]):
            await asyncio.sleep(0.2)
    assert events[0]["severity"] == "warning" and events[0]["extras"]["text"] > 0

