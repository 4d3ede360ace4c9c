"""The SDK against real voxcall servers (no fakes): `UltravoxSession` for text, client tools and voice, and `voxcall call`.

Servers come from tests/conftest.py: `server` (SmolLM2-135M, Whisper, Piper) where
the words do not matter, `qwen_server` (Qwen2.5-1.5B) for tool calls and answers.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer
from voxcall.audio import read_wav
from voxcall.client import BytesSink, Client, UltravoxSession, UltravoxSessionStatus, WavFileSource
from voxcall.client.terminal import WEATHER_TOOL

S = UltravoxSessionStatus
SPEECH = Path(__file__).resolve().parent.parent / "fixtures" / "speech"
TEXT_CALL = {
    "systemPrompt": "You are a helpful assistant. Answer in one short sentence.",
    "initialOutputMedium": "MESSAGE_MEDIUM_TEXT",
    "firstSpeakerSettings": {"user": {}},
}
IN_RATE, OUT_RATE = 16000, 24000
VOICE_MEDIUM = {"serverWebSocket": {"inputSampleRate": IN_RATE, "outputSampleRate": OUT_RATE}}
LIVE = (S.IDLE, S.LISTENING, S.THINKING, S.SPEAKING)


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).split()


def in_order(seen: list[S], expected: list[S]) -> bool:
    """`expected` is a subsequence of `seen`."""
    rest = iter(seen)
    return all(any(s is want for s in rest) for want in expected)


@pytest.fixture
async def session() -> AsyncIterator[UltravoxSession]:
    s = UltravoxSession()
    yield s
    await s.leave_call()


async def create_call(server: RunningServer, body: dict[str, Any]) -> dict[str, Any]:
    async with Client(server.api_key, server.api) as client:
        return await client.calls.create(body)


async def ended_call(server: RunningServer, call_id: str, timeout: float = 10) -> dict[str, Any]:
    """The call once the server has marked it ended."""
    async with Client(server.api_key, server.api) as client, asyncio.timeout(timeout):
        while not (call := await client.calls.get(call_id))["endReason"]:
            await asyncio.sleep(0.1)
        return call


async def test_text_conversation_and_leave(server: RunningServer, session: UltravoxSession) -> None:
    call = await create_call(server, TEXT_CALL)
    seen: list[S] = []
    session.on("status", lambda: seen.append(session.status))
    await session.join_call(call["joinUrl"])
    await session.wait_for_status(S.LISTENING, timeout=30)
    assert session.call_id == call["callId"]
    await session.send_text("Hello, how are you?")
    answer = await session.wait_for_transcript("agent", final=True, timeout=60)
    assert answer.text and answer.medium == "text"
    user = [t for t in session.transcripts if t.speaker == "user"]
    assert [(t.text, t.final, t.medium) for t in user] == [("Hello, how are you?", True, "text")]
    await session.leave_call()
    assert session.status is S.DISCONNECTED and seen[-2:] == [S.DISCONNECTING, S.DISCONNECTED]
    assert session.close_code == 1000
    assert (await ended_call(server, call["callId"]))["endReason"] == "hangup"
    async with Client(server.api_key, server.api) as client:
        [stage] = await client.calls.all_stages(call["callId"])
    # The embedded model counted the prompt of its one request: system prompt, user turn, chat template.
    assert stage["initialTokenCount"] == stage["latestTokenCount"]
    assert len(f"{TEXT_CALL['systemPrompt']} Hello, how are you?".split()) < stage["initialTokenCount"] < 200


async def test_client_tool_round_trip(qwen_server: RunningServer, session: UltravoxSession) -> None:
    call = await create_call(qwen_server, {**TEXT_CALL, "selectedTools": [WEATHER_TOOL]})
    invocations: list[dict[str, Any]] = []

    async def get_weather(parameters: dict[str, Any]) -> str:
        invocations.append(parameters)
        return '{"temp_c": 21, "condition": "sunny"}'

    session.register_tool_implementation("getWeather", get_weather)
    await session.join_call(call["joinUrl"])
    await session.wait_for_status(S.LISTENING, timeout=30)
    await session.send_text("What's the weather in Paris?")
    answer = await session.wait_for_transcript("agent", final=True, timeout=90)
    assert [p["city"].lower() for p in invocations] == ["paris"]
    assert "21" in answer.text or "sunny" in answer.text.lower(), answer.text
    await session.leave_call()
    async with Client(qwen_server.api_key, qwen_server.api) as client:
        messages = await client.calls.all_messages(call["callId"])
    result = next(m for m in messages if m["role"] == "MESSAGE_ROLE_TOOL_RESULT")
    assert "sunny" in result["text"]


async def test_voice_through_the_sdk(qwen_server: RunningServer, session: UltravoxSession) -> None:
    call = await create_call(qwen_server, {"systemPrompt": TEXT_CALL["systemPrompt"], "medium": VOICE_MEDIUM,
                                           "firstSpeakerSettings": {"user": {}}})
    source, sink = WavFileSource(SPEECH / "capital.wav"), BytesSink()
    seen: list[S] = []
    session.on("status", lambda: seen.append(session.status))
    await session.join_call(call["joinUrl"], source, sink, input_sample_rate=IN_RATE, output_sample_rate=OUT_RATE)
    user = await session.wait_for_transcript("user", final=True, timeout=60)
    assert user.medium == "voice" and words(user.text) == words("What is the capital of France?")
    answer = await session.wait_for_transcript("agent", final=True, after=user.ordinal, timeout=90)
    await session.wait_for_status(S.LISTENING, timeout=30)
    assert answer.medium == "voice" and "paris" in answer.text.lower()
    assert source.sample_rate == IN_RATE and sink.sample_rate == OUT_RATE
    assert sink.duration > 0.1 * len(answer.text.split())  # the answer was spoken into the sink
    assert in_order(seen, [S.LISTENING, S.THINKING, S.SPEAKING, S.LISTENING]), seen
    await session.leave_call()
    assert (await ended_call(qwen_server, call["callId"]))["endReason"] == "hangup"


def test_voxcall_call_with_files(qwen_server: RunningServer, tmp_path: Path) -> None:
    answer = tmp_path / "answer.wav"
    env = {**os.environ, "VOXCALL_API_KEY": qwen_server.api_key, "VOXCALL_URL": qwen_server.url}
    done = subprocess.run(
        [sys.executable, "-m", "voxcall", "call", "--input", str(SPEECH / "capital.wav"), "--output", str(answer)],
        env=env, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    print(out)  # shown by pytest on failure (or with -rA)
    you = re.search(r"^you: (.*)$", out, re.M)
    assert you and words(you.group(1)) == words("What is the capital of France?"), out
    agent = re.search(r"^agent: (.*) \[final\]$", out, re.M)
    assert agent and "paris" in agent.group(1).lower(), out
    assert "[thinking]" in out and "[speaking]" in out and "[call ended: 1000]" in out
    pcm, rate = read_wav(str(answer))
    assert rate == OUT_RATE and len(pcm) / 2 / rate > 1.0, out
