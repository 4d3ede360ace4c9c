"""Engine parts of phone calls: DTMF batching, playback position from a medium's report, playDtmfSounds."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.engine.test_call import USER_FIRST, Harness
from voxcall.engine.dtmf import DtmfBatcher, PlayDtmfExecutor
from voxcall.engine.spec import CallSpec, DtmfSpec, ToolDef
from voxcall.engine.tools import ToolContext, ToolRunner
from voxcall.engine.voice_out import VoiceOutput
from voxcall.protocol.realtime import Transcript, UserTextMessage
from voxcall.protocol.rest import CallMessage
from voxcall.protocol.telephony import DtmfDigit, SendDtmf
from voxcall.providers.base import TextDelta, ToolCall, ToolSpec
from voxcall.providers.fake import ScriptedLLM, ToneTTS

RATE = 8000
FAST = 0.05  # batching delay for tests


# ------------------------------------------------------------------ batching


async def test_consecutive_digits_are_batched_into_one_message() -> None:
    posted: list[UserTextMessage] = []
    batcher = DtmfBatcher(DtmfSpec(batch_delay=FAST), posted.append)
    for digit in "123":
        batcher.press(digit)
        await asyncio.sleep(FAST / 5)
    assert posted == []
    await asyncio.sleep(FAST * 2)
    assert [(m.text, m.urgency) for m in posted] == [("123", "immediate")]
    batcher.press("#")
    await asyncio.sleep(FAST * 2)
    assert [m.text for m in posted] == ["123", "#"]


async def test_a_template_and_an_urgency_shape_the_message_and_ignore_drops_digits() -> None:
    posted: list[UserTextMessage] = []
    batcher = DtmfBatcher(DtmfSpec(template="The caller pressed {digits}.", urgency="later", batch_delay=FAST), posted.append)
    batcher.press("4")
    batcher.press("2")
    await asyncio.sleep(FAST * 2)
    assert [(m.text, m.urgency) for m in posted] == [("The caller pressed 42.", "later")]
    ignoring = DtmfBatcher(DtmfSpec(ignore=True, batch_delay=FAST), posted.append)
    ignoring.press("9")
    await asyncio.sleep(FAST * 2)
    assert len(posted) == 1


async def test_close_drops_digits_not_yet_sent() -> None:
    posted: list[UserTextMessage] = []
    batcher = DtmfBatcher(DtmfSpec(batch_delay=FAST), posted.append)
    batcher.press("1")
    batcher.close()
    await asyncio.sleep(FAST * 2)
    assert posted == []


async def test_digits_in_a_call_become_a_user_text_message_the_agent_answers() -> None:
    llm = ScriptedLLM([[TextDelta("You pressed seven.")]])
    h = Harness(CallSpec(call_id="d", greeting=USER_FIRST, output_medium="text", dtmf=DtmfSpec(batch_delay=FAST)), llm).start()
    await h.until(lambda: any(getattr(m, "state", None) == "listening" for m in h.sent))
    h.call.receive(DtmfDigit("7"))
    await h.until(lambda: len(h.finals("agent")) == 1)
    assert [t.text for t in h.finals("user")] == ["7"]
    assert llm.calls[0].messages[-1].content == "7"
    user = [r for r in h.records if isinstance(r, CallMessage) and r.role == "MESSAGE_ROLE_USER"]
    assert [(m.text, m.medium) for m in user] == [("7", "MESSAGE_MEDIUM_TEXT")]
    h.call.end("hangup")
    assert await h.task == "hangup"  # type: ignore[misc]


async def test_ignored_digits_leave_no_trace() -> None:
    h = Harness(CallSpec(call_id="i", greeting=USER_FIRST, dtmf=DtmfSpec(ignore=True, batch_delay=FAST)), ScriptedLLM([])).start()
    h.call.receive(DtmfDigit("1"))
    await asyncio.sleep(FAST * 3)
    h.call.end("hangup")
    await h.task  # type: ignore[misc]
    assert not [t for t in h.of(Transcript) if t.role == "user"] and not h.records


# ------------------------------------------------------------------ playback reported by the medium


class Reported:
    """A medium's playback report the test moves by hand."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


async def clauses(*texts: str) -> Any:
    for text in texts:
        yield text


async def test_the_heard_words_follow_the_reported_position_not_the_clock() -> None:
    report = Reported()
    sent: list[bytes] = []

    async def send(pcm: bytes) -> None:
        sent.append(pcm)

    out = VoiceOutput(ToneTTS(RATE, word_seconds=0.1), voice=None, output_rate=RATE, lead=0.06, send_audio=send,
                      playback=report)
    words: list[str] = []

    async def on_text(text: str) -> None:
        words.append(text)

    task = asyncio.create_task(out.speak(clauses("one two three four five six seven eight nine ten"), on_text))
    await asyncio.sleep(0.6)  # the clock says about six words have played
    assert out.heard() == ""  # but the far end has reported nothing
    report.seconds = 0.25
    assert out.heard() == "one two three"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_utterance_ends_when_the_far_end_has_played_it_and_positions_are_per_utterance() -> None:
    report = Reported()
    total = 0.0

    async def send(pcm: bytes) -> None:
        nonlocal total
        total += len(pcm) / 2 / RATE

    out = VoiceOutput(ToneTTS(RATE, word_seconds=0.1), voice=None, output_rate=RATE, lead=0.06, send_audio=send,
                      playback=report)

    async def on_text(text: str) -> None:
        pass

    first = asyncio.create_task(out.speak(clauses("a b c"), on_text))
    await asyncio.sleep(0.5)  # the audio (0.3 s) should have played by the clock ...
    assert not first.done()  # ... but the far end has not said so yet
    report.seconds = total
    await asyncio.wait_for(first, 1)
    second = asyncio.create_task(out.speak(clauses("d e f g"), on_text))
    await asyncio.sleep(0.1)
    assert out.heard() == ""  # the first utterance's position does not count for the second
    report.seconds = total + 0.15
    assert out.heard() == "d e"
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second


async def test_without_a_report_the_wait_for_play_out_is_bounded() -> None:
    async def send(pcm: bytes) -> None:
        pass

    out = VoiceOutput(ToneTTS(RATE, word_seconds=0.05), voice=None, output_rate=RATE, lead=0.06, send_audio=send,
                      playback=lambda: 0.0)

    async def on_text(text: str) -> None:
        pass

    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(out.speak(clauses("x"), on_text), 3)
    assert asyncio.get_running_loop().time() - started < 2.0


async def test_a_medium_that_has_reported_nothing_yet_leaves_the_clock_in_charge() -> None:
    async def send(pcm: bytes) -> None:
        pass

    out = VoiceOutput(ToneTTS(RATE, word_seconds=0.1), voice=None, output_rate=RATE, lead=0.06, send_audio=send,
                      playback=lambda: None)

    async def on_text(text: str) -> None:
        pass

    task = asyncio.create_task(out.speak(clauses("one two three four five six seven eight"), on_text))
    await asyncio.sleep(0.45)
    assert out.heard().split()[:3] == ["one", "two", "three"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_larger_chunks_for_a_carrier_that_needs_them() -> None:
    sizes: list[int] = []

    async def send(pcm: bytes) -> None:
        sizes.append(len(pcm))

    out = VoiceOutput(ToneTTS(RATE, word_seconds=0.25), voice=None, output_rate=RATE, lead=0.2, send_audio=send, chunk_ms=100)

    async def on_text(text: str) -> None:
        pass

    await out.speak(clauses("one"), on_text)
    assert sizes[:-1] and set(sizes[:-1]) == {1600} and sizes[-1] <= 1600


# ------------------------------------------------------------------ playDtmfSounds

CONTEXT = ToolContext(call_id="c", call_stage_id="s")
DTMF_TOOL = ToolDef(ToolSpec("playDtmfSounds", "Press keys", {"type": "object", "properties": {"digits": {"type": "string"}}}),
                    kind="play_dtmf")


async def test_play_dtmf_sends_the_digits_where_the_medium_can() -> None:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    runner = ToolRunner((DTMF_TOOL,), send, {"play_dtmf": PlayDtmfExecutor(send, True)})
    outcome = await runner.run(ToolCall("1", "playDtmfSounds", {"digits": "1 2#"}), CONTEXT)
    assert sent == [SendDtmf(digits="12#")] and "12#" in outcome.result and outcome.error is None
    bad = await runner.run(ToolCall("2", "playDtmfSounds", {"digits": "12x"}), CONTEXT)
    assert bad.error and len(sent) == 1


async def test_play_dtmf_tells_the_model_when_the_medium_cannot() -> None:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    runner = ToolRunner((DTMF_TOOL,), send, {"play_dtmf": PlayDtmfExecutor(send, False)})
    outcome = await runner.run(ToolCall("1", "playDtmfSounds", {"digits": "5"}), CONTEXT)
    assert sent == [] and "cannot" in outcome.result and outcome.error
