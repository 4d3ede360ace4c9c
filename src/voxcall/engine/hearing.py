"""From a finished user turn to its text, transcribing early when the user pauses.

On `Paused`, transcription starts at once on the audio so far; if the turn
then ends with exactly that audio (no new speech), the early result is used,
so most of Whisper's time hides inside the end-of-turn wait. On `Resumed`
the early work is cancelled and thrown away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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
    ) -> None:
        self._stt = stt
        self.language = language
        self._debug = debug
        self._log = log
        self._early: _Early | None = None
        self._on_early = on_early

    def paused(self, audio: bytes) -> None:
        """Start transcribing the turn so far (the user may be done)."""
        self.resumed()
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
