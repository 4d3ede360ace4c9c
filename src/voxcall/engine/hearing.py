"""From a finished user turn to its text, transcribing early when the user pauses.

On `Paused`, transcription starts at once on the audio so far; if the turn
then ends with exactly that audio (no new speech), the early result is used,
so most of Whisper's time hides inside the end-of-turn wait. On `Resumed`
the early work is cancelled and thrown away.

While the user talks (`Speaking`), an STT with `transcribe_partial` (the embedded
Whisper: a background job that only runs when no other transcription waits) is asked
for the words so far, at most one at a time; `on_partial` hears them, so the model can
read most of the user's words before they stop (a prefill). A partial result arriving
after a pause or the end of the turn is dropped: those have better words.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from voxcall.errors import ProviderError
from voxcall.providers.base import STT

__all__ = ["Hearing"]

STT_TIMEOUT = 15.0


@dataclass(slots=True)
class _Early:
    audio: bytes
    task: asyncio.Task[str]


class Hearing:
    def __init__(
        self,
        stt: STT,
        *,
        language: str | None,
        debug: Callable[[str], Awaitable[None]],
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
        on_early: Callable[[str], None] | None = None,
        on_partial: Callable[[str], None] | None = None,
    ) -> None:
        self._stt = stt
        self.language = language
        self._debug = debug
        self._log = log
        self._early: _Early | None = None
        self._on_early = on_early
        partial = getattr(stt, "transcribe_partial", None) if on_partial is not None else None
        self._transcribe_partial: Callable[..., Coroutine[Any, Any, str]] | None = partial
        self._on_partial = on_partial
        self._partial: asyncio.Task[str] | None = None

    def speaking(self, audio: bytes) -> None:
        """The user is still talking: transcribe the turn so far, unless a partial is under way already."""
        if self._transcribe_partial is None or self._partial is not None or self._early is not None:
            return
        task = asyncio.create_task(self._transcribe_partial(audio, language=self.language))
        task.add_done_callback(self._partial_done)
        self._partial = task

    def _partial_done(self, task: asyncio.Task[str]) -> None:
        failed = task.cancelled() or task.exception() is not None  # superseded on the worker, or failed
        if task is not self._partial:
            return  # dropped by a pause or the end of the turn
        self._partial = None
        if failed:
            return  # the final transcript is what counts
        if (text := task.result().strip()) and self._on_partial is not None:
            self._on_partial(text)

    def _drop_partial(self) -> None:
        if self._partial is not None:
            self._partial.cancel()
            self._partial = None

    def paused(self, audio: bytes) -> None:
        """Start transcribing the turn so far (the user may be done)."""
        self.resumed()
        self._drop_partial()
        early = _Early(audio, asyncio.create_task(self._transcribe(audio)))
        early.task.add_done_callback(lambda task: self._early_done(early))
        self._early = early

    def _early_done(self, early: _Early) -> None:
        # Still the current guess (no speech since): let the caller get ahead, e.g. prefill the LLM.
        if early is self._early and self._on_early is not None and not early.task.cancelled() and early.task.exception() is None:
            if text := early.task.result():
                self._on_early(text)

    def resumed(self) -> None:
        """The user goes on: drop the early transcription."""
        if self._early is not None:
            self._early.task.cancel()
            self._early = None

    async def finish(self, audio: bytes) -> str:
        """The text of a finished turn ("" when nothing intelligible was said)."""
        self._drop_partial()
        early, self._early = self._early, None
        if early is not None and early.audio == audio:
            self._log.debug("turn ended: using the early transcription (done: %s)", early.task.done())
            return await early.task
        if early is not None:
            self._log.debug("turn ended: the early transcription is stale (%d vs %d bytes)", len(early.audio), len(audio))
            early.task.cancel()
        else:
            self._log.debug("turn ended with no early transcription")
        return await self._transcribe(audio)

    async def close(self) -> None:
        self.resumed()
        self._drop_partial()

    async def _transcribe(self, audio: bytes) -> str:
        try:
            started = asyncio.get_running_loop().time()
            async with asyncio.timeout(STT_TIMEOUT):
                text = (await self._stt.transcribe(audio, language=self.language)).strip()
            self._log.debug("transcribed %.2f s of audio in %.0f ms", len(audio) / 32000,
                            (asyncio.get_running_loop().time() - started) * 1000)
            return text
        except (ProviderError, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            self._log.warning("speech recognition failed: %s", reason)
            with contextlib.suppress(Exception):
                await self._debug(f"Speech recognition failed: {reason}")
            return ""
