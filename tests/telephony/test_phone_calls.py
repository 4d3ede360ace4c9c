"""Phone calls end to end: a simulated carrier streams synthesized speech in real time, in its own encoding,
to a real server process with the embedded models (Silero, Whisper, Piper; SmolLM2, since the content of
the replies does not matter here). One short scenario per carrier:

the agent greets (a fixed, long text, so no model has to answer first), in the carrier's format, and the
carrier acknowledges the marks as it plays → the caller barges in ("Stop, wait a moment.") → the carrier's
clear arrives within 300 ms of the speech onset, and no audio of the greeting comes after it → the caller's
words are in /messages, and the greeting is kept only up to what the marks say was played → the caller
presses keys, which become a user message → the caller hangs up → the call ends as `hangup` with the
carrier's ids in its metadata. (The model's answer is not waited for: its speed is not what is tested here.)
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import RunningServer
from tests.server.wire import create_call, get, wait_for_end
from tests.telephony.dialects import Dialect, Exotel, Plivo, Telnyx, Twilio, rms
from tests.telephony.simulator import CarrierSimulator
from tests.voice.voiceclient import first_loud_offset, last_loud_offset, speech

GREETING = ("Hello, and thank you for calling the city library. Our opening hours have changed this month, so please "
            "listen carefully to all of the following options before you make your choice today.")


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).split()


async def poll_messages(server: RunningServer, call_id: str, predicate: Any, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(headers=server.headers(), timeout=10) as client:
        while True:
            found = (await client.get(f"{server.api}/calls/{call_id}/messages")).json()["results"]
            if predicate(found) or time.monotonic() > deadline:
                return found  # type: ignore[no-any-return]
            await asyncio.sleep(0.2)


@pytest.mark.parametrize("dialect", [Twilio(), Telnyx("L16", 16000), Plivo("audio/x-l16", 8000), Exotel(16000)],
                         ids=lambda d: f"{d.name}-{d.encoding}-{d.rate}")
async def test_a_phone_call_over_the_carrier(server: RunningServer, dialect: Dialect) -> None:
    call = create_call(server, {"systemPrompt": "You are a library assistant. Answer in one short sentence.",
                                "medium": {dialect.name: {}}, "firstSpeakerSettings": {"agent": {"text": GREETING}}})
    assert "?" not in call["joinUrl"]
    async with websockets.connect(call["joinUrl"] + dialect.query) as ws:
        sim = CarrierSimulator(ws, dialect)
        await sim.open()
        runner = asyncio.create_task(sim.run())
        await sim.until(lambda: sim.audio_seconds() > 1.5, timeout=60)
        assert rms(b"".join(pcm for _, pcm in sim.audio)) > 300, "the greeting arrives as audible speech"
        assert sim.acked, "the carrier acknowledges the server's marks as it plays"

        interruption = speech("interrupt.wav", dialect.rate)
        sent = await sim.say(interruption)
        onset, speech_end = sent + first_loud_offset(interruption, dialect.rate), sent + last_loud_offset(interruption, dialect.rate)
        await sim.until(lambda: sim.clears, timeout=10)
        clear_at = sim.clears[0]
        assert clear_at - onset < 0.3, f"the clear came {1000 * (clear_at - onset):.0f} ms after speech onset"
        heard_before_clear = sim.played

        found = await poll_messages(server, call["callId"], lambda ms: any(m["role"] == "MESSAGE_ROLE_USER" for m in ms))
        user = next(m for m in found if m["role"] == "MESSAGE_ROLE_USER")
        assert user["medium"] == "MESSAGE_MEDIUM_VOICE" and {"stop", "wait"} & set(words(user["text"]))
        stale = [t for t, _ in sim.audio if clear_at + 0.05 < t < speech_end]
        assert not stale, f"{len(stale)} media frames of the interrupted greeting came after the clear"

        await sim.press("42")
        found = await poll_messages(server, call["callId"], lambda ms: any(m.get("text") == "42" for m in ms), 20)
        await sim.hang_up()
        await asyncio.wait_for(runner, 10)

    ended = await wait_for_end(server, call["callId"])
    assert ended["endReason"] == "hangup"
    assert {k: v for k, v in ended["metadata"].items() if k.startswith("ultravox.")} == dialect.metadata
    found = get(server, f"/calls/{call['callId']}/messages")["results"]
    assert ("MESSAGE_ROLE_USER", "42", "MESSAGE_MEDIUM_TEXT") in [(m["role"], m.get("text"), m["medium"]) for m in found]
    greeting = next(m["text"] for m in found if m["role"] == "MESSAGE_ROLE_AGENT")
    assert greeting and GREETING.startswith(greeting) and len(greeting) < len(GREETING)
    # what was kept matches what the carrier played before the clear: ~2.5 words a second, and no more
    assert len(greeting.split()) <= 3.5 * heard_before_clear + 2
