"""A deterministic scripted LLM, for ENGINE UNIT TESTS ONLY.

Integration tests, benchmarks and the CLI use real models (`embedded.py`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass

from voxcall.errors import ProviderError
from voxcall.providers.base import ChatMessage, LLMEvent, TextDelta, ToolSpec

__all__ = ["EnergyVAD", "LLMRequest", "Script", "ScriptedLLM", "ScriptedSTT", "ToneTTS"]

Reply = Sequence[LLMEvent | Exception]
Script = Callable[[Sequence[ChatMessage], Sequence[ToolSpec]], Reply] | Sequence[Reply]
_WORDS = re.compile(r"\s*\S+\s*|\s+")


@dataclass(frozen=True, slots=True)
class LLMRequest:
    """What one `stream()` call was given."""

    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolSpec, ...]


class ScriptedLLM:
    """Replies from a script: a callable `(messages, tools) -> events`, or a list of replies used in order.

    `TextDelta`s are re-split into words, each after `delay` seconds (an empty one, such as a
    `TextDelta("", prompt_tokens=n)`, goes as it is; `prompt_tokens` stays on the first word); an
    `Exception` in a reply is raised at that point. Every call is recorded in `calls`.
    """

    name = "scripted"

    def __init__(self, script: Script, *, delay: float = 0.0) -> None:
        self._script = script
        self._replies: Iterator[Reply] = iter(()) if callable(script) else iter(script)
        self.delay = delay
        self.calls: list[LLMRequest] = []

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        temperature: float = 0.0,
        max_tokens: int = 256,
    ) -> AsyncIterator[LLMEvent]:
        """Yield the next scripted reply. Cancellation-safe (nothing is left behind)."""
        self.calls.append(LLMRequest(tuple(messages), tuple(tools)))
        for event in self._next_reply(messages, tools):
            if isinstance(event, Exception):
                raise event
            if isinstance(event, TextDelta):
                words = _WORDS.findall(event.text) or [event.text]
                for i, word in enumerate(words):
                    await asyncio.sleep(self.delay)
                    yield TextDelta(word, prompt_tokens=event.prompt_tokens if i == 0 else None)
            else:
                await asyncio.sleep(self.delay)
                yield event

    def _next_reply(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> Reply:
        if callable(self._script):
            return self._script(messages, tools)
        for reply in self._replies:
            return reply
        raise ProviderError(f"script exhausted after {len(self.calls) - 1} replies")


class EnergyVAD:
    """Speech = loud frames. For engine unit tests with synthetic audio only."""

    sample_rate = 16000
    frame_samples = 512

    def __init__(self, threshold: int = 1000) -> None:
        self.threshold = threshold

    def probability(self, frame: bytes) -> float:
        import numpy as np

        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)
        return 1.0 if samples.size and float(np.sqrt(np.mean(samples**2))) > self.threshold else 0.0

    def reset(self) -> None:
        pass


class ScriptedSTT:
    """Returns scripted texts in order (or a callable of the audio), after `delay` seconds."""

    name = "scripted-stt"
    sample_rate = 16000

    def __init__(self, texts: Sequence[str] | Callable[[bytes], str], *, delay: float = 0.0) -> None:
        self._texts = texts if callable(texts) else iter(texts)
        self.delay = delay
        self.calls: list[bytes] = []

    async def transcribe(self, pcm: bytes, *, language: str | None = None) -> str:
        self.calls.append(pcm)
        await asyncio.sleep(self.delay)
        return self._texts(pcm) if callable(self._texts) else next(self._texts, "")


class ToneTTS:
    """Speaks every word as `word_seconds` of a tone, so durations are predictable."""

    name = "tone-tts"

    def __init__(self, sample_rate: int = 16000, word_seconds: float = 0.1, *, fail: bool = False) -> None:
        self.sample_rate = sample_rate
        self.word_seconds = word_seconds
        self.fail = fail
        self.spoken: list[str] = []

    def voices(self) -> list[str]:
        return ["tone"]

    async def synthesize(self, text: str, *, voice: str | None = None) -> AsyncIterator[bytes]:
        import numpy as np

        if self.fail:
            raise ProviderError("tts down")
        self.spoken.append(text)
        n = int(self.sample_rate * self.word_seconds * max(1, len(text.split())))
        tone = (np.sin(np.arange(n) * 2 * np.pi * 440 / self.sample_rate) * 8000).astype("<i2")
        await asyncio.sleep(0)
        yield tone.tobytes()
