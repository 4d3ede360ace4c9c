"""PCM16 helpers: plain functions on s16le mono bytes, plus a streaming resampler (soxr)."""

from __future__ import annotations

import io
import wave

import numpy as np

__all__ = ["Resampler", "duration", "frame_bytes", "read_wav", "resample", "silence", "to_float32", "wav_excerpt", "write_wav"]


def frame_bytes(rate: int, ms: float) -> int:
    """Bytes of s16le mono audio lasting `ms` milliseconds at `rate`."""
    return int(rate * ms / 1000) * 2


def duration(pcm: bytes, rate: int) -> float:
    """Seconds of audio in `pcm`."""
    return len(pcm) / 2 / rate


def silence(rate: int, seconds: float) -> bytes:
    return b"\x00\x00" * int(rate * seconds)


def to_float32(pcm: bytes) -> np.ndarray:
    """s16le → float32 in [-1, 1]."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """One-shot high-quality resampling of a whole buffer."""
    if from_rate == to_rate or not pcm:
        return pcm
    import soxr

    out = soxr.resample(np.frombuffer(pcm, dtype="<i2"), from_rate, to_rate, quality="HQ")
    return np.asarray(out, dtype="<i2").tobytes()


class Resampler:
    """Streaming resampler: feed chunks of any size, get resampled chunks with state kept between them.

    `quality` is soxr's: "HQ" by default; "MQ" holds back less audio (26 ms instead of 66 ms
    from 8 to 16 kHz), which matters where the output feeds a real-time decision.
    """

    def __init__(self, from_rate: int, to_rate: int, *, quality: str = "HQ") -> None:
        self.from_rate, self.to_rate = from_rate, to_rate
        self._stream = None
        if from_rate != to_rate:
            import soxr

            self._stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16", quality=quality)

    def feed(self, pcm: bytes, *, last: bool = False) -> bytes:
        if self._stream is None:
            return pcm
        out = self._stream.resample_chunk(np.frombuffer(pcm, dtype="<i2"), last=last)
        return np.asarray(out, dtype="<i2").tobytes()


def read_wav(data: bytes | str) -> tuple[bytes, int]:
    """Read a mono or stereo 16-bit WAV (path or bytes); returns mono s16le PCM and its rate."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    with wave.open(source, "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError("only 16-bit PCM WAV files are supported")
        rate, channels = wav.getframerate(), wav.getnchannels()
        pcm = wav.readframes(wav.getnframes())
    if channels > 1:
        samples = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels).mean(axis=1)
        pcm = samples.astype("<i2").tobytes()
    return pcm, rate


def wav_excerpt(path: str, start: float, end: float, channel: int) -> bytes:
    """One channel of a 16-bit WAV file from `start` to `end` seconds, as a mono WAV (clipped to the file).

    Reads only that part of the file.
    """
    with wave.open(path, "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError("only 16-bit PCM WAV files are supported")
        rate, channels, frames = wav.getframerate(), wav.getnchannels(), wav.getnframes()
        if not 0 <= channel < channels:
            raise ValueError(f"the file has {channels} channel(s), not a channel {channel}")
        first = min(frames, max(0, round(start * rate)))
        last = min(frames, max(first, round(end * rate)))
        wav.setpos(first)
        pcm = wav.readframes(last - first)
    samples = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels)[:, channel]
    return write_wav(samples.tobytes(), rate)


def write_wav(pcm: bytes, rate: int, channels: int = 1) -> bytes:
    """Wrap s16le PCM in a WAV container."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return out.getvalue()
