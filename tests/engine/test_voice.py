"""Engine voice path with fake speech back ends (energy VAD, scripted STT, tone TTS) in real time."""

from __future__ import annotations

import asyncio
import io
import wave
from typing import Any

import numpy as np

from voxcall.engine.call import Call
from voxcall.engine.spec import CallSpec, EventRecord, Greeting, InactivityMessage, Speech, VoiceSpec
from voxcall.protocol.connection import AudioIn
from voxcall.protocol.realtime import Debug, ForcedAgentMessage, PlaybackClearBuffer, SetOutputMedium, State, Transcript
from voxcall.providers.base import TextDelta
from voxcall.providers.fake import EnergyVAD, ScriptedLLM, ScriptedSTT, ToneTTS

RATE = 16000
CHUNK = 320  # 20 ms
LOUD = (np.sin(np.arange(CHUNK) * 2 * np.pi * 200 / RATE) * 12000).astype("<i2").tobytes()
QUIET = b"\x00\x00" * CHUNK


class VoiceHarness:
    def __init__(self, llm: ScriptedLLM, stt: ScriptedSTT, *, tts: ToneTTS | None = None, **spec: Any) -> None:
        self.sent: list[tuple[float, Any]] = []
        self.records: list[Any] = []
        self.saved: list[bytes] = []
        self.tts = tts or ToneTTS(RATE)
        voice = VoiceSpec(input_rate=RATE, output_rate=RATE, client_buffer=0.06, recording=spec.pop("recording", False))
        self.call = Call(CallSpec(call_id="v", greeting=Greeting(agent_first=False), voice=voice, **spec), llm,
                         send=self._send, record=self._record, speech=Speech(EnergyVAD, stt, self.tts),
                         save_recording=self._save)
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.create_task(self.call.run())

    async def _send(self, message: Any) -> None:
        self.sent.append((self.loop.time(), message))

    async def _record(self, item: Any) -> None:
        self.records.append(item)

    async def _save(self, wav: bytes) -> None:
        self.saved.append(wav)

    async def stream(self, pattern: list[tuple[bytes, float]]) -> None:
        """Send audio in real time: (chunk, seconds) pairs."""
        for chunk, seconds in pattern:
            for _ in range(int(seconds / 0.02)):
                self.call.receive(AudioIn(chunk))
                await asyncio.sleep(0.02)

    def of(self, kind: type) -> list[Any]:
        return [m for _, m in self.sent if isinstance(m, kind)]

    def audio_bytes(self) -> int:
        return sum(len(m) for _, m in self.sent if isinstance(m, bytes))

    async def until(self, predicate: Any, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)

    async def finish(self) -> str:
        self.call.end("hangup")
        async with asyncio.timeout(5):
            return await self.task


async def test_spoken_turn_gets_a_spoken_reply_with_synced_transcript_and_latency_report() -> None:
    stt = ScriptedSTT(["what is the capital of france"], delay=0.05)
    h = VoiceHarness(ScriptedLLM([[TextDelta("Paris, of course. It is lovely.")]]), stt)
    await h.stream([(QUIET, 0.2), (LOUD, 0.6), (QUIET, 0.6)])
    await h.until(lambda: any(t.final and t.role == "agent" for t in h.of(Transcript)))
    user = [t for t in h.of(Transcript) if t.role == "user"]
    assert [(u.text, u.medium, u.final) for u in user] == [("what is the capital of france", "voice", True)]
    agent = [t for t in h.of(Transcript) if t.role == "agent"]
    assert agent[-1].text == "Paris, of course. It is lovely." and agent[-1].medium == "voice"
    assert agent[0].text and all(t.delta for t in agent[1:-1])
    # 6 words at 0.1 s each = 0.6 s of audio at 16 kHz
    assert abs(h.audio_bytes() - int(0.6 * RATE) * 2) <= 4 * CHUNK * 2
    states = [s.state for s in h.of(State)]
    assert states[-3:] == ["thinking", "speaking", "listening"]
    assert len(stt.calls) == 1  # the early transcription (on pause) was reused
    assert any(d.message.startswith("Turn latency") for d in h.of(Debug))
    assert any(isinstance(r, EventRecord) and r.type == "turn_latency" for r in h.records)
    # audio is paced: ~0.6 s of audio takes ~0.6 s to send, never more than the lead ahead
    times = [t for t, m in h.sent if isinstance(m, bytes)]
    assert times[-1] - times[0] > 0.45
    await h.finish()


async def test_barge_in_clears_playback_and_keeps_only_what_was_heard() -> None:
    long = " ".join(f"word{i}" for i in range(40)) + "."
    llm = ScriptedLLM([[TextDelta(long)], [TextDelta("Okay.")]])
    h = VoiceHarness(llm, ScriptedSTT(["tell me a story", "stop"]), recording=True)
    await h.stream([(LOUD, 0.4), (QUIET, 0.5)])
    await h.until(lambda: h.audio_bytes() > RATE * 2 * 0.8)  # 0.8 s of the reply has gone out
    onset = h.loop.time()
    await h.stream([(LOUD, 0.4), (QUIET, 0.6)])
    await h.until(lambda: sum(1 for t in h.of(Transcript) if t.final and t.role == "agent") == 2)
    clear_at = next(t for t, m in h.sent if isinstance(m, PlaybackClearBuffer))
    assert clear_at - onset < 0.3
    first_final = [t for t in h.of(Transcript) if t.final and t.role == "agent"][0]
    heard_words = first_final.text.split()
    assert 5 <= len(heard_words) < 20 and long.startswith(first_final.text)
    after_clear = [m for t, m in h.sent if t > clear_at and isinstance(m, Transcript) and m.role == "agent" and m.ordinal == first_final.ordinal]
    assert all(m.final for m in after_clear)  # nothing of the interrupted reply is sent after the clear
    audio_after_clear = sum(len(m) for t, m in h.sent if t > clear_at and isinstance(m, bytes))
    assert audio_after_clear <= int(0.1 * RATE) * 2 + CHUNK * 2  # only "Okay." (one word) is played after the clear
    history = llm.calls[1].messages
    assert history[-2].content == first_final.text and history[-1].content == "stop"
    await h.finish()
    assert h.saved and _channels_have_audio(h.saved[0]) == (True, True)


async def test_uninterruptible_message_is_not_cut_off() -> None:
    h = VoiceHarness(ScriptedLLM([[TextDelta("Fine.")]]), ScriptedSTT(["hello"]))
    h.call.receive(ForcedAgentMessage(content="one two three four five six seven eight", uninterruptible=True))
    await h.until(lambda: h.audio_bytes() > 0)
    await h.stream([(LOUD, 0.3), (QUIET, 0.5)])
    await h.until(lambda: len([t for t in h.of(Transcript) if t.final and t.role == "agent"]) == 2)
    assert not h.of(PlaybackClearBuffer)
    assert [t for t in h.of(Transcript) if t.final and t.role == "agent"][0].text == "one two three four five six seven eight"
    await h.finish()


async def test_text_output_medium_sends_no_audio_and_tts_failure_keeps_the_call() -> None:
    h = VoiceHarness(ScriptedLLM([[TextDelta("In text.")], [TextDelta("Voice fails.")]]), ScriptedSTT(["one", "two"]),
                     tts=ToneTTS(RATE, fail=True))
    h.call.receive(SetOutputMedium(medium="text"))
    await h.stream([(LOUD, 0.3), (QUIET, 0.6)])
    await h.until(lambda: any(t.final and t.role == "agent" for t in h.of(Transcript)))
    assert h.audio_bytes() == 0 and [t for t in h.of(Transcript) if t.role == "agent"][-1].medium == "text"
    h.call.receive(SetOutputMedium(medium="voice"))
    await h.stream([(LOUD, 0.3), (QUIET, 0.6)])
    await h.until(lambda: any("tts down" in d.message for d in h.of(Debug)))
    await h.until(lambda: h.of(State)[-1].state == "listening")
    assert not h.task.done()
    await h.finish()


async def test_inactivity_messages_then_soft_hang_up() -> None:
    messages = (InactivityMessage(0.3, "Are you there?"), InactivityMessage(0.3, "Goodbye.", "soft"))
    h = VoiceHarness(ScriptedLLM([]), ScriptedSTT([]), inactivity=messages)
    async with asyncio.timeout(8):
        assert await h.task == "agent_hangup"
    assert [t.text for t in h.of(Transcript) if t.final] == ["Are you there?", "Goodbye."]


async def test_audio_faster_than_real_time_is_dropped_and_reported() -> None:
    h = VoiceHarness(ScriptedLLM([]), ScriptedSTT([]))
    for _ in range(400):  # 8 s of audio at once
        h.call.receive(AudioIn(QUIET))
    await h.finish()
    overflow = [r for r in h.records if isinstance(r, EventRecord) and r.type == "audio_overflow"]
    assert overflow and overflow[0].severity == "warning"


def _channels_have_audio(wav_bytes: bytes) -> tuple[bool, bool]:
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        assert wav.getnchannels() == 2
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    return bool(np.abs(data[:, 0]).max() > 1000), bool(np.abs(data[:, 1]).max() > 1000)


async def test_media_idle_timeout_ends_the_call_with_connection_error() -> None:
    """mediaIdleTimeout (raised to the 10 s minimum): no audio for that long ends the call."""
    llm, stt = ScriptedLLM([]), ScriptedSTT([])
    voice = VoiceSpec(input_rate=RATE, output_rate=RATE, media_idle_timeout=1.0)
    records: list[Any] = []

    async def record(item: Any) -> None:
        records.append(item)

    async def send(message: Any) -> None:
        pass

    call = Call(CallSpec(call_id="idle", greeting=Greeting(agent_first=False), voice=voice), llm, send=send, record=record,
                speech=Speech(EnergyVAD, stt, ToneTTS(RATE)))
    started = asyncio.get_running_loop().time()
    task = asyncio.create_task(call.run())
    for _ in range(50):  # one second of audio, then nothing
        call.receive(AudioIn(QUIET))
        await asyncio.sleep(0.02)
    async with asyncio.timeout(15):
        assert await task == "connection_error"
    assert 10.5 < asyncio.get_running_loop().time() - started < 13.5
    assert any(isinstance(r, EventRecord) and r.type == "media_idle" for r in records)


class PartialSTT(ScriptedSTT):
    """A scripted STT that also gives the words so far of a turn still going on."""

    def __init__(self, final: str) -> None:
        super().__init__([final])
        self.partials: list[int] = []

    async def transcribe_partial(self, pcm: bytes, *, language: str | None = None) -> str:
        self.partials.append(len(pcm))
        return "what is the"


class PrefillLLM(ScriptedLLM):
    """A scripted LLM with a KV-cache prefill, recording what it was asked to read ahead."""

    def __init__(self, script: Any) -> None:
        super().__init__(script)
        self.prefills: list[tuple[list[Any], bool]] = []

    async def prefill(self, messages: Any, tools: Any, *, open_end: bool = False) -> None:
        self.prefills.append((list(messages), open_end))


async def test_partial_words_while_the_user_talks_are_read_ahead_and_leave_no_trace() -> None:
    stt = PartialSTT("what is the capital of france")
    llm = PrefillLLM([[TextDelta("Paris.")]])
    h = VoiceHarness(llm, stt)
    await h.stream([(QUIET, 0.2), (LOUD, 1.5), (QUIET, 0.6)])
    await h.until(lambda: any(t.final and t.role == "agent" for t in h.of(Transcript)))
    assert len(stt.partials) >= 2 and stt.partials == sorted(stt.partials)  # every 0.64 s of speech, the turn so far
    partial = [m for m, open_end in llm.prefills if open_end and m[-1].content == "what is the"]
    assert partial and partial[0][-1].role == "user"  # the words so far, left open for the rest of the turn
    user = [t.text for t in h.of(Transcript) if t.role == "user"]
    assert user == ["what is the capital of france"]  # the partial words are never a transcript
    assert [m.content for m in llm.calls[0].messages if m.role == "user"] == ["what is the capital of france"]
    await h.until(lambda: any(o and m[-1].content == "" for m, o in llm.prefills[len(partial):]))  # then up to the next turn
    await h.finish()


async def test_a_partial_that_comes_back_after_the_pause_is_dropped() -> None:
    import logging

    from voxcall.engine.hearing import Hearing

    release = asyncio.Event()

    asked: list[int] = []

    class SlowPartials(ScriptedSTT):
        async def transcribe_partial(self, pcm: bytes, *, language: str | None = None) -> str:
            asked.append(len(pcm))
            await release.wait()
            return "stale words"

    async def debug(_: str) -> None:
        pass

    heard: list[str] = []
    hearing = Hearing(SlowPartials(["final words"]), language=None, debug=debug, log=logging.getLogger("t"),
                      on_partial=heard.append)
    hearing.speaking(LOUD * 40)
    hearing.speaking(LOUD * 80)  # one at a time: this one is not started
    await asyncio.sleep(0)
    assert asked == [len(LOUD) * 40]
    hearing.paused(LOUD * 90)  # the user stops: the running partial is dropped
    release.set()
    assert await hearing.finish(LOUD * 90) == "final words"
    await asyncio.sleep(0.05)
    assert heard == []
