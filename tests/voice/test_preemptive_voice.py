"""Preemptive replies end to end: a real server (SmolLM2, Whisper, Piper, Silero), real speech with a pause inside.

The user asks one question, pauses (shorter than the call's turnEndpointDelay), and asks another.
During the pause the server drafts a reply to the first question; the user goes on, so that draft
must never be heard, stored, recorded or numbered.
"""

from __future__ import annotations

import asyncio
import io
import wave

import httpx
import numpy as np
import websockets

from tests.conftest import RunningServer
from tests.server.wire import create_call, get, wait_for_end
from tests.voice.voiceclient import VoiceClient, speech

RATE = 16000
PAUSE = 1.0  # long enough for Whisper and the model to draft on a loaded machine, shorter than the endpoint
ENDPOINT = "1.6s"


def _words(text: str) -> set[str]:
    return {w.strip(".,?!'").lower() for w in text.split()}


def _first_agent_and_last_user_sample(wav_bytes: bytes) -> tuple[float, float]:
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        rate = wav.getframerate()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    user = np.nonzero(np.abs(data[:, 0]) > 1000)[0]
    agent = np.nonzero(np.abs(data[:, 1]) > 1000)[0]
    return float(agent[0]) / rate, float(user[-1]) / rate


async def test_a_reply_drafted_in_a_pause_is_never_heard_nor_recorded_when_the_user_goes_on(
    server: RunningServer,
) -> None:
    body = {"systemPrompt": "You are a helpful voice assistant. Answer in one short sentence.",
            "medium": {"serverWebSocket": {"inputSampleRate": RATE, "outputSampleRate": RATE}},
            "firstSpeakerSettings": {"user": {}}, "recordingEnabled": True,
            "vadSettings": {"turnEndpointDelay": ENDPOINT}}
    call = create_call(server, body)
    question = speech("capital.wav", RATE) + b"\0\0" * int(PAUSE * RATE) + speech("weather.wav", RATE)
    async with websockets.connect(call["joinUrl"] + "&experimentalMessages=debug") as ws:
        client = VoiceClient(ws, RATE)
        runner = asyncio.create_task(client.run())
        await client.until(lambda m: m == {"type": "state", "state": "listening"})
        client.say(question)
        user_at, user = await client.until(lambda m: m["type"] == "transcript" and m["role"] == "user", timeout=90)
        assert {"capital", "weather"} <= _words(user["text"])  # one turn: the pause did not end it
        await client.until(lambda m: m["type"] == "transcript" and m["role"] == "agent" and m["final"], timeout=90)
        assert client.audio and min(t for t, _ in client.audio) > user_at  # no agent audio before the turn ended
        ordinals = sorted({m["ordinal"] for m in client.of("transcript")})
        assert ordinals == [0, 1]
        await ws.send('{"type": "hang_up"}')
        await asyncio.wait_for(runner, 10)
    await wait_for_end(server, call["callId"])
    messages = get(server, f"/calls/{call['callId']}/messages")["results"]
    assert [m["role"] for m in messages] == ["MESSAGE_ROLE_USER", "MESSAGE_ROLE_AGENT"]
    latency = [e for e in get(server, f"/calls/{call['callId']}/events")["results"] if e["type"] == "turn_latency"]
    assert latency and latency[-1]["extras"]["preemptionDiscarded"] >= 1  # a reply was drafted in the pause, then dropped
    recording = httpx.get(f"{server.api}/calls/{call['callId']}/recording", headers=server.headers(), timeout=30)
    assert recording.status_code == 200
    agent_starts, user_ends = _first_agent_and_last_user_sample(recording.content)
    assert agent_starts > user_ends  # the recording holds no agent audio from before the end of the question
