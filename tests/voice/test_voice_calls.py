"""Voice calls end to end: real synthesized speech streamed in real time to a real server with the embedded models."""

from __future__ import annotations

import asyncio
import io
import re
import wave
from typing import Any

import httpx
import numpy as np
import websockets

from tests.conftest import RunningServer
from tests.server.wire import create_call, get, wait_for_end
from tests.voice.voiceclient import VoiceClient, first_loud_offset, last_loud_offset, speech
from voxcall.audio import read_wav

IN_RATE, OUT_RATE = 16000, 24000
MEDIUM = {"serverWebSocket": {"inputSampleRate": IN_RATE, "outputSampleRate": OUT_RATE}}
PROMPT = "You are a helpful voice assistant. Answer in one or two short sentences."


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).split()


async def test_spoken_question_gets_a_spoken_answer(qwen_server: RunningServer) -> None:
    call = create_call(qwen_server, {"systemPrompt": PROMPT, "medium": MEDIUM, "firstSpeakerSettings": {"user": {}},
                                     "recordingEnabled": True}, )
    async with websockets.connect(call["joinUrl"] + "&experimentalMessages=debug") as ws:
        client = VoiceClient(ws, IN_RATE)
        runner = asyncio.create_task(client.run())
        await client.until(lambda m: m == {"type": "state", "state": "listening"})
        client.say(speech("capital.wav", IN_RATE))
        _, user = await client.until(lambda m: m["type"] == "transcript" and m["role"] == "user")
        assert user["medium"] == "voice" and user["final"]
        assert words(user["text"]) == words("What is the capital of France?")
        _, final = await client.until(lambda m: m["type"] == "transcript" and m["role"] == "agent" and m["final"])
        assert final["medium"] == "voice" and "paris" in final["text"].lower()
        received = sum(n for _, n in client.audio)
        # the answer's audio at 24 kHz s16le: at least 0.1 s per word of the transcript
        assert received / 2 / OUT_RATE > 0.1 * len(final["text"].split())
        assert any(m["message"].startswith("Turn latency") for m in client.of("debug"))
        await ws.send('{"type": "hang_up"}')
        await asyncio.wait_for(runner, 10)
    ended = await wait_for_end(qwen_server, call["callId"])
    assert ended["endReason"] == "hangup"
    messages = get(qwen_server, f"/calls/{call['callId']}/messages")["results"]
    assert [(m["role"], m["medium"]) for m in messages] == [("MESSAGE_ROLE_USER", "MESSAGE_MEDIUM_VOICE"), ("MESSAGE_ROLE_AGENT", "MESSAGE_MEDIUM_VOICE")]
    events = get(qwen_server, f"/calls/{call['callId']}/events")["results"]
    assert any(e["type"] == "turn_latency" for e in events)
    recording = httpx.get(f"{qwen_server.api}/calls/{call['callId']}/recording", headers=qwen_server.headers(), timeout=30)
    assert recording.status_code == 200 and recording.headers["content-type"] == "audio/wav" and len(recording.content) > 100_000
    said = speech("capital.wav", IN_RATE)
    _check_message_audio(qwen_server, call["callId"], messages, last_loud_offset(said, IN_RATE) - first_loud_offset(said, IN_RATE))


def _seconds(duration: str) -> float:
    return float(duration.removesuffix("s"))


def _check_message_audio(server: RunningServer, call_id: str, messages: list[dict[str, Any]], said: float) -> None:
    """Each spoken message has its timespan, and its audio is that part of its speaker's channel of the recording."""
    user = messages[0]
    spans = [(_seconds(m["timespan"]["start"]), _seconds(m["timespan"]["end"])) for m in messages]
    assert all(m["wallClockTimespan"] == m["timespan"] for m in messages)
    (user_start, user_end), (agent_start, agent_end) = spans
    assert 0 <= user_start < user_end <= agent_start < agent_end  # the user spoke as soon as the call listened
    assert said <= user_end - user_start <= said + 1.0  # the words, the lead-in and the silence that ended the turn
    for m, (start, end) in zip(messages, spans, strict=True):
        url = f"{server.api}/calls/{call_id}/stages/{m['callStageId']}/messages/{m['callStageMessageIndex']}/audio"
        r = httpx.get(url, headers=server.headers(), timeout=30)
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav", r.text
        pcm, rate = read_wav(r.content)
        with wave.open(io.BytesIO(r.content)) as wav:
            assert wav.getnchannels() == 1
        assert abs(len(pcm) / 2 / rate - (end - start)) < 0.01
        assert np.abs(np.frombuffer(pcm, dtype="<i2")).max() > 1000, f"no speech in the {m['role']} message's audio"
    missing = f"{server.api}/calls/{call_id}/stages/{user['callStageId']}/messages/99/audio"
    r = httpx.get(missing, headers=server.headers(), timeout=30)
    assert r.status_code == 404 and "no message 99" in r.json()["detail"]


async def test_barge_in_clears_playback_and_truncates_the_agent(qwen_server: RunningServer) -> None:
    body = {"systemPrompt": "You are a storyteller. Always answer with a long story of at least eight sentences.",
            "medium": MEDIUM, "firstSpeakerSettings": {"user": {}}}
    call = create_call(qwen_server, body)
    async with websockets.connect(call["joinUrl"]) as ws:
        client = VoiceClient(ws, IN_RATE)
        runner = asyncio.create_task(client.run())
        await client.until(lambda m: m == {"type": "state", "state": "listening"})
        client.say(speech("joke.wav", IN_RATE))
        await client.until(lambda m: m == {"type": "state", "state": "speaking"})
        await asyncio.sleep(1.5)  # let the story play for a while
        interruption = speech("interrupt.wav", IN_RATE)
        onset = await client.say(interruption) + first_loud_offset(interruption, IN_RATE)
        clear_at, _ = await client.until(lambda m: m["type"] == "playback_clear_buffer", timeout=10)
        assert clear_at - onset < 0.3, f"playback_clear_buffer came {1000 * (clear_at - onset):.0f} ms after speech onset"
        _, cut = await client.until(lambda m: m["type"] == "transcript" and m["role"] == "agent" and m["final"])
        story = [m for _, m in client.messages if m["type"] == "transcript" and m.get("ordinal") == cut["ordinal"]]
        sent_text = (story[0].get("text") or "") + "".join(m.get("delta") or "" for m in story[1:-1])
        assert cut["text"] and sent_text.strip().startswith(cut["text"])
        # after the clear, no audio until the agent starts a new utterance
        _, user = await client.until(lambda m: m["type"] == "transcript" and m["role"] == "user" and m["ordinal"] > cut["ordinal"])
        audio_after_clear = [t for t, _ in client.audio if clear_at + 0.05 < t]
        new_turn_at = next((t for t, m in client.messages if t > clear_at and m == {"type": "state", "state": "speaking"}), None)
        assert all(new_turn_at is not None and t >= new_turn_at for t in audio_after_clear)
        assert "stop" in words(user["text"]) or "wait" in words(user["text"])
        await ws.close()
        await asyncio.wait_for(runner, 10)
    await asyncio.sleep(0.5)
    messages = get(qwen_server, f"/calls/{call['callId']}/messages")["results"]
    agent = [m["text"] for m in messages if m["role"] == "MESSAGE_ROLE_AGENT"]
    assert agent[0] == cut["text"]  # the history holds only what was heard
