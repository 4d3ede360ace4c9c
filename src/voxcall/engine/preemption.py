"""Preemptive replies: start the whole answer while the user pauses, hold it, release it when the turn ends.

At `Paused` (PROTOCOL.md 1.5.2: a short silence, long before `turnEndpointDelay` is up) the
early transcript is known (`hearing.py`). A `Draft` then asks the model for the reply to the
conversation *as it would be* with that transcript, reads its events into memory and
synthesises its first clause (`PrimedTTS`). Nothing of it reaches the wire, the history, the
transcripts (no ordinal is taken: `history.py`) or the recording, because none of that is
touched until the call's normal reply path runs.

When the turn ends, the call builds its reply's prompt as usual and asks `Preemption.take`
for it: if a draft was made from exactly that prompt (same history, same transcript, same
tools and temperature), the reply streams from the draft (what was read ahead at once, the
rest as the model goes on) and its first clause's audio is already there. Otherwise the
draft is cancelled and the reply goes to the model as without preemption. Tool calls the
model chose in a draft are only events in memory: they run, through the normal path, only
once the reply is released, after that check.

A draft's stream may be speculative (the embedded LLM's `draft()`): another call's turn
that is due stops it, and it fails; `take` settles it, so a reply released from a draft
is never stopped that way. Cancelling a draft (the user resumes, the transcript changed,
the call ends) closes its model stream, which drops or stops the model's work at its next token (`workers.py`) or
closes the HTTP response of a remote model, and drops its synthesis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from voxcall.engine.clauses import ClauseSplitter
from voxcall.providers.base import TTS, ChatMessage, LLMEvent, TextDelta, ToolSpec

__all__ = ["Draft", "Outcome", "Preemption", "PrimedTTS", "Prompt", "prompt_of"]

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0
"""Longest wait for a cancelled draft's model stream to close (a remote model's response, a worker's job)."""
Outcome = Literal["used", "discarded", "none"]
"""What preemption did for one turn: its reply came from a draft, a draft was thrown away, or neither."""


@dataclass(frozen=True, slots=True)
class Prompt:
    """Everything a model request depends on; a draft is reused only for an equal prompt."""

    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolSpec, ...]
    temperature: float


Stream = Callable[[Prompt], AsyncIterator[LLMEvent]]


# ------------------------------------------------------------------ speech


class PrimedTTS:
    """A `TTS` that can synthesise one clause ahead of time; asked for that clause, it answers from memory.

    Everything else goes to the wrapped TTS unchanged.
    """

    def __init__(self, tts: TTS) -> None:
        self.inner = tts
        self.name = tts.name
        self.sample_rate = tts.sample_rate
        self._primed: tuple[str, str | None, asyncio.Task[list[bytes]]] | None = None

    def voices(self) -> list[str]:
        return self.inner.voices()

    def prime(self, text: str, voice: str | None) -> asyncio.Task[list[bytes]]:
        """Start synthesising `text` now (replacing an earlier primed clause); the task holds its PCM."""
        self.clear()
        task = asyncio.create_task(self._collect(text, voice))
        self._primed = (text, voice, task)
        return task

    def clear(self, task: asyncio.Task[list[bytes]] | None = None) -> None:
        """Drop the primed clause (only if it is `task`, when given); its synthesis stops at the next chunk."""
        primed = self._primed
        if primed is not None and (task is None or primed[2] is task):
            self._primed = None
            primed[2].cancel()

    async def synthesize(self, text: str, *, voice: str | None = None) -> AsyncIterator[bytes]:
        """The primed PCM if `text` is the primed clause (waiting for it if needed), else the wrapped TTS's."""
        primed, self._primed = self._primed, None
        chunks: list[bytes] | None = None
        if primed is not None and primed[:2] == (text, voice):
            with contextlib.suppress(Exception):  # a failed priming is retried below, live
                chunks = await primed[2]
        elif primed is not None:
            primed[2].cancel()
        if chunks is None:
            async for chunk in self.inner.synthesize(text, voice=voice):
                yield chunk
            return
        for chunk in chunks:
            yield chunk

    async def _collect(self, text: str, voice: str | None) -> list[bytes]:
        return [chunk async for chunk in self.inner.synthesize(text, voice=voice)]


# ------------------------------------------------------------------ drafts


class Draft:
    """One preemptive reply: its model events read ahead into memory, its first clause synthesised.

    The events are read until the first clause is complete; while that clause is synthesised
    the model waits (as it does for a live reply), then the rest is read as it comes. At most
    `max_tokens` of the model's text are held.
    """

    def __init__(self, prompt: Prompt, stream: AsyncIterator[LLMEvent], *, tts: PrimedTTS | None,
                 voice: str | None) -> None:
        self.prompt = prompt
        self.stream = stream
        self.events: list[LLMEvent] = []
        self.error: BaseException | None = None
        self.done = False
        self._changed = asyncio.Event()
        self._tts = tts
        self._voice = voice
        self._primed: asyncio.Task[list[bytes]] | None = None
        self._task = asyncio.create_task(self._pump(stream))

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def closed(self) -> bool:
        """True once the draft's work is over (its model stream closed)."""
        return self._task.done()

    async def _pump(self, stream: AsyncIterator[LLMEvent]) -> None:
        splitter = ClauseSplitter() if self._tts is not None else None
        try:
            async for event in stream:
                self.events.append(event)
                self._changed.set()
                if splitter is not None and isinstance(event, TextDelta) and (clauses := splitter.feed(event.text)):
                    await self._prime(clauses[0])
                    splitter = None
            if splitter is not None and (rest := splitter.flush()):
                await self._prime(rest)
        except Exception as exc:  # handed to the reply that takes the draft (or it is discarded)
            self.error = exc
        finally:
            self.done = True
            self._changed.set()
            await _aclose(stream)

    async def _prime(self, clause: str) -> None:
        assert self._tts is not None
        self._primed = self._tts.prime(clause, self._voice)
        with contextlib.suppress(Exception):  # a TTS failure shows when the reply speaks, live
            await self._primed

    async def replay(self) -> AsyncGenerator[LLMEvent, None]:
        """The draft's events from the first: those read ahead at once, then the rest as they come.

        One consumer. Raises the model's error where it happened.
        """
        index = 0
        while True:
            while index < len(self.events):
                index += 1
                yield self.events[index - 1]
            if self.done:
                if self.error is not None:
                    raise self.error
                return
            self._changed.clear()
            await self._changed.wait()

    def cancel(self) -> None:
        """Stop the model's work and the synthesis for this draft. Never blocks."""
        self._task.cancel()
        if self._tts is not None and self._primed is not None:
            self._tts.clear(self._primed)

    async def wait_closed(self) -> None:
        """Wait (at most `CLOSE_TIMEOUT`) until the draft's model stream is closed, after `cancel` or its end."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await asyncio.gather(self._task, return_exceptions=True)


class _Released:
    """The stream a released draft gives its reply; closing it cancels what the draft still does."""

    def __init__(self, draft: Draft) -> None:
        self._draft = draft
        self._events = draft.replay()

    def __aiter__(self) -> _Released:
        return self

    async def __anext__(self) -> LLMEvent:
        return await anext(self._events)

    async def aclose(self) -> None:
        self._draft.cancel()  # a no-op once the model's reply is all read
        with contextlib.suppress(RuntimeError):  # still running: it is being cancelled, and closes itself
            await self._events.aclose()
        await self._draft.wait_closed()


# ------------------------------------------------------------------ the call's hooks


class Preemption:
    """At most one draft per call: `start` at a pause, `take` when the reply is due, `discard` otherwise.

    Disabled (`enabled=False`), `start` does nothing and `take` always answers None.
    """

    def __init__(self, stream: Stream, *, tts: PrimedTTS | None, enabled: bool = True) -> None:
        self.enabled = enabled
        self._stream = stream
        self._tts = tts
        self._draft: Draft | None = None
        self._used = False
        self._discarded = 0
        self._closing: set[Draft] = set()

    @property
    def draft(self) -> Draft | None:
        return self._draft

    def start(self, prompt: Prompt, *, voice: str | None, speak: bool) -> None:
        """Begin a draft for `prompt` (replacing any other); `speak`: synthesise its first clause too."""
        if not self.enabled:
            return
        if self._draft is not None and self._draft.prompt == prompt and not self._draft.failed:
            return  # the same guess again (the same words after a resumed blip)
        self.discard()
        self._draft = Draft(prompt, self._stream(prompt), tts=self._tts if speak else None, voice=voice)

    def take(self, prompt: Prompt) -> AsyncIterator[LLMEvent] | None:
        """The held reply if it was drafted from exactly `prompt` (then it is released), else None."""
        draft = self._draft
        if draft is None:
            return None
        self._draft = None
        settle = getattr(draft.stream, "settle", None)  # a speculative stream: nothing may stop it from now on
        if draft.prompt != prompt or draft.failed or (settle is not None and not settle()):
            self._drop(draft)
            return None
        self._used = True
        return _Released(draft)

    def discard(self) -> None:
        """The guess is wrong (the user goes on, or said nothing): cancel the draft, if any."""
        draft, self._draft = self._draft, None
        if draft is not None:
            self._drop(draft)

    def outcome(self) -> tuple[Outcome, int]:
        """What preemption did since the last call (for a turn's latency report), and how many drafts it
        threw away meanwhile; then it forgets both."""
        outcome: Outcome = "used" if self._used else "discarded" if self._discarded else "none"
        discarded, self._used, self._discarded = self._discarded, False, 0
        return outcome, discarded

    async def close(self) -> None:
        """Cancel the draft and wait (bounded) until every cancelled draft's model stream is closed."""
        self.discard()
        await asyncio.gather(*(d.wait_closed() for d in list(self._closing)))

    def _drop(self, draft: Draft) -> None:
        self._discarded += 1
        draft.cancel()
        self._closing = {d for d in self._closing if not d.closed} | {draft}
        logger.debug("preemptive reply discarded (%d events read ahead)", len(draft.events))


def prompt_of(system: str, entries: Sequence[ChatMessage], *extra: ChatMessage, tools: Sequence[ToolSpec] = (),
              temperature: float = 0.0) -> Prompt:
    """The prompt of a reply: the system prompt, the history, then `extra` (the early transcript)."""
    return Prompt((ChatMessage("system", system), *entries, *extra), tuple(tools), temperature)


async def _aclose(stream: object) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()
