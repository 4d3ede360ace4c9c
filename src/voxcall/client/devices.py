"""The computer's microphone and speaker for `UltravoxSession`, through PortAudio (`sounddevice`).

`sounddevice` is an optional dependency (`pip install 'voxcall[local]'`) and
is imported only when a device is opened. Whatever goes wrong on the way to a
working device (the package or the PortAudio library missing, no default
device, a rate the device refuses) becomes one `AudioDeviceError` with a
readable message, raised by the constructor, so a program can fall back to
files (`voxcall.client.files`) before it joins a call.

Threads: PortAudio calls our callbacks on its own thread. The microphone hands
chunks to the event loop with `call_soon_threadsafe`; the speaker reads from a
`PlaybackBuffer` under a lock. Both buffers are bounded.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

from voxcall.audio import frame_bytes
from voxcall.client.audio import CHUNK_MS
from voxcall.errors import VoxcallError

__all__ = ["AudioDeviceError", "MicrophoneSource", "PlaybackBuffer", "SpeakerSink"]

logger = logging.getLogger(__name__)


class AudioDeviceError(VoxcallError):
    """No usable microphone or speaker: PortAudio or the device is missing, or refuses the settings."""


def _sounddevice(kind: str) -> ModuleType:
    """Import `sounddevice`, turning a missing package or PortAudio library into `AudioDeviceError`."""
    try:
        return importlib.import_module("sounddevice")
    except ImportError as exc:
        raise AudioDeviceError(
            f"No audio {kind} device found: the sounddevice package is not installed (pip install 'voxcall[local]')"
        ) from exc
    except OSError as exc:  # sounddevice raises OSError("PortAudio library not found")
        raise AudioDeviceError(f"No audio {kind} device found ({exc}; install libportaudio2)") from exc


def _check(sd: ModuleType, kind: str, device: int | str | None, rate: int) -> None:
    """Ask PortAudio whether the device takes mono int16 at `rate`."""
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        check(device=device, channels=1, dtype="int16", samplerate=rate)
    except Exception as exc:  # PortAudioError or ValueError; both mean "no usable device"
        raise AudioDeviceError(f"No audio {kind} device found ({_describe(exc)})") from exc


def _describe(exc: BaseException) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    return text or type(exc).__name__


class MicrophoneSource:
    """The default input device as an `AudioSource`: 20 ms chunks of s16le mono at `sample_rate`.

    The session resamples to the call's input rate. If the event loop falls
    behind, the oldest chunks are dropped beyond `max_queued_ms` (fresh audio
    beats complete audio on a live call).

    Args:
        sample_rate: the rate to capture at (48000 suits nearly every device).
        device: a PortAudio device index or name substring; None is the default input.
        max_queued_ms: the most audio kept waiting for the event loop.

    Raises:
        AudioDeviceError: no usable input device (checked here, before any call is joined).
    """

    def __init__(self, sample_rate: int = 48000, *, device: int | str | None = None, max_queued_ms: int = 1000) -> None:
        self._sd = _sounddevice("input")
        _check(self._sd, "input", device, sample_rate)
        self.sample_rate: int | None = sample_rate  # AudioSource/AudioSink: None means "the call's rate"
        self._rate = sample_rate
        self.device = device
        self.dropped = 0
        self._max_chunks = max(1, max_queued_ms // CHUNK_MS)

    async def stream(self) -> AsyncIterator[bytes]:
        """Open the device and yield its chunks until the caller stops iterating (then it closes).

        Raises:
            AudioDeviceError: the device could not be opened.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue()

        def put(chunk: bytes) -> None:
            if queue.qsize() >= self._max_chunks:
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(chunk)

        def callback(indata: Any, frames: int, time: Any, status: Any) -> None:
            loop.call_soon_threadsafe(put, bytes(indata))

        stream = self._open(callback)
        try:
            stream.start()
            while True:
                yield await queue.get()
        finally:
            stream.stop()
            stream.close()
            if self.dropped:
                logger.warning("dropped %d microphone chunks the event loop could not take in time", self.dropped)

    def _open(self, callback: Any) -> Any:
        try:
            return self._sd.RawInputStream(
                samplerate=self.sample_rate,
                blocksize=frame_bytes(self._rate, CHUNK_MS) // 2,
                device=self.device,
                channels=1,
                dtype="int16",
                callback=callback,
            )
        except Exception as exc:
            raise AudioDeviceError(f"Could not open the audio input device ({_describe(exc)})") from exc


class PlaybackBuffer:
    """Thread-safe FIFO of PCM between the event loop (`push`) and the audio thread (`pull`).

    Bounded: beyond `max_bytes` the oldest audio is dropped (the server paces
    agent audio to real time, so this only happens when the device stalls).
    """

    def __init__(self, max_bytes: int) -> None:
        self._data = bytearray()
        self._lock = threading.Lock()
        self.max_bytes = max_bytes
        self.dropped = 0

    @property
    def queued(self) -> int:
        """Bytes waiting to be played."""
        with self._lock:
            return len(self._data)

    def push(self, pcm: bytes) -> None:
        """Queue audio for playback."""
        with self._lock:
            self._data += pcm
            excess = len(self._data) - self.max_bytes
            if excess > 0:
                excess += excess % 2  # keep sample alignment
                del self._data[:excess]
                self.dropped += excess

    def pull(self, size: int) -> bytes:
        """Take `size` bytes to play, padded with silence when less is queued."""
        with self._lock:
            out = bytes(self._data[:size])
            del self._data[:size]
        return out.ljust(size, b"\x00")

    def clear(self) -> int:
        """Drop everything queued; returns the number of bytes dropped."""
        with self._lock:
            dropped = len(self._data)
            self._data.clear()
        return dropped


class SpeakerSink:
    """The default output device as an `AudioSink`, with a playback queue that `clear()` empties.

    The device is opened on the first `write` (or `start()`), and plays silence
    whenever the queue runs dry.

    Args:
        sample_rate: the rate to play at (the session resamples the call's output rate to it).
        device: a PortAudio device index or name substring; None is the default output.
        max_buffer_s: the most audio queued before the oldest is dropped.

    Raises:
        AudioDeviceError: no usable output device (checked here, before any call is joined).
    """

    def __init__(self, sample_rate: int = 48000, *, device: int | str | None = None, max_buffer_s: float = 30.0) -> None:
        self._sd = _sounddevice("output")
        _check(self._sd, "output", device, sample_rate)
        self.sample_rate: int | None = sample_rate  # AudioSource/AudioSink: None means "the call's rate"
        self._rate = sample_rate
        self.device = device
        self.buffer = PlaybackBuffer(frame_bytes(sample_rate, 1000 * max_buffer_s))
        self._stream: Any = None

    def start(self) -> None:
        """Open and start the output stream (idempotent).

        Raises:
            AudioDeviceError: the device could not be opened.
        """
        if self._stream is not None:
            return
        try:
            self._stream = self._sd.RawOutputStream(
                samplerate=self.sample_rate,
                blocksize=frame_bytes(self._rate, CHUNK_MS) // 2,
                device=self.device,
                channels=1,
                dtype="int16",
                callback=self._callback,
            )
            self._stream.start()
        except Exception as exc:
            self._stream = None
            raise AudioDeviceError(f"Could not open the audio output device ({_describe(exc)})") from exc

    def _callback(self, outdata: Any, frames: int, time: Any, status: Any) -> None:
        """PortAudio's thread: fill the device buffer from the queue, silence when it is empty."""
        outdata[:] = self.buffer.pull(len(outdata))

    def write(self, data: bytes) -> None:
        """Queue agent audio; never blocks."""
        self.start()
        self.buffer.push(data)

    def clear(self) -> None:
        """Drop the audio not yet played (`playback_clear_buffer`)."""
        self.buffer.clear()

    async def drain(self, poll: float = CHUNK_MS / 1000) -> None:
        """Wait until the queue is empty and the device has played its own buffer."""
        while self.buffer.queued:
            await asyncio.sleep(poll)
        latency = getattr(self._stream, "latency", 0.0) if self._stream is not None else 0.0
        await asyncio.sleep(float(latency or 0.0))

    async def close(self) -> None:
        """Stop the device at once (unplayed audio is dropped; call `drain()` first to hear it)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.close()
        self.buffer.clear()
