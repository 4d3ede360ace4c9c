"""A scripted voice client for tests: streams WAV speech in real time over the join socket, records what comes back."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import websockets

from voxcall.audio import read_wav, resample

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "speech"
CHUNK_MS = 20


def speech(name: str, rate: int) -> bytes:
    pcm, source_rate = read_wav(str(FIXTURES / name))
    return resample(pcm, source_rate, rate)


def first_loud_offset(pcm: bytes, rate: int, level: int = 1000) -> float:
    """Seconds until the first sample louder than `level` (the speech onset)."""
    samples = np.abs(np.frombuffer(pcm, dtype="<i2"))
    loud = np.nonzero(samples > level)[0]
    return float(loud[0]) / rate if loud.size else 0.0


def last_loud_offset(pcm: bytes, rate: int, level: int = 1000) -> float:
    samples = np.abs(np.frombuffer(pcm, dtype="<i2"))
    loud = np.nonzero(samples > level)[0]
    return float(loud[-1] + 1) / rate if loud.size else 0.0


@dataclass
class VoiceClient:
    """Sends silence continuously (like a real microphone) and speech when asked."""

    ws: Any
    input_rate: int
    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    audio: list[tuple[float, int]] = field(default_factory=list)
    _queue: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    _started: list[asyncio.Future[float]] = field(default_factory=list)

    async def run(self) -> None:
        await asyncio.gather(self._send_loop(), self._receive_loop())

    async def _send_loop(self) -> None:
        chunk = self.input_rate * CHUNK_MS // 1000 * 2
        silence = b"\x00" * chunk
        pending = b""
        start = time.monotonic()
        sent = 0
        while True:
            fresh = not pending and not self._queue.empty()
            if fresh:
                pending = self._queue.get_nowait()
            piece, pending = (pending[:chunk], pending[chunk:]) if pending else (silence, b"")
            piece = piece.ljust(chunk, b"\x00")
            try:
                await self.ws.send(piece)
            except websockets.ConnectionClosed:
                return
            if fresh and self._started:
                self._started.pop(0).set_result(time.monotonic())
            sent += 1
            await asyncio.sleep(max(0.0, start + sent * CHUNK_MS / 1000 - time.monotonic()))

    async def _receive_loop(self) -> None:
        try:
            async for frame in self.ws:
                now = time.monotonic()
                if isinstance(frame, bytes):
                    self.audio.append((now, len(frame)))
                else:
                    self.messages.append((now, json.loads(frame)))
        except websockets.ConnectionClosed:
            return

    def say(self, pcm: bytes) -> asyncio.Future[float]:
        """Queue speech; the future gets the monotonic time its first chunk actually went out."""
        started: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._started.append(started)
        self._queue.put_nowait(pcm)
        return started

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for _, m in self.messages if m["type"] == kind]

    async def until(self, predicate: Any, timeout: float = 60) -> tuple[float, dict[str, Any]]:
        seen = 0
        async with asyncio.timeout(timeout):
            while True:
                for at, message in self.messages[seen:]:
                    if predicate(message):
                        return at, message
                seen = len(self.messages)
                await asyncio.sleep(0.01)

    def agent_finals(self) -> list[dict[str, Any]]:
        return [m for m in self.of("transcript") if m["role"] == "agent" and m["final"]]
