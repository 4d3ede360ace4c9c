"""Call recording: user and agent on two time-aligned tracks, written as one stereo WAV."""

from __future__ import annotations

import numpy as np

from voxcall.audio import Resampler, write_wav

__all__ = ["Recorder"]


class Recorder:
    """Left channel: the user's audio as it arrived; right: the agent's audio where it played.

    Both tracks are kept at `rate` (16 kHz), placed on the call's loop-time axis from `started`.
    """

    def __init__(self, started: float, *, rate: int = 16000, agent_rate: int) -> None:
        self.rate = rate
        self._started = started
        self._user = bytearray()
        self._agent = bytearray()
        self._agent_resampler = Resampler(agent_rate, rate)

    def user(self, pcm: bytes) -> None:
        """Append user audio (already at `rate`); it arrives continuously, so it is contiguous."""
        self._user += pcm

    def agent(self, pcm: bytes, at: float) -> None:
        """Place agent audio (at the output rate) at loop time `at`, when the client plays it."""
        data = self._agent_resampler.feed(pcm)
        position = max(0, int((at - self._started) * self.rate)) * 2
        if len(self._agent) < position:
            self._agent += bytes(position - len(self._agent))
        self._agent[position : position + len(data)] = data

    def wav(self) -> bytes:
        """The stereo WAV of the whole call."""
        length = max(len(self._user), len(self._agent)) // 2
        stereo = np.zeros((length, 2), dtype="<i2")
        user = np.frombuffer(bytes(self._user), dtype="<i2")
        agent = np.frombuffer(bytes(self._agent), dtype="<i2")
        stereo[: len(user), 0] = user
        stereo[: len(agent), 1] = agent
        return write_wav(stereo.tobytes(), self.rate, channels=2)
