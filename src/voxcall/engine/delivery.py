"""One agent utterance on its way out: typed (transcript deltas as the model streams) or spoken
(clauses -> speech, with transcript words in step with the audio).

`Delivery` knows the transcript writer and the outputs of one call; the call decides
what the history keeps once an utterance is over (`Spoken.text`: all of a typed reply,
the heard words of a spoken one).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from voxcall.engine.clauses import ClauseSplitter
from voxcall.engine.voice_out import VoiceOutput
from voxcall.protocol.transcripts import TranscriptWriter
from voxcall.providers.base import LLMEvent, TextDelta, ToolCall

__all__ = ["Delivery", "Spoken"]


@dataclass(slots=True)
class Spoken:
    """What one utterance produced so far: the text the user got, and the model's tool calls."""

    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    on_call: Callable[[ToolCall], None] | None = None
    """Told of each tool call as soon as the model emits it (precomputable tools may start early)."""

    def add_call(self, call: ToolCall) -> None:
        self.calls.append(call)
        if self.on_call is not None:
            self.on_call(call)


class Delivery:
    def __init__(
        self,
        writer: TranscriptWriter,
        *,
        send: Callable[[Any], Awaitable[None]],
        speaking: Callable[[], Awaitable[None]],
        first_token: Callable[[], None],
        first_audio: Callable[[], Awaitable[None]],
        llm_timeout: float,
        voice_out: VoiceOutput | None,
    ) -> None:
        self._writer = writer
        self._send = send
        self._speaking = speaking
        self._first_token = first_token
        self._first_audio = first_audio
        self._llm_timeout = llm_timeout
        self.voice_out = voice_out

    async def type(self, stream: AsyncIterator[LLMEvent], ordinal: int, spoken: Spoken) -> None:
        """Send the model's text as transcript deltas as it streams."""
        async for event in self._first_event_deadline(stream):
            if isinstance(event, TextDelta):
                message = self._writer.append(ordinal, event.text)
                if message is not None:
                    if not spoken.text:
                        await self._speaking()
                    await self._send(message)
                    spoken.text += event.text
            elif isinstance(event, ToolCall):
                spoken.add_call(event)

    async def speak(self, stream: AsyncIterator[LLMEvent], ordinal: int, spoken: Spoken) -> None:
        """Speak the model's text clause by clause; transcript words go out with their audio."""
        assert self.voice_out is not None

        async def clauses() -> AsyncIterator[str]:
            splitter = ClauseSplitter()
            async for event in self._first_event_deadline(stream):
                if isinstance(event, TextDelta):
                    for clause in splitter.feed(event.text):
                        yield clause
                elif isinstance(event, ToolCall):
                    spoken.add_call(event)
            if rest := splitter.flush():
                yield rest

        async def on_text(words: str) -> None:
            message = self._writer.append(ordinal, words)
            spoken.text += words
            if message is not None:
                await self._send(message)

        await self.voice_out.speak(clauses(), on_text, self._first_audio)

    async def _first_event_deadline(self, stream: AsyncIterator[LLMEvent]) -> AsyncIterator[LLMEvent]:
        """The stream, failing with TimeoutError if the first event takes longer than `llm_timeout`."""
        iterator = aiter(stream)
        try:
            async with asyncio.timeout(self._llm_timeout):
                first = await anext(iterator)
        except StopAsyncIteration:
            return
        self._first_token()
        yield first
        async for event in iterator:
            yield event
