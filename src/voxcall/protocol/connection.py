"""Sans-I/O realtime connections (STYLE.md rule 1): text and bytes in, events and frames out.

No sockets, no `await`: the server and the SDK drive these objects from their
own I/O loops, and the tests drive them with plain strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from voxcall.errors import ProtocolError
from voxcall.protocol.realtime import Debug, Ping, Pong, dump, parse_client, parse_server
from voxcall.protocol.rest import EnabledDataMessages

__all__ = [
    "DEFAULT_ENABLED",
    "MAX_TEXT_FRAME",
    "AudioIn",
    "BadMessage",
    "ClientConnection",
    "ServerConnection",
    "enabled_messages",
]

MAX_TEXT_FRAME = 64 * 1024
"""Largest text frame accepted (PROTOCOL.md 2.4: accept at least 64 KB)."""

# EnabledDataMessages flag -> wire type (PROTOCOL.md 1.5.3, 2.6, 2.9).
_FLAGS = {
    "pong": "pong",
    "state": "state",
    "transcript": "transcript",
    "clientToolInvocation": "client_tool_invocation",
    "dataConnectionToolInvocation": "data_connection_tool_invocation",
    "playbackClearBuffer": "playback_clear_buffer",
    "callStarted": "call_started",
    "debug": "debug",
    "callEvent": "call_event",
    "toolUsed": "tool_used",
    "userStartedSpeaking": "user_started_speaking",
    "userStoppedSpeaking": "user_stopped_speaking",
    "invokingTool": "invoking_tool",
}
DEFAULT_ENABLED = frozenset(
    ["pong", "state", "transcript", "client_tool_invocation", "playback_clear_buffer", "call_started"]
)


def enabled_messages(configured: EnabledDataMessages | None = None, extra: Iterable[str] = ()) -> frozenset[str]:
    """The server message types a connection may send.

    Args:
        configured: the call's `medium.*.dataMessages`, which can turn defaults on or off.
        extra: names from the join URL's `experimentalMessages`/`additionalMessages`,
            as flag names (`callEvent`) or wire types (`call_event`); comma lists allowed.
    """
    enabled = set(DEFAULT_ENABLED)
    if configured is not None:
        for flag, value in configured.wire().items():
            kind = _FLAGS.get(flag)
            if kind is not None:
                (enabled.add if value else enabled.discard)(kind)
    for item in extra:
        for name in item.split(","):
            name = name.strip()
            if name:
                enabled.add(_FLAGS.get(name, name))
    return frozenset(enabled)


@dataclass(frozen=True, slots=True)
class AudioIn:
    """A chunk of inbound PCM (s16le mono), always an even number of bytes."""

    pcm: bytes


@dataclass(frozen=True, slots=True)
class BadMessage:
    """A client text frame that was dropped; `reason` says why, for logs and `debug`."""

    reason: str


class _Connection:
    def __init__(self) -> None:
        self._outgoing: list[str | bytes] = []
        self._events: list[Any] = []

    def data_to_send(self) -> list[str | bytes]:
        """Frames to write, in order (text frames as str, audio as bytes); clears the buffer."""
        out, self._outgoing = self._outgoing, []
        return out

    def events_received(self) -> list[Any]:
        """Events parsed so far, in order; clears the buffer."""
        events, self._events = self._events, []
        return events


class ServerConnection(_Connection):
    """The server end of a join-URL WebSocket.

    Pings are answered inside (the pong echoes the timestamp unchanged). A bad
    text frame never raises: it becomes a `BadMessage` event, and a `debug`
    message when debug is enabled. Outbound messages of disabled types are dropped.
    """

    def __init__(self, enabled: frozenset[str] = DEFAULT_ENABLED, *, max_text: int = MAX_TEXT_FRAME) -> None:
        super().__init__()
        self.enabled = enabled
        self.max_text = max_text
        self._odd = b""

    def receive_text(self, text: str) -> None:
        """Take one client text frame."""
        if len(text) > self.max_text or len(text.encode("utf-8", "surrogatepass")) > self.max_text:
            self._bad(f"text frame of {len(text.encode('utf-8', 'surrogatepass'))} bytes is over the {self.max_text}-byte limit")
            return
        try:
            message = parse_client(text)
        except ProtocolError as exc:
            self._bad(str(exc))
            return
        if isinstance(message, Ping):
            self.send(Pong(timestamp=message.timestamp))
            return
        self._events.append(message)

    def receive_bytes(self, data: bytes) -> None:
        """Take one binary frame of PCM; an odd trailing byte waits for the next frame."""
        data = self._odd + data
        cut = len(data) - (len(data) % 2)
        self._odd = data[cut:]
        if cut:
            self._events.append(AudioIn(data[:cut]))

    def send(self, message: BaseModel | bytes) -> bool:
        """Queue a server message (or PCM bytes); returns False if its type is disabled."""
        if isinstance(message, bytes):
            self._outgoing.append(message)
            return True
        kind = getattr(message, "type", None)
        if kind not in self.enabled:
            return False
        self._outgoing.append(dump(message))  # type: ignore[arg-type]
        return True

    def _bad(self, reason: str) -> None:
        self._events.append(BadMessage(reason))
        self.send(Debug(message=f"Ignored a client message: {reason}"))


class ClientConnection(_Connection):
    """The client end: parses server messages, serialises client messages."""

    def receive_text(self, text: str) -> None:
        """Take one server text frame; a malformed one becomes a `BadMessage` event."""
        try:
            self._events.append(parse_server(text))
        except ProtocolError as exc:
            self._events.append(BadMessage(str(exc)))

    def receive_bytes(self, data: bytes) -> None:
        """Take one binary frame of agent audio."""
        if data:
            self._events.append(AudioIn(data))

    def send(self, message: BaseModel | bytes) -> None:
        """Queue a client message or PCM bytes."""
        self._outgoing.append(message if isinstance(message, bytes) else dump(message))  # type: ignore[arg-type]
