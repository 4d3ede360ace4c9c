"""uvicorn's sans-I/O WebSocket protocol, with reading paused only when messages pile up, and data frames
handed to a hosted call at once.

uvicorn (0.54) pauses the socket after every message it queues for the app and
resumes it when the app has read the queue empty: for a call that sends 50 audio
frames a second, that is 100 epoll changes a second per call, a tenth of a busy
event loop's time. `BufferedWebSocketProtocol` lets up to `HIGH_WATER` messages
wait before it pauses, so backpressure stays (a call that stops reading still
stops the socket, with at most that many frames held) and the steady stream of
small frames costs no system calls beyond the reads.

Going through the ASGI queue also costs every frame a queue entry, a future, a
wake-up of the reading task and Starlette's state checks, which was a large part of
the inbound frame path. The call host reads frames synchronously instead
(`DirectFrames`, in the scope's extensions under `DIRECT_FRAMES`): once it sets a
`sink`, each data frame goes straight to it from `data_received`, as long as nothing
is still queued for the app (so frames keep their order). Everything else
(disconnects, and frames while no sink is set) goes through the queue as before.
The sink never blocks: the host takes a frame into the call (`Call.receive`, which
never awaits) and leaves the writing of any reply to a task.

The other way, `DirectFrames.write` puts a data frame on the socket at once, without
the ASGI send's layers (Starlette's state checks, the exception wrapper, uvicorn's
awaited send), when nothing stands in the way; it says False when the socket is not
open for writing, or is applying backpressure, and the host then sends the usual way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState

__all__ = ["DIRECT_FRAMES", "HIGH_WATER", "BufferedWebSocketProtocol", "DirectFrames"]

logger = logging.getLogger(__name__)

HIGH_WATER = 32
"""Messages that may wait for the app before the socket is paused (about 0.6 s of 20 ms audio frames)."""
DIRECT_FRAMES = "voxcall.direct_frames"
"""The ASGI scope extension holding the connection's `DirectFrames`."""


class DirectFrames:
    """Where a connection's data frames go once the app sets `sink` (text frames as str, binary as bytes),
    and `write`, which sends one at once if it can (True) or not at all (False)."""

    __slots__ = ("sink", "write")

    def __init__(self, write: Callable[[str | bytes], bool]) -> None:
        self.sink: Callable[[str | bytes], None] | None = None
        self.write = write


class BufferedWebSocketProtocol(WebSocketsSansIOProtocol):
    """`WebSocketsSansIOProtocol` that pauses reading at `HIGH_WATER` queued messages instead of at one,
    and hands data frames to a `DirectFrames.sink` when the app has set one."""

    direct: DirectFrames | None = None

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # only an accepted upgrade has one; the app's task has not run yet
        if scope is not None:
            self.direct = DirectFrames(self._write_now)
            scope["extensions"][DIRECT_FRAMES] = self.direct

    def _write_now(self, frame: str | bytes) -> bool:
        """Send one data frame now, as `send` would for `websocket.send`; False when that would wait or fail."""
        if not self.handshake_complete or self.close_sent or self.disconnected or self.initial_response is not None \
                or not self.writable.is_set():
            return False
        try:
            if isinstance(frame, bytes):
                self.conn.send_binary(frame)
            else:
                self.conn.send_text(frame.encode())
        except InvalidState:
            return False
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True

    def send_receive_event_to_app(self) -> None:
        sink = self.direct.sink if self.direct is not None else None
        if sink is not None and not self.close_sent and self.queue.empty():
            data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
            frame: str | bytes = data
            if self.curr_msg_data_type == "text":
                try:
                    frame = data.decode()
                except UnicodeDecodeError:
                    frame = None  # type: ignore[assignment]  # the queue path closes the connection with 1007
            if frame is not None:
                self.frames = []
                try:
                    sink(frame)
                except Exception:  # the app's bug: back to the queue, where the app's own reader sees the frames
                    logger.exception("a direct frame sink failed")
                    self.direct.sink = None  # type: ignore[union-attr]
                return
        paused = self.read_paused
        self.read_paused = True  # the parent queues the message, and pauses only if this is False
        try:
            super().send_receive_event_to_app()
        finally:
            self.read_paused = paused
        if not self.read_paused and self.queue.qsize() >= HIGH_WATER:
            self.read_paused = True
            self.transport.pause_reading()
