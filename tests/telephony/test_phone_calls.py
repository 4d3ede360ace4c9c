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
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
import websockets
from twilio.request_validator import RequestValidator

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


async def test_a_twilio_number_pointed_at_an_agent_streams_the_call_to_the_twiml_url(server: RunningServer) -> None:
    """The README's incoming path as Twilio walks it: signed voice webhook -> TwiML -> media stream on its URL."""
    twilio = {"accountSid": "AC00000000000000000000000000000042", "authToken": "incoming-test-auth-token"}
    async with httpx.AsyncClient(base_url=server.api, headers=server.headers(), timeout=30) as api:
        agent = (await api.post("/agents", json={"name": "Library desk", "callTemplate": {
            "systemPrompt": "You are a library assistant for {{user.phone_number}}.",
            "firstSpeakerSettings": {"agent": {"text": GREETING}}}})).json()
        config = {**twilio, "callCreationAllowedAgentIds": [agent["agentId"]],
                  "requestContextMapping": {"From": "user.phone_number"}}
        made = await api.post("/telephony_configs/twilio", json=config)
        if made.status_code == 409:  # another test of this server stored one: replace it
            made = await api.patch("/telephony_configs/twilio", json=config)
        assert made.status_code in (200, 201), made.text

        url = f"{server.api}/agents/{agent['agentId']}/telephony_xml"
        dialect = Twilio()
        fields = {"CallSid": dialect.metadata["ultravox.twilio.call_sid"], "AccountSid": twilio["accountSid"],
                  "From": "+15551234567", "To": "+15557654321", "Direction": "inbound"}
        signature = RequestValidator(twilio["authToken"]).compute_signature(url, fields)
        answered = await api.post(url, data=fields, headers={"X-Twilio-Signature": signature})
        assert answered.status_code == 200 and answered.headers["content-type"].startswith("text/xml"), answered.text
        stream = ET.fromstring(answered.text.split("?>", 1)[-1]).find("Connect/Stream")
        assert stream is not None and "?" not in stream.attrib["url"]

    async with websockets.connect(stream.attrib["url"]) as ws:
        sim = CarrierSimulator(ws, dialect)
        await sim.open()
        runner = asyncio.create_task(sim.run())
        await sim.until(lambda: sim.audio_seconds() > 1.0, timeout=60)
        assert rms(b"".join(pcm for _, pcm in sim.audio)) > 300, "the agent's greeting arrives as μ-law speech"
        call_id = stream.attrib["url"].split("/calls/", 1)[1].split("/", 1)[0]
        await sim.press("7")
        found = await poll_messages(server, call_id, lambda ms: any(m.get("text") == "7" for m in ms), 20)
        assert any(m.get("text") == "7" and m["role"] == "MESSAGE_ROLE_USER" for m in found)
        await sim.hang_up()
        await asyncio.wait_for(runner, 10)

    ended = await wait_for_end(server, call_id)
    assert ended["endReason"] == "hangup" and ended["systemPrompt"].endswith("for +15551234567.")
    assert ended["metadata"]["ultravox.twilio.call_sid"] == fields["CallSid"]
