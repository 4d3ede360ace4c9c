"""Pluggable audio for `UltravoxSession`: where the microphone comes from, where the agent goes.

Both sides are structural `Protocol`s (STYLE.md rule 6): anything with the right
methods works, nothing inherits. Audio is PCM16LE mono `bytes`.

Rates. The session knows the call's rates (`join_call(input_sample_rate=...,
output_sample_rate=...)`, which must match the call's `medium.serverWebSocket`)
and converts between them and the rate of the source or sink:

- a source or sink whose `sample_rate` is an int works at that rate; the
  session resamples (soxr, streaming) to or from the call's rate when they differ;
- one whose `sample_rate` is None takes the call's rate: the session assigns
  `sample_rate` when it joins (the file and bytes sinks and `WavFileSource` do this);
- one without a `sample_rate` attribute gets the call's rate unchanged.

Implementations: `voxcall.client.devices` (microphone and speaker through
PortAudio) and `voxcall.client.files` (WAV files and bytes, for scripts and tests).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

__all__ = ["CHUNK_MS", "AudioSink", "AudioSource", "silence_like"]

CHUNK_MS = 20
"""The chunk length the bundled sources yield, in milliseconds."""


@runtime_checkable
class AudioSource(Protocol):
    """Microphone-like input: yields PCM chunks in real time (about 10-20 ms each).

    `sample_rate` is the rate of the chunks (None: the call's input rate, assigned at join).
    """

    sample_rate: int | None

    def stream(self) -> AsyncIterator[bytes]:
        """Yield s16le mono chunks until the source ends; the session stops iterating on leave."""
        ...


@runtime_checkable
class AudioSink(Protocol):
    """Speaker-like output for agent audio.

    `clear()` drops audio that has not been played yet (the server's
    `playback_clear_buffer` on barge-in); a sink without a playback queue keeps
    what it was given, since that is what was played. Optional members: a
    `sample_rate` attribute (see the module docstring) and `async drain()`,
    which waits until queued audio has played (the CLI uses it before hanging up).
    """

    def write(self, data: bytes) -> None:
        """Queue PCM for playback; must not block the event loop."""
        ...

    def clear(self) -> None:
        """Drop everything queued but not yet played."""
        ...

    async def close(self) -> None:
        """Release the device (or write the file); called once when the session leaves the call."""
        ...


def silence_like(chunk: bytes) -> bytes:
    """Zeros of the same length: what a muted microphone sends and a muted speaker plays."""
    return bytes(len(chunk))
