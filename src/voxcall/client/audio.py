"""Pluggable audio for `UltravoxSession`: where the microphone comes from, where the agent goes.

Both sides are structural `Protocol`s (STYLE.md rule 6): anything with the right
methods works, nothing inherits. Audio is PCM16LE mono `bytes` at the call's
`inputSampleRate` (source) and `outputSampleRate` (sink); this module does not
resample, so build the call with the rates your devices use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

__all__ = ["AudioSink", "AudioSource", "silence_like"]


@runtime_checkable
class AudioSource(Protocol):
    """Microphone-like input: yields PCM chunks in real time (about 10-20 ms each)."""

    sample_rate: int

    def stream(self) -> AsyncIterator[bytes]:
        """Yield s16le mono chunks until the source ends; the session stops iterating on leave."""
        ...


@runtime_checkable
class AudioSink(Protocol):
    """Speaker-like output for agent audio.

    `clear()` drops audio that has not been played yet (the server's
    `playback_clear_buffer` on barge-in); a sink without it just keeps playing.
    """

    def write(self, data: bytes) -> None:
        """Queue PCM for playback; must not block the event loop."""
        ...

    def clear(self) -> None:
        """Drop everything queued but not yet played."""
        ...

    async def close(self) -> None:
        """Release the device; called once when the session leaves the call."""
        ...


def silence_like(chunk: bytes) -> bytes:
    """Zeros of the same length: what a muted microphone sends and a muted speaker plays."""
    return bytes(len(chunk))
