"""One agent utterance on its way out: typed (transcript deltas as the model streams) or spoken
(clauses -> speech, with transcript words in step with the audio).

`Delivery` knows how to put transcript text on the wire (`say`, which takes the
ordinal on the first piece) and the voice output of one call; the call decides
what the history keeps once an utterance is over (`Spoken.text`: all of a typed reply,
the heard words of a spoken one).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace

from voxcall.engine.clauses import ClauseSplitter
from voxcall.engine.voice_out import VoiceOutput
from voxcall.protocol.transcripts import Utterance
from voxcall.providers.base import LLMEvent, TextDelta, ToolCall

__all__ = ["QUEUE_PATIENCE", "Delivery", "Spoken"]

QUEUE_PATIENCE = 5
"""A turn queued behind other calls may wait this many `llm_timeout`s before the agent apologises."""


@dataclass(slots=True)
class Spoken:
    """What one utterance produced so far: the text the user got, and the model's tool calls."""

    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    on_call: Callable[[ToolCall], None] | None = None
    """Told of each tool call as soon as the model emits it (precomputable tools may start early)."""
    prompt_tokens: int | None = None
    """The prompt's length in tokens, if the model said (`TextDelta.prompt_tokens`)."""

    def add_call(self, call: ToolCall) -> None:
        if call.prompt_tokens is not None:
            call = replace(call, prompt_tokens=None)  # the count is the reply's, not part of the call
        self.calls.append(call)
        if self.on_call is not None:
            self.on_call(call)


class Delivery:
    def __init__(
        self,
        say: Callable[[Utterance, str], Awaitable[bool]],
        *,
        speaking: Callable[[], Awaitable[None]],
        first_token: Callable[[], None],
        first_audio: Callable[[], Awaitable[None]],
        llm_timeout: float,
        voice_out: VoiceOutput | None,
    ) -> None:
        self._say = say
        self._speaking = speaking
        self._first_token = first_token
        self._first_audio = first_audio
        self._llm_timeout = llm_timeout
        self._deadline: asyncio.Timeout | None = None
        self.voice_out = voice_out

    def model_waiting(self) -> None:
        """The model is busy with other calls: the first-event deadline waits until it starts on this turn.

        While the turn waits in the model's queue (served fairly, one request per call), the
        call shows `thinking`; `QUEUE_PATIENCE` deadlines' worth of waiting is allowed.
        """
        if self._deadline is not None:
            self._deadline.reschedule(asyncio.get_running_loop().time() + self._llm_timeout * QUEUE_PATIENCE)

    def model_started(self) -> None:
        """The model has started on this turn after waiting: the first-event deadline starts now."""
        if self._deadline is not None:
            self._deadline.reschedule(asyncio.get_running_loop().time() + self._llm_timeout)

    async def type(self, stream: AsyncIterator[LLMEvent], utterance: Utterance, spoken: Spoken) -> None:
        """Send the model's text as transcript deltas as it streams."""
        async for event in self._first_event_deadline(stream, spoken):
            if isinstance(event, TextDelta):
                if event.text:
                    if not spoken.text:
                        await self._speaking()
                    spoken.text += event.text
                    await self._say(utterance, event.text)
            elif isinstance(event, ToolCall):
                spoken.add_call(event)

    async def speak(self, stream: AsyncIterator[LLMEvent], utterance: Utterance, spoken: Spoken) -> None:
        """Speak the model's text clause by clause; transcript words go out with their audio."""
        assert self.voice_out is not None

        async def clauses() -> AsyncIterator[str]:
            splitter = ClauseSplitter()
            async for event in self._first_event_deadline(stream, spoken):
                if isinstance(event, TextDelta):
                    for clause in splitter.feed(event.text):
                        yield clause
                elif isinstance(event, ToolCall):
                    spoken.add_call(event)
            if rest := splitter.flush():
                yield rest

        async def on_text(words: str) -> None:
            spoken.text += words
            await self._say(utterance, words)

        await self.voice_out.speak(clauses(), on_text, self._first_audio)

    async def _first_event_deadline(self, stream: AsyncIterator[LLMEvent], spoken: Spoken) -> AsyncIterator[LLMEvent]:
        """The stream, failing with TimeoutError if the first event takes longer than `llm_timeout`;
        a prompt token count on the way is kept in `spoken`."""
        iterator = aiter(stream)
        try:
            async with asyncio.timeout(self._llm_timeout) as self._deadline:
                first = await anext(iterator)
        except StopAsyncIteration:
            return
        finally:
            self._deadline = None
        self._first_token()
        _count(first, spoken)
        yield first
        async for event in iterator:
            _count(event, spoken)
            yield event


def _count(event: LLMEvent, spoken: Spoken) -> None:
    if event.prompt_tokens is not None:
        spoken.prompt_tokens = event.prompt_tokens
