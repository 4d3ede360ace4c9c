"""The silence floor under the VAD: near-digital silence is never speech, whatever Silero's state says."""

from __future__ import annotations

import numpy as np

from voxcall.engine.turns import Paused, TurnEnded, VadConfig
from voxcall.engine.voice_in import VoiceInput, gate

RATE = 16000
FRAME = 512


def tone(dbfs: float, samples: int = FRAME) -> bytes:
    amplitude = 32768 * 10 ** (dbfs / 20) * np.sqrt(2)  # RMS at `dbfs`
    return (np.sin(np.arange(samples) * 2 * np.pi * 300 / RATE) * amplitude).astype("<i2").tobytes()


def test_frames_under_the_floor_are_silence_and_louder_ones_keep_their_probability() -> None:
    assert gate(0.9, tone(-76), -65) == 0.0
    assert gate(0.9, b"\0\0" * FRAME, -65) == 0.0
    assert gate(0.9, tone(-55), -65) == 0.9
    assert gate(0.2, tone(-20), -65) == 0.2
    assert gate(0.9, b"\0\0" * FRAME, None) == 0.9  # no floor: the VAD alone


class LaggingVAD:
    """Says speech for loud frames and, like Silero's state, for the next three frames after them."""

    sample_rate = RATE
    frame_samples = FRAME

    def __init__(self) -> None:
        self.hangover = 0
        self.frames = 0

    def probability(self, frame: bytes) -> float:
        self.frames += 1
        loud = np.abs(np.frombuffer(frame, dtype="<i2")).max() > 3000
        self.hangover = 4 if loud else max(0, self.hangover - 1)
        return 1.0 if loud or self.hangover else 0.0

    def reset(self) -> None:
        self.hangover = 0


def _trailing_frames(floor: float | None) -> tuple[int, int]:
    events: list[object] = []
    vad = LaggingVAD()
    voice = VoiceInput(vad, VadConfig(silence_floor_dbfs=floor), input_rate=RATE, emit=lambda e, at: events.append(e))
    voice.push(tone(-10, FRAME * 20) + b"\0\0" * FRAME * 20)
    ended = [e for e in events if isinstance(e, TurnEnded)]
    paused = [e for e in events if isinstance(e, Paused)]
    assert len(ended) == 1 and len(paused) == 1
    return ended[0].voiced_frames, vad.frames


async def test_the_turn_ends_without_the_vads_hangover_and_the_vad_still_sees_every_frame() -> None:
    assert _trailing_frames(None) == (23, 40)  # 20 loud frames + 3 of hangover counted as speech
    assert _trailing_frames(-65) == (20, 40)  # the hangover over digital silence is silence
