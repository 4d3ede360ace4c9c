"""Telnyx media streaming in bidirectional RTP mode, as the server end.

Telnyx → server: `connected`, `start` (top-level stream_id; start.call_control_id,
call_session_id, custom_parameters, media_format {encoding, sample_rate, channels}),
`media` (base64 RTP payload without the RTP header), `dtmf`, `mark` (echoed when the
media before it has played, immediately when nothing is queued, and for queued marks
on `clear`), `error`, `stop`. Server → Telnyx: `media` (in the bidirectional codec),
`mark`, `clear`. Source: developers.telnyx.com/api-reference/websockets/stream-call-media-over-websocket.

Codecs: L16 (8, 16 or 24 kHz; the Ultravox docs recommend 16 kHz), PCMU and PCMA at
8 kHz. The docs say `codec` and `bidirectionalCodec` must be the same, because Telnyx
only reports one of them in `start`. L16 on RTP is in network byte order (RFC 3551
4.5.11). Media frames are handled in arrival order.
"""

from __future__ import annotations

from typing import Any

from voxcall.protocol.telephony.base import CODECS, CarrierMedia, StartError, custom, ids, member, rate_of
from voxcall.protocol.telephony.events import MediaStart

__all__ = ["TelnyxMedia"]

_CODECS = {"PCMU": "mulaw", "PCMA": "alaw", "L16": "l16be"}
L16_RATES = (8000, 16000, 24000)


class TelnyxMedia(CarrierMedia):
    medium = "telnyx"
    error_events = frozenset({"error"})

    def __init__(self) -> None:
        super().__init__()
        self.stream_id = ""

    def parse_start(self, message: dict[str, Any]) -> MediaStart:
        start = message.get("start")
        if not isinstance(start, dict):
            raise StartError("no start object")
        media_format = member(start, "media_format")
        encoding = str(media_format.get("encoding", "PCMU")).upper()
        rate = rate_of(media_format.get("sample_rate", 8000))
        usable = (encoding in ("PCMU", "PCMA") and rate == 8000) or (encoding == "L16" and rate in L16_RATES)
        if not usable:
            raise StartError(f"Telnyx codec {encoding} at {rate} Hz: use L16 (16000 Hz recommended), PCMU or PCMA "
                             "at 8000 Hz, with the same codec for both directions", fatal=True)
        assert rate is not None
        self.codec, self.sample_rate = CODECS[_CODECS[encoding]], rate
        self.stream_id = str(message.get("stream_id") or "")
        metadata = {f"ultravox.telnyx.{k}": v for k, v in ids(start, "call_control_id", "call_session_id").items()}
        if self.stream_id:
            metadata["ultravox.telnyx.stream_id"] = self.stream_id
        return MediaStart(rate, metadata, custom(start.get("custom_parameters")))

    def media_frame(self, payload: str) -> dict[str, Any]:
        return {"event": "media", "media": {"payload": payload}}

    def mark_frame(self, name: str) -> dict[str, Any]:
        return {"event": "mark", "mark": {"name": name}}

    def clear_frame(self) -> dict[str, Any]:
        return {"event": "clear"}
