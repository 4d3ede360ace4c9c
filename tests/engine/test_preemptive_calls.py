"""Preemptive replies inside a call (fake speech back ends, real time): nothing held leaks, a predicted turn is fast.

The user pauses mid-sentence: the call drafts a reply to the words so far. When the user goes on,
that draft must never be heard (no agent audio, no agent transcript), never be recorded (history,
call messages, the recording), take no ordinal, and run none of its tool calls.
"""

from __future__ import annotations

import asyncio
import io
import time
import wave
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx
import numpy as np
import pytest

from tests.toolserver import ToolServer
from voxcall.engine.call import Call
from voxcall.engine.http_tool import HttpToolExecutor
from voxcall.engine.spec import (
    CallSpec,
    EventRecord,
    Greeting,
    HttpSpec,
    Speech,
    ToolDef,
    VoiceSpec,
)
from voxcall.engine.turns import VadConfig
from voxcall.outbound import OutboundPolicy, safe_client
from voxcall.protocol.connection import AudioIn
from voxcall.protocol.realtime import Debug, Transcript, UserTextMessage
from voxcall.protocol.rest import CallMessage
from voxcall.providers.base import ChatMessage, LLMEvent, TextDelta, ToolCall, ToolSpec
from voxcall.providers.fake import EnergyVAD, ScriptedLLM, ScriptedSTT, ToneTTS

RATE = 16000
CHUNK = 320  # 20 ms
LOUD = (np.sin(np.arange(CHUNK) * 2 * np.pi * 200 / RATE) * 12000).astype("<i2").tobytes()
QUIET = b"\x00\x00" * CHUNK
HELD = "Held words that nobody should hear."
# Speech, a 0.24 s pause (Paused at 64 ms, but no end of turn), more speech, then the end of the turn.
RESUMING = [(QUIET, 0.2), (LOUD, 0.5), (QUIET, 0.24), (LOUD, 0.5), (QUIET, 0.9)]


def by_length(pcm: bytes) -> str:
    """The early transcript of the first half, the full one of the whole turn."""
    return "what is the" if len(pcm) < RATE * 2 * 1.0 else "what is the weather"


class Harness:
    def __init__(self, llm: Any, *, preemptive: bool = True, tts: ToneTTS | None = None, tools: Sequence[ToolDef] = (),
                 http: httpx.AsyncClient | None = None, stt: ScriptedSTT | None = None, endpoint: float = 0.384) -> None:
        self.sent: list[tuple[float, Any]] = []
        self.records: list[Any] = []
        self.saved: list[bytes] = []
        self.tts = tts or ToneTTS(RATE)
        self.stt = stt or ScriptedSTT(by_length, delay=0.01)
        voice = VoiceSpec(input_rate=RATE, output_rate=RATE, recording=True, preemptive=preemptive,
                          vad=VadConfig(turn_endpoint_delay=endpoint))
        executors = {"http": HttpToolExecutor(http)} if http is not None else None
        self.call = Call(CallSpec(call_id="p", greeting=Greeting(agent_first=False), voice=voice, tools=tuple(tools)),
                         llm, send=self._send, record=self._record, speech=Speech(EnergyVAD, self.stt, self.tts),
                         save_recording=self._save, tool_executors=executors)
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.create_task(self.call.run())

    async def _send(self, message: Any) -> None:
        self.sent.append((self.loop.time(), message))

    async def _record(self, item: Any) -> None:
        self.records.append(item)

    async def _save(self, wav: bytes) -> None:
        self.saved.append(wav)

    async def stream(self, pattern: list[tuple[bytes, float]]) -> None:
        for chunk, seconds in pattern:
            for _ in range(round(seconds / 0.02)):
                self.call.receive(AudioIn(chunk))
                await asyncio.sleep(0.02)

    def transcripts(self, role: str | None = None) -> list[Transcript]:
        return [m for _, m in self.sent if isinstance(m, Transcript) and (role is None or m.role == role)]

    def agent_finals(self) -> list[Transcript]:
        return [t for t in self.transcripts("agent") if t.final]

    def audio_bytes(self) -> int:
        return sum(len(m) for _, m in self.sent if isinstance(m, bytes))

    def messages(self) -> list[CallMessage]:
        return [r for r in self.records if isinstance(r, CallMessage)]

    def latency_events(self) -> list[EventRecord]:
        return [r for r in self.records if isinstance(r, EventRecord) and r.type == "turn_latency"]

    async def until(self, predicate: Any, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)

    async def finish(self) -> str:
        self.call.end("hangup")
        async with asyncio.timeout(5):
            return await self.task


def asked(llm: ScriptedLLM, text: str) -> list[int]:
    """Indexes of the model requests whose last message is the user's `text`."""
    return [i for i, c in enumerate(llm.calls) if c.messages[-1].role == "user" and c.messages[-1].content == text]


def last_user(messages: Sequence[ChatMessage]) -> str:
    return messages[-1].content if messages[-1].role == "user" else ""


def agent_track_seconds(wav_bytes: bytes) -> float:
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    return float(np.count_nonzero(np.abs(data[:, 1]) > 100)) / wav.getframerate()


async def test_a_held_reply_is_never_heard_recorded_or_numbered_when_the_user_goes_on() -> None:
    llm = ScriptedLLM(lambda messages, tools: [TextDelta(HELD if last_user(messages) == "what is the" else "Sunny.")])
    h = Harness(llm)
    await h.stream(RESUMING)
    await h.until(lambda: bool(h.agent_finals()))
    await asyncio.sleep(0.3)
    assert asked(llm, "what is the"), "a reply was drafted during the pause"
    assert "Held" in " ".join(h.tts.spoken)  # ... and its first clause synthesised, but held back
    assert [t.text for t in h.agent_finals()] == ["Sunny."]
    assert all("Held" not in (t.text or "") + (t.delta or "") for t in h.transcripts())
    assert abs(h.audio_bytes() - int(0.1 * RATE) * 2) <= CHUNK * 2  # the 0.1 s of "Sunny." only
    assert [t.text for t in h.transcripts("user")] == ["what is the weather"]
    ordinals = sorted({t.ordinal for t in h.transcripts()})
    assert ordinals == list(range(len(ordinals))) == [0, 1]
    assert [(m.role, m.text) for m in h.messages()] == [("MESSAGE_ROLE_USER", "what is the weather"),
                                                        ("MESSAGE_ROLE_AGENT", "Sunny.")]
    await h.finish()
    assert 0.05 < agent_track_seconds(h.saved[0]) < 0.15  # the recording holds "Sunny." and nothing held
    assert h.latency_events()[-1].extras["preemption"] == "used"  # type: ignore[index]  # drafted at the last pause


@pytest.fixture
def backend() -> Iterator[ToolServer]:
    with ToolServer() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with safe_client(OutboundPolicy(["127.0.0.1/32"])) as client:
        yield client


def lookup(backend: ToolServer) -> ToolDef:
    backend.routes["/lookup"] = lambda seen: (200, {}, b"42")
    return ToolDef(ToolSpec("lookup", "Look up.", {"type": "object", "properties": {}}), kind="http", timeout=2.0,
                   http=HttpSpec(f"{backend.url}/lookup", "POST"), precomputable=True)


async def test_a_tool_call_chosen_during_the_pause_is_not_run_when_the_user_goes_on(
    backend: ToolServer, http: httpx.AsyncClient
) -> None:
    def script(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> list[LLMEvent]:
        return [ToolCall("t1", "lookup", {})] if last_user(messages) == "what is the" else [TextDelta("Sunny.")]

    llm = ScriptedLLM(script)
    h = Harness(llm, tools=[lookup(backend)], http=http)
    await h.stream(RESUMING)
    await h.until(lambda: bool(h.agent_finals()))
    await asyncio.sleep(0.3)
    assert asked(llm, "what is the") and llm.calls[asked(llm, "what is the")[0]].tools  # drafted, with the tool offered
    assert backend.seen == []  # a precomputable tool would start at once in a live reply: not here
    assert all(m.role not in ("MESSAGE_ROLE_TOOL_CALL", "MESSAGE_ROLE_TOOL_RESULT") for m in h.messages())
    assert not any(isinstance(m, Debug) and "Tool call" in m.message for _, m in h.sent)
    assert [t.text for t in h.agent_finals()] == ["Sunny."]
    await h.finish()


async def test_a_tool_call_of_a_predicted_turn_runs_once_after_the_turn_ends(
    backend: ToolServer, http: httpx.AsyncClient
) -> None:
    def script(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> list[LLMEvent]:
        return [TextDelta("It is 42.")] if messages[-1].role == "tool" else [ToolCall("t1", "lookup", {})]

    llm = ScriptedLLM(script)
    h = Harness(llm, tools=[lookup(backend)], http=http, stt=ScriptedSTT(lambda pcm: "look it up", delay=0.01))
    arrived: list[float] = []
    backend.routes["/lookup"] = lambda seen: (arrived.append(time.monotonic()), (200, {}, b"42"))[1]
    await h.stream([(QUIET, 0.2), (LOUD, 0.5), (QUIET, 0.9)])
    await h.until(lambda: bool(h.agent_finals()))
    user_at = next(t for t, m in h.sent if isinstance(m, Transcript) and m.role == "user")  # loop time = monotonic
    assert len(arrived) == 1 and arrived[0] >= user_at - 0.005  # run once, and only after the turn ended
    assert [t.text for t in h.agent_finals()] == ["It is 42."]
    assert [m.role for m in h.messages()] == ["MESSAGE_ROLE_USER", "MESSAGE_ROLE_TOOL_CALL",
                                              "MESSAGE_ROLE_TOOL_RESULT", "MESSAGE_ROLE_AGENT"]
    assert len(asked(llm, "look it up")) == 1  # the drafted request was the one used
    await h.finish()


class SlowTTS(ToneTTS):
    async def synthesize(self, text: str, *, voice: str | None = None) -> AsyncIterator[bytes]:
        await asyncio.sleep(0.15)
        async for chunk in super().synthesize(text, voice=voice):
            yield chunk


async def _gap_to_first_audio(preemptive: bool) -> tuple[float, str]:
    """Seconds from the user's final transcript (the end of the turn) to the first agent audio."""
    llm = ScriptedLLM(lambda messages, tools: [TextDelta("One two three four five six.")], delay=0.04)
    h = Harness(llm, preemptive=preemptive, tts=SlowTTS(RATE), endpoint=0.6,
                stt=ScriptedSTT(lambda pcm: "count to six", delay=0.01))
    await h.stream([(QUIET, 0.2), (LOUD, 0.5), (QUIET, 1.2)])
    await h.until(lambda: bool(h.agent_finals()))
    user_at = next(t for t, m in h.sent if isinstance(m, Transcript) and m.role == "user")
    audio_at = next(t for t, m in h.sent if isinstance(m, bytes))
    await h.finish()
    return audio_at - user_at, h.latency_events()[-1].extras["preemption"]  # type: ignore[index]


async def test_a_predicted_turn_is_answered_at_once() -> None:
    off, outcome_off = await _gap_to_first_audio(False)
    on, outcome_on = await _gap_to_first_audio(True)
    assert (outcome_off, outcome_on) == ("none", "used")
    assert off > 0.25  # four words of the model, then the voice
    assert on < 0.08 and on < off / 4


async def test_ending_the_call_during_a_pause_closes_the_draft() -> None:
    class Endless:
        name = "endless"

        def __init__(self) -> None:
            self.closed = False
            self.started = False

        async def stream(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = (), *,
                         temperature: float = 0.0, max_tokens: int = 256) -> AsyncIterator[LLMEvent]:
            self.started = True
            try:
                while True:
                    await asyncio.sleep(0.01)
                    yield TextDelta("la ")
            finally:
                self.closed = True

    llm = Endless()
    h = Harness(llm, endpoint=3.0)
    await h.stream([(QUIET, 0.2), (LOUD, 0.5), (QUIET, 0.3)])
    await h.until(lambda: llm.started)
    assert await h.finish() == "hangup"
    assert llm.closed and h.audio_bytes() == 0 and not h.transcripts("agent")


async def test_a_draft_is_not_used_when_the_history_changed_before_the_turn_ended() -> None:
    def script(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> list[LLMEvent]:
        return [TextDelta("Sunny in Paris." if any("in Paris" in m.content for m in messages) else HELD)]

    llm = ScriptedLLM(script)
    h = Harness(llm, stt=ScriptedSTT(lambda pcm: "what is the weather", delay=0.01), endpoint=0.6)
    await h.stream([(QUIET, 0.2), (LOUD, 0.5), (QUIET, 0.3)])
    assert asked(llm, "what is the weather"), "a reply was drafted during the pause"
    h.call.receive(UserTextMessage(text="I mean in Paris", defer_response=True))  # the history changes meanwhile
    await h.stream([(QUIET, 0.6)])
    await h.until(lambda: bool(h.agent_finals()))
    assert [t.text for t in h.agent_finals()] == ["Sunny in Paris."]
    assert all("Held" not in (t.text or "") + (t.delta or "") for t in h.transcripts())
    assert abs(h.audio_bytes() - int(0.3 * RATE) * 2) <= CHUNK * 2  # three words of 0.1 s: nothing held
    assert sorted({t.ordinal for t in h.transcripts()}) == [0, 1, 2]
    await h.finish()
    assert h.latency_events()[-1].extras["preemption"] == "discarded"  # type: ignore[index]


async def test_the_drafts_model_work_stops_as_soon_as_the_user_goes_on() -> None:
    class Slow:
        name = "slow"

        def __init__(self) -> None:
            self.closed_at: list[float] = []

        async def stream(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = (), *,
                         temperature: float = 0.0, max_tokens: int = 256) -> AsyncIterator[LLMEvent]:
            try:
                for i in range(500):
                    await asyncio.sleep(0.01)
                    yield TextDelta(f"w{i} ")
            finally:
                self.closed_at.append(asyncio.get_running_loop().time())

    llm = Slow()
    h = Harness(llm, endpoint=3.0)
    await h.stream([(QUIET, 0.2), (LOUD, 0.5), (QUIET, 0.3)])
    assert not llm.closed_at
    resumed = h.loop.time()
    await h.stream([(LOUD, 0.3)])
    assert len(llm.closed_at) == 1 and llm.closed_at[0] - resumed < 0.15  # cancelled at the resume, not at the turn end
    await h.finish()
    assert h.audio_bytes() == 0 and not h.transcripts("agent")
