"""What every carrier's media stream shares: JSON events, codecs, marks and bad frames.

A carrier subclass says how its `start`, `media`, `dtmf` and mark acknowledgements
are shaped and how its outbound frames look; `CarrierMedia` does the rest:

* inbound: JSON text frames → `MediaStart`, `AudioIn` (s16le at the stream's rate),
  `DtmfDigit`, `MediaStop`; anything malformed or out of order → `BadMessage`, and the
  stream goes on (repeats of one kind of problem are reported a few times, then counted);
* outbound: PCM → the carrier's media frames, each followed by a mark; the
  `playback_clear_buffer` decision → the carrier's clear; `SendDtmf` → its DTMF frame,
  where it has one;
* playback position: a mark carries the offset (in seconds of agent audio handed to
  `send`) at which it was placed; when the carrier echoes it, that audio has played.
  Marks the carrier returns because a clear dropped their audio are not counted as
  heard. `played()` is what the engine's barge-in truncation reads (None until a first
  acknowledgement, so a carrier that never acknowledges leaves the engine on its clock).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel

from voxcall import codecs
from voxcall.protocol.connection import AudioIn, BadMessage
from voxcall.protocol.media import MediaStop
from voxcall.protocol.realtime import PlaybackClearBuffer
from voxcall.protocol.telephony.events import DTMF_DIGITS, DtmfDigit, MediaRefused, MediaStart, SendDtmf

__all__ = ["CODECS", "CarrierMedia", "Codec", "StartError", "custom", "ids", "member", "rate_of"]

Json = dict[str, Any]
REPORTED = 3
"""How many times one kind of bad frame is reported before the rest are only counted."""


@dataclass(frozen=True, slots=True)
class Codec:
    name: str
    decode: Callable[[bytes], bytes]
    encode: Callable[[bytes], bytes]
    sample_bytes: int


def _same(data: bytes) -> bytes:
    return data


CODECS = {
    "mulaw": Codec("mulaw", codecs.ulaw_decode, codecs.ulaw_encode, 1),
    "alaw": Codec("alaw", codecs.alaw_decode, codecs.alaw_encode, 1),
    "l16be": Codec("l16be", codecs.l16be_to_pcm, codecs.pcm_to_l16be, 2),
    "l16le": Codec("l16le", _same, _same, 2),
}


class StartError(ValueError):
    """A `start` that cannot be used; `fatal` when no later `start` could fix it (an unsupported encoding)."""

    def __init__(self, reason: str, *, fatal: bool = False) -> None:
        super().__init__(reason)
        self.fatal = fatal


class CarrierMedia:
    """Base of the carrier media connections (see the module docstring)."""

    medium: str = ""
    sends_dtmf: ClassVar[bool] = False
    """True when the carrier can play DTMF into the call from a frame on this socket."""
    chunk_ms: ClassVar[int] = 20
    """Size of the audio chunks the engine should hand to `send`."""
    mark_events: ClassVar[frozenset[str]] = frozenset({"mark"})
    quiet_events: ClassVar[frozenset[str]] = frozenset({"connected"})
    stop_events: ClassVar[frozenset[str]] = frozenset({"stop"})
    error_events: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        self._out: list[str | bytes] = []
        self.codec: Codec | None = None
        self.sample_rate: int | None = None
        self.started = False
        self._sent = 0.0
        self._played: float | None = None
        self._marks: dict[str, float] = {}
        self._cleared: set[str] = set()
        self._mark_count = 0
        self._problems: Counter[str] = Counter()

    # ------------------------------------------------------------ carrier hooks

    def parse_start(self, message: Json) -> MediaStart:
        """Read `start`: set `codec`, `sample_rate` and the stream ids; raise StartError if unusable."""
        raise NotImplementedError

    def media_payload(self, message: Json) -> str | None:
        """The base64 payload of an inbound-track media frame; None for another track."""
        media = message.get("media")
        if not isinstance(media, dict) or not isinstance(media.get("payload"), str):
            raise ValueError("a media frame without media.payload")
        return None if media.get("track") not in (None, "inbound", "inbound_track") else media["payload"]

    def dtmf_digit(self, message: Json) -> object:
        dtmf = message.get("dtmf")
        return dtmf.get("digit") if isinstance(dtmf, dict) else None

    def mark_name(self, message: Json) -> object:
        mark = message.get("mark")
        return mark.get("name") if isinstance(mark, dict) else None

    def media_frame(self, payload: str) -> Json:
        raise NotImplementedError

    def mark_frame(self, name: str) -> Json:
        raise NotImplementedError

    def clear_frame(self) -> Json:
        raise NotImplementedError

    def dtmf_frame(self, digits: str) -> Json | None:
        return None

    def prepare_audio(self, pcm: bytes) -> bytes:
        """PCM of one outbound chunk as the carrier needs it (e.g. padded); s16le in and out."""
        return pcm

    # ------------------------------------------------------------ inbound

    def receive(self, frame: str | bytes) -> list[object]:
        """Take one frame from the carrier; return the events it carries. Never raises."""
        if isinstance(frame, bytes):
            return self._bad("binary", f"binary frames are not part of the {self.medium} media protocol: ignored")
        try:
            message = json.loads(frame)
        except ValueError:
            return self._bad("json", "a text frame that is not JSON: ignored")
        if not isinstance(message, dict) or not isinstance(message.get("event"), str):
            return self._bad("shape", "a frame that is not a JSON object with a string event: ignored")
        try:
            return self._dispatch(message["event"], message)
        except (ValueError, TypeError, KeyError) as exc:
            return self._bad(f"bad-{message['event']}", f"a malformed {message['event']!r} frame: {exc}")

    def _dispatch(self, event: str, message: Json) -> list[object]:
        if event == "start":
            return self._start(message)
        if event == "media":
            return self._media(message)
        if event == "dtmf":
            return self._dtmf(message)
        if event in self.mark_events:
            return self._acked(self.mark_name(message))
        if event in self.stop_events:
            return [MediaStop(f"{self.medium} sent {event}")]
        if event in self.quiet_events:
            return []
        if event in self.error_events:
            detail = json.dumps({k: v for k, v in message.items() if k != "event"})[:300]
            return self._bad("carrier-error", f"{self.medium} reported an error: {detail}")
        return self._bad(f"unknown-{event}", f"unknown {self.medium} event {event!r}: ignored")

    def _start(self, message: Json) -> list[object]:
        if self.started:
            return self._bad("second-start", "a second start: ignored (the stream keeps its first format)")
        try:
            start = self.parse_start(message)
        except StartError as exc:
            if exc.fatal:
                return [MediaRefused(str(exc))]
            return self._bad("bad-start", f"an unusable start: {exc}")
        self.started = True
        return [start]

    def _media(self, message: Json) -> list[object]:
        if not self.started or self.codec is None:
            return self._bad("early-media", "media before start: dropped")
        payload = self.media_payload(message)
        if payload is None:
            return []
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return self._bad("base64", "a media payload that is not base64: dropped")
        events: list[object] = []
        if len(data) % self.codec.sample_bytes:
            data = data[: len(data) - len(data) % self.codec.sample_bytes]
            events += self._bad("odd", "an odd-length 16-bit payload: its last byte was dropped")
        if data:
            events.insert(0, AudioIn(self.codec.decode(data)))
        return events

    def _dtmf(self, message: Json) -> list[object]:
        if not self.started:
            return self._bad("early-dtmf", "dtmf before start: ignored")
        digit = self.dtmf_digit(message)
        if not isinstance(digit, str) or digit.upper() not in DTMF_DIGITS or len(digit) != 1:
            return self._bad("bad-digit", f"a dtmf frame with digit {digit!r}: ignored")
        return [DtmfDigit(digit.upper())]

    def _acked(self, name: object) -> list[object]:
        if not isinstance(name, str):
            return self._bad("bad-mark", "a mark acknowledgement without a name: ignored")
        if name in self._marks:
            for placed in list(self._marks):  # acknowledged in order: earlier marks have played too
                offset = self._marks.pop(placed)
                if placed == name:
                    self._played = max(self._played or 0.0, offset)
                    break
            return []
        if name in self._cleared:
            self._cleared.discard(name)  # returned by a clear: its audio never played
            return []
        return self._bad("unknown-mark", f"an acknowledgement of mark {name!r}, which was never sent: ignored")

    def _bad(self, kind: str, reason: str) -> list[object]:
        self._problems[kind] += 1
        count = self._problems[kind]
        if count <= REPORTED:
            return [BadMessage(reason)]
        if count % 1000 == 0:
            return [BadMessage(f"{reason} ({count} times so far)")]
        return []

    # ------------------------------------------------------------ outbound

    def send(self, output: BaseModel | bytes) -> None:
        """Queue one engine output: PCM at the stream's rate, the clear decision, DTMF; others are dropped."""
        if isinstance(output, bytes):
            self._send_audio(output)
        elif isinstance(output, PlaybackClearBuffer):
            if self.started:
                self._queue(self.clear_frame())
                if len(self._cleared) > 10_000:
                    self._cleared.clear()
                self._cleared.update(self._marks)
                self._marks.clear()
        elif isinstance(output, SendDtmf) and self.started:
            frame = self.dtmf_frame(output.digits)
            if frame is not None:
                self._queue(frame)

    def _send_audio(self, pcm: bytes) -> None:
        if not self.started or self.codec is None or self.sample_rate is None or not pcm:
            return
        self._sent += len(pcm) / 2 / self.sample_rate
        payload = base64.b64encode(self.codec.encode(self.prepare_audio(pcm))).decode("ascii")
        self._queue(self.media_frame(payload))
        self._mark_count += 1
        name = f"voxcall-{self._mark_count}"
        self._marks[name] = self._sent
        self._queue(self.mark_frame(name))

    def _queue(self, frame: Json) -> None:
        self._out.append(json.dumps(frame, separators=(",", ":")))

    def data_to_send(self) -> list[str | bytes]:
        """Frames to write, in order; clears the buffer."""
        out, self._out = self._out, []
        return out

    def played(self) -> float | None:
        """Seconds of the agent audio handed to `send` that the carrier says have played.

        None until the carrier has acknowledged a first mark: a carrier that never does
        leaves the engine on its own clock rather than on "nothing was heard".
        """
        return self._played


def ids(source: Json, *names: str) -> dict[str, str]:
    """The string fields `names` of `source` that are present."""
    return {name: str(source[name]) for name in names if isinstance(source.get(name), (str, int)) and source.get(name) != ""}


def custom(value: object) -> dict[str, str]:
    """A carrier's custom-parameter object as strings (anything that is not an object gives {})."""
    if not isinstance(value, dict):
        return {}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


def rate_of(value: object) -> int | None:
    """A sample rate given as a number or a numeric string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def member(source: Json, name: str) -> Json:
    """The object `source[name]`, or {} when it is absent or not an object."""
    value = source.get(name)
    return value if isinstance(value, dict) else {}
