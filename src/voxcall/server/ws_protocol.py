"""uvicorn's sans-I/O WebSocket protocol, with reading paused only when messages pile up.

uvicorn (0.54) pauses the socket after every message it queues for the app and
resumes it when the app has read the queue empty: for a call that sends 50 audio
frames a second, that is 100 epoll changes a second per call, a tenth of a busy
event loop's time. `BufferedWebSocketProtocol` lets up to `HIGH_WATER` messages
wait before it pauses, so backpressure stays (a call that stops reading still
stops the socket, with at most that many frames held) and the steady stream of
small frames costs no system calls beyond the reads.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

__all__ = ["HIGH_WATER", "BufferedWebSocketProtocol"]

HIGH_WATER = 32
"""Messages that may wait for the app before the socket is paused (about 0.6 s of 20 ms audio frames)."""


class BufferedWebSocketProtocol(WebSocketsSansIOProtocol):
    """`WebSocketsSansIOProtocol` that pauses reading at `HIGH_WATER` queued messages instead of at one."""

    def send_receive_event_to_app(self) -> None:
        paused = self.read_paused
        self.read_paused = True  # the parent queues the message, and pauses only if this is False
        try:
            super().send_receive_event_to_app()
        finally:
            self.read_paused = paused
        if not self.read_paused and self.queue.qsize() >= HIGH_WATER:
            self.read_paused = True
            self.transport.pause_reading()
