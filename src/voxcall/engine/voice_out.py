"""Agent speech out: clauses → TTS → resample → 20 ms chunks paced to real time.

At most `lead` seconds of audio are ever ahead of what the client has played
(`clientBufferSizeMs`, PROTOCOL.md 2.2), so an interruption only has that much
to clear, and the playback position tells which words the user actually heard
(STYLE.md 8.5.4). Transcript words are released as the audio carrying them is sent.

The playback position is the wall clock by default (the client plays what it gets at
once); a medium that reports playback (a carrier's mark acknowledgements) passes
`playback`, the seconds of all the audio sent so far that have played (None while it
has reported nothing yet), and then the position, and the end of an utterance, follow
what the far end says it played.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from voxcall.audio import Resampler, frame_bytes
from voxcall.providers.base import TTS

__all__ = ["VoiceOutput"]

CHUNK_MS = 20
PLAYBACK_GRACE = 1.0
"""Longest wait, after the audio should have played out, for a reported playback position to catch up."""
TTS_TIMEOUT = 10.0
"""Longest a clause may take to synthesise before the utterance fails (a hung speech back end)."""


@dataclass(slots=True)
class _Word:
    offset: float
    text: str


class VoiceOutput:
    """Speaks one utterance at a time and keeps the timeline of what was sent and played."""

    def __init__(
        self,
        tts: TTS,
        *,
        voice: str | None,
        output_rate: int,
        lead: float,
        send_audio: Callable[[bytes], Awaitable[None]],
        tap: Callable[[bytes, float], None] | None = None,
        chunk_ms: int = CHUNK_MS,
        playback: Callable[[], float | None] | None = None,
    ) -> None:
        self.tts, self.voice, self.output_rate = tts, voice, output_rate
        self.chunk = frame_bytes(output_rate, chunk_ms)
        self.lead = max(lead, chunk_ms / 1000)
        self._send_audio = send_audio
        self._tap = tap
        self._playback = playback
        self._loop = asyncio.get_running_loop()
        self._total = 0.0  # seconds sent over the whole call: the timeline `playback` counts in
        self._reset()

    def _reset(self) -> None:
        self._base = self._total
        self._segments: list[tuple[float, float, float]] = []  # (wall start, offset, duration)
        self._words: list[_Word] = []
        self._released = 0
        self._sent = 0.0
        self._play_end = 0.0

    # ------------------------------------------------------------ timeline

    def played(self) -> float:
        """Seconds of this utterance the client has played by now."""
        reported = self._playback() if self._playback is not None else None
        if reported is not None:
            return max(0.0, min(self._sent, reported - self._base))
        now = self._loop.time()
        for start, offset, length in reversed(self._segments):
            if start <= now:
                return offset + min(now - start, length)
        return 0.0

    @property
    def buffered(self) -> bool:
        """True while sent audio is still waiting to be played at the client."""
        return self._play_end > self._loop.time()

    def span(self) -> tuple[float, float] | None:
        """Loop times when this utterance's audio began to play and where its playing stopped (None: none sent)."""
        if not self._segments:
            return None
        start = self._segments[0][0]
        return start, start + self.played()

    def heard(self) -> str:
        """The words of this utterance whose audio has started playing."""
        played = self.played()
        return "".join(w.text for w in self._words if w.offset < played and w.offset < self._sent).strip()

    # --------------------------------------------------------------- speak

    async def speak(
        self,
        clauses: AsyncIterator[str],
        on_text: Callable[[str], Awaitable[None]],
        on_first_audio: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Synthesise and play `clauses`; returns when the audio has played out.

        Cancellation-safe: on cancel, nothing more is sent and `heard()` tells
        what the user got; the caller sends `playback_clear_buffer`.
        """
        self._reset()
        ready: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()  # bounded by the reply length
        synth = asyncio.create_task(self._synthesise(clauses, ready))
        try:
            first = True
            while (item := await ready.get()) is not None:
                text, pcm = item
                self._schedule_words(text, len(pcm) / 2 / self.output_rate)
                if not pcm:
                    await self._release(on_text)
                for start in range(0, len(pcm), self.chunk):
                    await self._pace()
                    await self._send_chunk(pcm[start : start + self.chunk])
                    if first and on_first_audio is not None:
                        first = False
                        await on_first_audio()
                    await self._release(on_text)
            await synth  # re-raise a synthesis failure
            await self._release(on_text, everything=True)
            await asyncio.sleep(max(0.0, self._play_end - self._loop.time()))
            await self._played_out()
        finally:
            synth.cancel()
            await asyncio.gather(synth, return_exceptions=True)

    async def _played_out(self) -> None:
        """With reported playback: wait (a little) until the far end says all of it has played."""
        if self._playback is None or self._playback() is None:
            return
        deadline = self._loop.time() + PLAYBACK_GRACE
        while self.played() < self._sent - 1e-6 and self._loop.time() < deadline:
            await asyncio.sleep(CHUNK_MS / 1000)

    async def _synthesise(self, clauses: AsyncIterator[str], ready: asyncio.Queue[tuple[str, bytes] | None]) -> None:
        try:
            async for clause in clauses:
                resampler = Resampler(self.tts.sample_rate, self.output_rate)
                async with asyncio.timeout(TTS_TIMEOUT):
                    parts = [resampler.feed(chunk) async for chunk in self.tts.synthesize(clause, voice=self.voice)]
                parts.append(resampler.feed(b"", last=True))
                ready.put_nowait((clause, b"".join(parts)))
        finally:
            ready.put_nowait(None)  # also after a failure, so the player stops and re-raises it

    def _schedule_words(self, text: str, length: float) -> None:
        # Words carry their leading space, so the deltas add up to exactly the final text
        # (clients that only concatenate deltas get no stray trailing space).
        words = text.split()
        for i, word in enumerate(words):
            piece = word if not self._words else " " + word
            self._words.append(_Word(self._sent + length * i / max(1, len(words)), piece))

    async def _pace(self) -> None:
        wait = self._play_end - self.lead - self._loop.time()
        if wait > 0:
            await asyncio.sleep(wait)

    async def _send_chunk(self, chunk: bytes) -> None:
        now = self._loop.time()
        start = max(now, self._play_end)
        length = len(chunk) / 2 / self.output_rate
        self._segments.append((start, self._sent, length))
        self._sent += length
        self._total += length
        self._play_end = start + length
        if self._tap is not None:
            self._tap(chunk, start)
        await self._send_audio(chunk)

    async def _release(self, on_text: Callable[[str], Awaitable[None]], *, everything: bool = False) -> None:
        end = len(self._words)
        while self._released < end and (everything or self._words[self._released].offset < self._sent):
            word = self._words[self._released]
            self._released += 1
            await on_text(word.text)
