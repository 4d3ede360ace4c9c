"""A carrier on the other end of a join URL: one asyncio client that speaks any `Dialect`.

Like the carrier's media server it streams the caller's audio in real time (20 ms frames,
silence between utterances, as a phone line does), plays the agent's audio in real time
from a queue, acknowledges each mark or checkpoint when the audio queued before it has
played (at once when nothing is queued), and on a clear drops the queued audio, handing
back the queued marks where the carrier does so (Twilio, Telnyx) and answering
`clearedAudio` where it does (Plivo). Everything it sees is recorded with its arrival time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import websockets

from tests.telephony.dialects import Dialect

TICK = 0.02


@dataclass
class CarrierSimulator:
    ws: Any
    dialect: Dialect
    play: bool = True
    """Play agent audio in real time and acknowledge marks; False leaves acknowledging to the test."""
    audio: list[tuple[float, bytes]] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)
    acked: list[tuple[float, str]] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    dtmf_out: list[str] = field(default_factory=list)
    played: float = 0.0
    close: tuple[int, str] | None = None
    _queue: deque[tuple[str, Any]] = field(default_factory=deque)
    _mic: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    _said: list[asyncio.Future[float]] = field(default_factory=list)

    async def open(self) -> None:
        """What the carrier sends first: `connected` (where it has one), then `start`."""
        connected = self.dialect.connected()
        if connected is not None:
            await self.send(connected)
        await self.send(self.dialect.start())

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def run(self) -> None:
        """Until the socket closes."""
        others = [asyncio.create_task(self._microphone())] + ([asyncio.create_task(self._player())] if self.play else [])
        try:
            await self._receive()
        finally:
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

    # ------------------------------------------------------------ caller side

    def say(self, pcm: bytes) -> asyncio.Future[float]:
        """Queue speech (PCM at the dialect's rate); the future gets the time its first frame went out."""
        sent: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._said.append(sent)
        self._mic.put_nowait(pcm)
        return sent

    async def press(self, digits: str, gap: float = 0.12) -> None:
        for digit in digits:
            await self.send(self.dialect.dtmf(digit))
            await asyncio.sleep(gap)

    async def hang_up(self) -> None:
        """The caller hangs up: `stop` where the carrier sends one, then the socket closes."""
        stop = self.dialect.stop()
        if stop is not None:
            await self.send(stop)
        await self.ws.close()

    async def ack(self, name: str) -> None:
        await self.send(self.dialect.ack(name))
        self.acked.append((time.monotonic(), name))

    async def _microphone(self) -> None:
        size = self.dialect.frame_bytes(20)
        pending, start, sent = b"", time.monotonic(), 0
        while True:
            fresh = not pending and not self._mic.empty()
            if fresh:
                pending = self._mic.get_nowait()
            piece, pending = (pending[:size], pending[size:]) if pending else (b"", b"")
            try:
                await self.send(self.dialect.media(piece.ljust(size, b"\x00"), int(sent * 20)))
            except websockets.ConnectionClosed:
                return
            if fresh and self._said:
                self._said.pop(0).set_result(time.monotonic())
            sent += 1
            await asyncio.sleep(max(0.0, start + sent * TICK - time.monotonic()))

    # ------------------------------------------------------------ carrier side

    async def _receive(self) -> None:
        try:
            async for frame in self.ws:
                assert isinstance(frame, str), "carriers get text frames only"
                await self._handle(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            if self.ws.close_code is not None:
                self.close = (self.ws.close_code, self.ws.close_reason or "")

    async def _handle(self, text: str) -> None:
        now = time.monotonic()
        out = self.dialect.read(text)
        if out.kind == "media":
            self.audio.append((now, out.pcm))
            self._queue.append(("audio", out.pcm))
        elif out.kind == "mark":
            self.marks.append((now, out.name))
            self._queue.append(("mark", out.name))
        elif out.kind == "dtmf":
            self.dtmf_out.append(out.digits)
        else:
            self.clears.append(now)
            returned = [item for kind, item in self._queue if kind == "mark"]
            self._queue.clear()
            if self.dialect.echoes_marks_on_clear and self.play:
                for name in returned:
                    await self.ack(name)
            cleared = self.dialect.cleared()
            if self.dialect.answers_clear and cleared is not None:
                await self.send(cleared)

    async def _player(self) -> None:
        size = self.dialect.frame_bytes(20)
        start, ticks = time.monotonic(), 0
        while True:
            budget = size
            while self._queue and (budget > 0 or self._queue[0][0] == "mark"):
                kind, item = self._queue.popleft()
                if kind == "mark":
                    try:
                        await self.ack(item)
                    except websockets.ConnectionClosed:
                        return
                    continue
                taken = item[:budget]
                if len(item) > budget:
                    self._queue.appendleft(("audio", item[budget:]))
                budget -= len(taken)
                self.played += len(taken) / 2 / self.dialect.rate
            ticks += 1
            await asyncio.sleep(max(0.0, start + ticks * TICK - time.monotonic()))

    # ------------------------------------------------------------ reading what happened

    def audio_seconds(self, after: float = 0.0) -> float:
        return sum(len(pcm) for t, pcm in self.audio if t > after) / 2 / self.dialect.rate

    async def until(self, predicate: Any, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)
