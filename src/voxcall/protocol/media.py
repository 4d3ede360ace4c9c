"""Sans-I/O media connections: one per call medium, all hosted the same way.

A `MediaConnection` turns the frames of one medium's socket into the engine's
events and the engine's output into that medium's frames. No sockets, no
`await`: `server.host` drives any of them over a WebSocket, and tests drive
them with plain strings and bytes.

    events = media.receive(frame)       # AudioIn (PCM at the call's input rate), client messages, BadMessage, MediaStop
    media.send(message_or_pcm)          # engine output: a server message, or PCM at the call's output rate
    frames = media.data_to_send()       # what to write, in order (str = text frame, bytes = binary frame)

Today's medium is `serverWebSocket` (PROTOCOL.md 2); the carriers (Twilio,
Telnyx, Plivo, Exotel: TELEPHONY.md 1.5) translate their JSON envelopes and
codecs in the same three methods, and say `MediaStop` for their `stop` message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from voxcall.protocol.connection import ServerConnection

__all__ = ["MediaConnection", "MediaStop", "ServerWebSocketMedia"]


@dataclass(frozen=True, slots=True)
class MediaStop:
    """The far end said the media stream is over (a carrier's `stop`): the call ends as `hangup`."""

    reason: str = "media stream stopped"


@runtime_checkable
class MediaConnection(Protocol):
    """One call's media socket, seen as frames in and frames out."""

    medium: str
    """The `CallMedium` field this connection speaks, e.g. "serverWebSocket"."""

    def receive(self, frame: str | bytes) -> list[object]:
        """Take one inbound frame; return the engine events it carries, in order. Never raises."""
        ...

    def send(self, output: BaseModel | bytes) -> None:
        """Queue one engine output: a server message (dropped if the medium does not carry it) or PCM."""
        ...

    def data_to_send(self) -> list[str | bytes]:
        """Frames to write, in order; clears the buffer."""
        ...


class ServerWebSocketMedia:
    """The `serverWebSocket` medium: Ultravox data messages as text frames, raw PCM as binary frames.

    A thin adapter over `ServerConnection`, which keeps the protocol rules
    (auto-pong, enabled messages, frame limits). Audio already is at the call's
    rates (`inputSampleRate` / `outputSampleRate`), so it passes through. There
    is no stop message: the socket closing is the end of the stream.
    """

    medium = "serverWebSocket"

    def __init__(self, connection: ServerConnection, *, clock: Callable[[], float] | None = None) -> None:
        self.connection = connection
        self._clock = clock
        """Receive times for the connection's rate limits (the server passes the event loop's clock)."""

    def receive(self, frame: str | bytes) -> list[object]:
        now = self._clock() if self._clock is not None else None
        if isinstance(frame, str):
            self.connection.receive_text(frame, now=now)
        else:
            self.connection.receive_bytes(frame, now=now)
        return self.connection.events_received()

    def send(self, output: BaseModel | bytes) -> None:
        self.connection.send(output)

    def data_to_send(self) -> list[str | bytes]:
        return self.connection.data_to_send()
