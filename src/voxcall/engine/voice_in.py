"""User audio in: resample to the VAD's rate, cut 32 ms frames, run the VAD and the turn detector.

Everything here is cheap and never blocks the socket reader, so it runs inside
`Call.receive()`. A VAD with `submit()` (`providers.vad_batch`: every call's
Silero in batches on a thread of its own) decides the frames a moment later, and
the turn events follow then, on the loop, stamped with the time the audio came
in; a plain VAD decides each frame at once. A client
that sends faster than real time has the excess dropped (memory stays bounded)
and the drop is reported once per second.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

import numpy as np

from voxcall.audio import Resampler
from voxcall.engine.turns import TurnDetector, VadConfig
from voxcall.providers.base import VAD

__all__ = ["AudioOverflow", "VoiceInput", "gate"]

MAX_AHEAD = 2.0
"""Seconds of audio a client may send ahead of real time before the excess is dropped."""


def gate(probability: float, frame: bytes, floor_dbfs: float | None) -> float:
    """The frame's speech probability, or 0 when the frame is quieter than `floor_dbfs` (RMS; None: no floor).

    Silero's recurrent state keeps saying "speech" for a frame or two of near-digital silence after
    the last word (p = 0.9 at -76 dBFS): nothing that quiet is speech, so the end of speech is
    noticed up to 64 ms sooner (benchmarks/end_of_speech.py: ~30 ms at the median at -65 dBFS, with no
    more false ends). Above the floor Silero decides.
    """
    if floor_dbfs is None:
        return probability
    samples = np.frombuffer(frame, dtype="<i2").astype(np.float64)
    power = float(samples.dot(samples)) / samples.size if samples.size else 0.0  # dot: one C call, no temporaries
    return probability if power > (32768.0 * 10 ** (floor_dbfs / 20)) ** 2 else 0.0


class AudioOverflow:
    """Inbound audio was dropped because the client sent faster than real time."""

    def __init__(self, dropped_seconds: float) -> None:
        self.dropped_seconds = dropped_seconds


class VoiceInput:
    """Turns inbound PCM at the call's input rate into turn events, each posted with its loop time."""

    def __init__(
        self,
        vad: VAD,
        config: VadConfig,
        *,
        input_rate: int,
        emit: Callable[[object, float], None],
        tap: Callable[[bytes], None] | None = None,
    ) -> None:
        self._vad = vad
        self._submit: Callable[[bytes, Callable[[float], None]], None] | None = getattr(vad, "submit", None)
        self._detector = TurnDetector(config)
        self._floor = config.silence_floor_dbfs
        # Telephone audio (8 kHz) is upsampled: a shorter filter costs nothing there (nothing is
        # above 4 kHz) and takes 40 ms off the time to notice speech, e.g. a barge-in.
        self._resampler = Resampler(input_rate, vad.sample_rate, quality="MQ" if input_rate < vad.sample_rate else "HQ")
        self._frame = vad.frame_samples * 2
        self.rate = vad.sample_rate
        """The rate of the turns' audio (the VAD's)."""
        self._input_rate = input_rate
        self._emit = emit
        self._tap = tap
        self._pending = b""
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.time()
        self._received = 0.0
        self._dropped = 0.0
        self._last_report = 0.0
        self.agent_speaking = False
        self.last_audio_at = self._started

    @property
    def in_speech(self) -> bool:
        return self._detector.in_speech

    def push(self, pcm: bytes) -> None:
        """Take inbound PCM (s16le mono, even length) of any size."""
        now = self._loop.time()
        self.last_audio_at = now
        seconds = len(pcm) / 2 / self._input_rate
        if self._received + seconds > (now - self._started) + MAX_AHEAD:
            self._dropped += seconds
            if now - self._last_report >= 1.0:
                self._last_report = now
                self._emit(AudioOverflow(self._dropped), now)
            return
        self._received += seconds
        audio = self._pending + self._resampler.feed(pcm)
        cut = len(audio) - len(audio) % self._frame
        self._pending = audio[cut:]
        for start in range(0, cut, self._frame):
            frame = audio[start : start + self._frame]
            if self._tap is not None:
                self._tap(frame)
            if self._submit is not None:
                self._submit(frame, functools.partial(self._decided, frame, now))
            else:
                self._decided(frame, now, self._vad.probability(frame))

    def close(self) -> None:
        """The call is over: a VAD with `close()` (a batched stream) drops its queued frames and leaves its batch."""
        close: Callable[[], None] | None = getattr(self._vad, "close", None)
        if close is not None:
            close()

    def _decided(self, frame: bytes, at: float, probability: float) -> None:
        if self._detector.voiced(probability):  # the floor can only turn speech into silence: skip it for the rest
            probability = gate(probability, frame, self._floor)  # Silero sees every frame; the floor overrules it
        for event in self._detector.feed(frame, probability, agent_speaking=self.agent_speaking):
            self._emit(event, at)

