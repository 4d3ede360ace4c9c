"""File and in-memory audio for `UltravoxSession`: for scripts, machines without a sound card, and tests.

- `WavFileSource` plays a WAV file into the call as a microphone would: 20 ms
  chunks paced to real time, then silence for as long as the call lasts
  (a live microphone never stops; a server that hears nothing ends the call
  after its `mediaIdleTimeout`).
- `WavFileSink` records the agent's audio and writes it as a WAV file on close.
- `BytesSink` keeps the agent's audio in memory.

The sinks have no playback queue: whatever the session writes counts as
played the moment it arrives (the server already paces agent audio to real
time), so `clear()` drops nothing; it only counts the `playback_clear_buffer`s.
"""

from __future__ import annotations

import asyncio
import os
import wave
from collections.abc import AsyncIterator
from pathlib import Path

from voxcall.audio import frame_bytes, read_wav, resample, write_wav
from voxcall.client.audio import CHUNK_MS

__all__ = ["BytesSink", "WavFileSink", "WavFileSource"]


def load_wav(path: str | os.PathLike[str]) -> tuple[bytes, int]:
    """Read a 16-bit PCM WAV file (mono or stereo) as mono PCM and its rate.

    Raises:
        FileNotFoundError / OSError: the file cannot be read.
        ValueError: it is not a 16-bit PCM WAV file.
    """
    try:
        return read_wav(str(path))
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{path}: not a 16-bit PCM WAV file ({exc})") from exc
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


class WavFileSource:
    """A WAV file as the microphone: its speech, then silence, until `stop()` or the end of the call.

    The file is read at construction (so a bad path fails early) and resampled
    to `sample_rate` when the stream starts.

    Args:
        path: a 16-bit PCM WAV file, any rate, mono or stereo (mixed down).
        sample_rate: the rate to send at; None takes the call's input rate at `join_call`.
        realtime: pace chunks to real time (as a microphone does). With False the
            speech and `trailing_silence` come as fast as they are read and the stream ends.
        trailing_silence: seconds of silence after the speech before `sent` is set
            (enough for the server to decide that the user's turn ended).

    Attributes:
        sent: set once the speech and the trailing silence have gone out.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sample_rate: int | None = None,
        *,
        realtime: bool = True,
        trailing_silence: float = 2.0,
    ) -> None:
        self.path = Path(path)
        self.sample_rate: int | None = sample_rate
        self.realtime = realtime
        self.trailing_silence = max(0.0, trailing_silence)
        self._pcm, self._file_rate = load_wav(self.path)
        self._stopped = False
        self.sent = asyncio.Event()

    @property
    def speech_duration(self) -> float:
        """Seconds of audio in the file."""
        return len(self._pcm) / 2 / self._file_rate

    def stop(self) -> None:
        """End the stream after the current chunk."""
        self._stopped = True

    async def stream(self) -> AsyncIterator[bytes]:
        """Yield 20 ms chunks: the file, then silence (forever when realtime, else `trailing_silence`)."""
        rate = self.sample_rate or self._file_rate
        pcm = resample(self._pcm, self._file_rate, rate)
        size = frame_bytes(rate, CHUNK_MS)
        speech_end = len(pcm)
        silence_end = speech_end + frame_bytes(rate, 1000 * self.trailing_silence)
        silence = bytes(size)
        loop = asyncio.get_running_loop()
        start, offset, n = loop.time(), 0, 0
        self._stopped = False
        self.sent.clear()
        while not self._stopped and (self.realtime or offset < silence_end):
            if self.realtime:  # an absolute schedule: no drift, a late consumer catches up
                await asyncio.sleep(max(0.0, start + n * CHUNK_MS / 1000 - loop.time()))
            yield pcm[offset : offset + size].ljust(size, b"\x00") if offset < speech_end else silence
            offset, n = offset + size, n + 1
            if offset >= silence_end:
                self.sent.set()


class BytesSink:
    """Agent audio in memory: `data` holds everything written (speech and muted silence alike).

    Args:
        sample_rate: the rate to receive at; None takes the call's output rate at `join_call`.
    """

    def __init__(self, sample_rate: int | None = None) -> None:
        self.sample_rate: int | None = sample_rate
        self.data = bytearray()
        self.writes = 0
        self.clears = 0
        self.closed = False

    @property
    def duration(self) -> float:
        """Seconds of audio received (0 while the rate is unknown)."""
        return len(self.data) / 2 / self.sample_rate if self.sample_rate else 0.0

    def write(self, data: bytes) -> None:
        """Keep `data`."""
        self.data += data
        self.writes += 1

    def clear(self) -> None:
        """Count a `playback_clear_buffer`; written audio was already played and stays."""
        self.clears += 1

    async def drain(self) -> None:
        """Nothing is ever queued: returns at once."""

    async def close(self) -> None:
        """Mark the sink closed (the data stays readable)."""
        self.closed = True


class WavFileSink(BytesSink):
    """Agent audio to a WAV file, written when the session closes the sink (on leaving the call).

    A `BytesSink` that also writes its `data` out: `clear()` keeps what was received.

    Args:
        path: where to write (replaced if it exists); its folder must exist.
        sample_rate: the file's rate; None takes the call's output rate at `join_call`.

    Raises:
        FileNotFoundError: the folder of `path` does not exist.
    """

    def __init__(self, path: str | os.PathLike[str], sample_rate: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"{self.path.parent}: no such folder for the output file")
        super().__init__(sample_rate)

    async def close(self) -> None:
        """Write the WAV file (once); raises OSError when it cannot be written."""
        if self.closed:
            return
        self.closed = True
        self.save()

    def save(self) -> None:
        """Write what was received so far as a mono 16-bit WAV file (at 48000 Hz if no rate was ever set)."""
        self.path.write_bytes(write_wav(bytes(self.data), self.sample_rate or 48000))
