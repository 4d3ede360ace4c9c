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
from voxcall.protocol.hygiene import MAX_DEPTH
from voxcall.protocol.realtime import Debug, Ping, Pong, dump, parse_client, parse_server
from voxcall.protocol.rest import EnabledDataMessages

__all__ = [
    "DEFAULT_ENABLED",
    "MAX_TEXT_FRAME",
    "AudioIn",
    "BadMessage",
    "ClientConnection",
    "InboundLimits",
    "ServerConnection",
    "Throttled",
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


@dataclass(frozen=True, slots=True)
class Throttled:
    """Client frames dropped for going over the rate limits since the last report (at most one a second)."""

    text_frames: int
    audio_frames: int
    total: int
    """Every frame dropped on this connection so far."""


@dataclass(frozen=True, slots=True)
class InboundLimits:
    """Per-connection rate limits on client frames, per second; each bucket holds `burst_seconds` worth."""

    text_frames: float = 50.0
    text_bytes: float = 256 * 1024
    audio_frames: float = 500.0
    burst_seconds: float = 2.0


class _Bucket:
    """A token bucket on a clock the caller passes in."""

    __slots__ = ("at", "capacity", "level", "rate")

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate, self.capacity, self.level = rate, capacity, capacity
        self.at: float | None = None

    def refill(self, now: float) -> None:
        if self.at is not None and now > self.at:
            self.level = min(self.capacity, self.level + (now - self.at) * self.rate)
        self.at = now if self.at is None else max(self.at, now)


class _Limiter:
    REPORT_EVERY = 1.0

    def __init__(self, limits: InboundLimits, max_text: int) -> None:
        burst = limits.burst_seconds
        self.limits = limits
        self.text = _Bucket(limits.text_frames, max(1.0, limits.text_frames * burst))
        self.bytes = _Bucket(limits.text_bytes, max(limits.text_bytes * burst, 2.0 * max_text))
        self.audio = _Bucket(limits.audio_frames, max(1.0, limits.audio_frames * burst))
        self.dropped = {"text": 0, "audio": 0}
        self.total = 0
        self.reported_at: float | None = None

    def allow_text(self, size: int, now: float) -> bool:
        self.text.refill(now)
        self.bytes.refill(now)
        if self.text.level < 1 or self.bytes.level < size:
            return self._drop("text")
        self.text.level -= 1
        self.bytes.level -= size
        return True

    def allow_audio(self, now: float) -> bool:
        self.audio.refill(now)
        if self.audio.level < 1:
            return self._drop("audio")
        self.audio.level -= 1
        return True

    def _drop(self, kind: str) -> bool:
        self.dropped[kind] += 1
        self.total += 1
        return False

    def report(self, now: float) -> Throttled | None:
        """The drops not yet reported, at most once every REPORT_EVERY seconds."""
        if not self.total or not any(self.dropped.values()):
            return None
        if self.reported_at is not None and now - self.reported_at < self.REPORT_EVERY:
            return None
        self.reported_at = now
        report = Throttled(self.dropped["text"], self.dropped["audio"], self.total)
        self.dropped = {"text": 0, "audio": 0}
        return report


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

    With `limits`, frames received with a `now` (seconds on any monotonic clock) are
    rate limited: frames over the limits are dropped unparsed, and at most once a
    second a `Throttled` event and a `debug` message say how many.
    """

    def __init__(
        self,
        enabled: frozenset[str] = DEFAULT_ENABLED,
        *,
        max_text: int = MAX_TEXT_FRAME,
        max_depth: int = MAX_DEPTH,
        limits: InboundLimits | None = None,
    ) -> None:
        super().__init__()
        self.enabled = enabled
        self.max_text = max_text
        self.max_depth = max_depth
        self._limiter = _Limiter(limits, max_text) if limits is not None else None
        self._odd = b""

    def receive_text(self, text: str, *, now: float | None = None) -> None:
        """Take one client text frame."""
        size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        if not self._admit(now, size):
            return
        if size > self.max_text:
            self._bad(f"text frame of {size} bytes is over the {self.max_text}-byte limit")
            return
        try:
            message = parse_client(text, max_depth=self.max_depth)
        except ProtocolError as exc:
            self._bad(str(exc))
            return
        if isinstance(message, Ping):
            self.send(Pong(timestamp=message.timestamp))
            return
        self._events.append(message)

    def receive_bytes(self, data: bytes, *, now: float | None = None) -> None:
        """Take one binary frame of PCM; an odd trailing byte waits for the next frame."""
        if not self._admit(now, None):
            return
        if not self._odd and not len(data) % 2:
            if data:
                self._events.append(AudioIn(data))  # the usual frame: no copies
            return
        data = self._odd + data
        cut = len(data) - (len(data) % 2)
        self._odd = data[cut:]
        if cut:
            self._events.append(AudioIn(data[:cut]))

    def _admit(self, now: float | None, text_size: int | None) -> bool:
        limiter = self._limiter
        if limiter is None or now is None:
            return True
        allowed = limiter.allow_audio(now) if text_size is None else limiter.allow_text(text_size, now)
        report = limiter.report(now)
        if report is not None:
            self._events.append(report)
            rates = limiter.limits
            self.send(Debug(message=f"Dropped {report.text_frames + report.audio_frames} client frames over the rate limits "
                                    f"({rates.text_frames:g} text frames, {rates.text_bytes:g} bytes of text and "
                                    f"{rates.audio_frames:g} audio frames a second)"))
        return allowed

    def send(self, message: BaseModel | bytes) -> bool:
        """Queue a server message (or PCM bytes); returns False if its type is disabled.

        A message that cannot be written as strict JSON (a non-finite number) is dropped too.
        """
        if isinstance(message, bytes):
            self._outgoing.append(message)
            return True
        kind = getattr(message, "type", None)
        if kind not in self.enabled:
            return False
        try:
            self._outgoing.append(dump(message))  # type: ignore[arg-type]
        except ValueError:
            return False
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
