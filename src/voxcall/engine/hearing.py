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
    ) -> None:
        self._stt = stt
        self._language = language
        self._debug = debug
        self._log = log
        self._early: _Early | None = None

    def paused(self, audio: bytes) -> None:
        """Start transcribing the turn so far (the user may be done)."""
        self.resumed()
        self._early = _Early(audio, asyncio.create_task(self._transcribe(audio)))

    def resumed(self) -> None:
        """The user goes on: drop the early transcription."""
        if self._early is not None:
            self._early.task.cancel()
            self._early = None

    async def finish(self, audio: bytes) -> str:
        """The text of a finished turn ("" when nothing intelligible was said)."""
        early, self._early = self._early, None
        if early is not None and early.audio == audio:
            return await early.task
        if early is not None:
            early.task.cancel()
        return await self._transcribe(audio)

    async def close(self) -> None:
        self.resumed()

    async def _transcribe(self, audio: bytes) -> str:
        try:
            async with asyncio.timeout(STT_TIMEOUT):
                return (await self._stt.transcribe(audio, language=self._language)).strip()
        except (ProviderError, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            self._log.warning("speech recognition failed: %s", reason)
            with contextlib.suppress(Exception):
                await self._debug(f"Speech recognition failed: {reason}")
            return ""
