"""The preemptive-reply mechanism on its own: drafts, their release and their cancellation (fake back ends)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from voxcall.engine.preemption import Preemption, PrimedTTS, Prompt, prompt_of
from voxcall.errors import ProviderError
from voxcall.providers.base import ChatMessage, LLMEvent, TextDelta, ToolCall, ToolSpec
from voxcall.providers.fake import ScriptedLLM, ToneTTS


def _prompt(text: str) -> Prompt:
    return prompt_of("sys", [ChatMessage("assistant", "Hi.")], ChatMessage("user", text))


def _preemption(llm: Any, tts: PrimedTTS | None) -> Preemption:
    return Preemption(lambda p: llm.stream(p.messages, p.tools, temperature=p.temperature), tts=tts)


async def _until(predicate: Any, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


class SlowLLM:
    """Streams many words slowly and records how far it got and whether its stream was closed."""

    name = "slow"

    def __init__(self, words: int = 200, delay: float = 0.01) -> None:
        self.words, self.delay = words, delay
        self.yielded = 0
        self.closed = 0

    async def stream(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = (), *,
                     temperature: float = 0.0, max_tokens: int = 256) -> AsyncIterator[LLMEvent]:
        try:
            for i in range(self.words):
                await asyncio.sleep(self.delay)
                self.yielded += 1
                yield TextDelta(f"word{i} ")
        finally:
            self.closed += 1


async def test_a_draft_taken_for_its_own_prompt_replays_every_event_and_its_first_clause_is_primed() -> None:
    tts = ToneTTS(16000)
    primed = PrimedTTS(tts)
    llm = ScriptedLLM([[TextDelta("Paris, of course. It is lovely.")]])
    preemption = _preemption(llm, primed)
    preemption.start(_prompt("capital of france"), voice=None, speak=True)
    draft = preemption.draft
    assert draft is not None
    await _until(lambda: draft.done and tts.spoken)
    assert tts.spoken == ["Paris, of course."]  # the first clause only; the rest waits for the release
    stream = preemption.take(_prompt("capital of france"))
    assert stream is not None and preemption.draft is None
    text = "".join([e.text async for e in stream if isinstance(e, TextDelta)])
    assert text == "Paris, of course. It is lovely."
    pcm = b"".join([c async for c in primed.synthesize("Paris, of course.")])
    assert len(pcm) == int(16000 * 0.1 * 3) * 2 and tts.spoken == ["Paris, of course."]  # answered from memory
    _ = [c async for c in primed.synthesize("It is lovely.")]
    assert tts.spoken == ["Paris, of course.", "It is lovely."]  # anything else is synthesised live
    assert preemption.outcome() == ("used", 0) and preemption.outcome() == ("none", 0)
    await preemption.close()


async def test_a_draft_for_another_prompt_is_not_used_and_its_model_work_stops_at_once() -> None:
    llm = SlowLLM()
    tts = ToneTTS(16000)
    preemption = _preemption(llm, PrimedTTS(tts))
    preemption.start(_prompt("what is the"), voice=None, speak=True)
    await _until(lambda: llm.yielded >= 6)
    assert preemption.take(_prompt("what is the weather")) is None
    await preemption.close()
    assert llm.closed == 1
    stopped_at = llm.yielded
    await asyncio.sleep(0.1)
    assert llm.yielded == stopped_at < 20  # nothing more was generated after the cancel
    assert preemption.outcome() == ("discarded", 1)


async def test_discard_cancels_the_priming_and_a_later_synthesis_is_live() -> None:
    class SlowTTS(ToneTTS):
        async def synthesize(self, text: str, *, voice: str | None = None) -> AsyncIterator[bytes]:
            await asyncio.sleep(0.2)
            async for chunk in super().synthesize(text, voice=voice):
                yield chunk

    tts = SlowTTS(16000)
    primed = PrimedTTS(tts)
    preemption = _preemption(ScriptedLLM([[TextDelta("One two three four five six.")]]), primed)
    preemption.start(_prompt("hi"), voice="v", speak=True)
    await asyncio.sleep(0.05)  # the first clause is being synthesised
    preemption.discard()
    await preemption.close()
    assert tts.spoken == []  # the priming was cancelled before it produced anything
    _ = [c async for c in primed.synthesize("One two three four", voice="v")]
    assert tts.spoken == ["One two three four"]


async def test_a_draft_holds_its_tool_calls_as_events_only() -> None:
    call = ToolCall("c1", "lookup", {"q": "x"})
    llm = ScriptedLLM([[call]])
    preemption = _preemption(llm, None)
    preemption.start(_prompt("look it up"), voice=None, speak=False)
    draft = preemption.draft
    assert draft is not None
    await _until(lambda: draft.done)
    assert draft.events == [call]
    preemption.discard()
    assert preemption.take(_prompt("look it up")) is None  # discarded: nothing to release
    await preemption.close()


async def test_a_failed_draft_is_never_released_and_a_disabled_preemption_never_drafts() -> None:
    llm = ScriptedLLM([[ProviderError("down")]])
    preemption = _preemption(llm, None)
    preemption.start(_prompt("x"), voice=None, speak=False)
    draft = preemption.draft
    assert draft is not None
    await _until(lambda: draft.done)
    assert preemption.take(_prompt("x")) is None  # the reply goes to the model afresh
    off = Preemption(lambda p: llm.stream(p.messages), tts=None, enabled=False)
    off.start(_prompt("x"), voice=None, speak=False)
    assert off.draft is None and off.take(_prompt("x")) is None and off.outcome() == ("none", 0)
    await preemption.close()


async def test_closing_a_released_stream_midway_cancels_the_rest_of_the_draft() -> None:
    llm = SlowLLM(words=100, delay=0.01)
    preemption = _preemption(llm, None)
    preemption.start(_prompt("go"), voice=None, speak=False)
    stream = preemption.take(_prompt("go"))
    assert stream is not None
    seen = 0
    async for _ in stream:
        seen += 1
        if seen == 3:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert llm.closed == 1 and llm.yielded < 10
