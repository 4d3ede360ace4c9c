"""Plivo AudioStream, bidirectional (`<Stream bidirectional="true" …>`), as the server end.

Plivo → server: `start` (start.callId, streamId, accountId, mediaFormat {encoding,
sampleRate}; top-level extra_headers), `media`, `dtmf`, `playedStream` (a checkpoint
was reached), `clearedAudio` (the queue was cleared). There is no `stop`: the socket
closes. Server → Plivo: `playAudio` {media: {contentType, sampleRate, payload}},
`checkpoint`, `clearAudio`, and `sendDTMF` (out-of-band DTMF into the call).
Source: plivo.com/docs/voice/audio-streaming/audio-streaming and the Stream XML page.

Formats (`contentType` of the Stream XML, read back from `start.mediaFormat`):
audio/x-l16 at 8000 Hz (Plivo's default) or 16000 Hz, and audio/x-mulaw at 8000 Hz.
L16 is taken as little-endian, as the raw PCM Plivo's SDKs hand around.
"""

from __future__ import annotations

from typing import Any

from voxcall.protocol.telephony.base import CODECS, CarrierMedia, StartError, ids, member, rate_of
from voxcall.protocol.telephony.events import MediaStart

__all__ = ["PlivoMedia"]

FORMATS = {("audio/x-l16", 8000), ("audio/x-l16", 16000), ("audio/x-mulaw", 8000)}


class PlivoMedia(CarrierMedia):
    medium = "plivo"
    sends_dtmf = True
    mark_events = frozenset({"playedStream"})
    quiet_events = frozenset({"clearedAudio"})
    stop_events = frozenset()

    def __init__(self) -> None:
        super().__init__()
        self.stream_id = ""
        self.content_type = "audio/x-l16"

    def parse_start(self, message: dict[str, Any]) -> MediaStart:
        start = message.get("start")
        if not isinstance(start, dict):
            raise StartError("no start object")
        media_format = member(start, "mediaFormat")
        content_type, _, params = str(media_format.get("encoding", "audio/x-l16")).lower().partition(";")
        rate = rate_of(media_format.get("sampleRate")) or rate_of(params.strip().removeprefix("rate=")) or 8000
        if (content_type.strip(), rate) not in FORMATS:
            raise StartError(f"Plivo media format {content_type} at {rate} Hz: use audio/x-l16 at 8000 or 16000 Hz "
                             "or audio/x-mulaw at 8000 Hz", fatal=True)
        self.content_type = content_type.strip()
        self.codec = CODECS["mulaw" if self.content_type == "audio/x-mulaw" else "l16le"]
        self.sample_rate = rate
        self.stream_id = str(start.get("streamId") or message.get("streamId") or "")
        names = {"callId": "call_id", "streamId": "stream_id", "accountId": "account_id"}
        metadata = {f"ultravox.plivo.{names[k]}": v for k, v in ids(start, *names).items()}
        return MediaStart(rate, metadata, _extra_headers(message.get("extra_headers")))

    def mark_name(self, message: dict[str, Any]) -> object:
        return message.get("name")

    def media_frame(self, payload: str) -> dict[str, Any]:
        return {"event": "playAudio", "streamId": self.stream_id,
                "media": {"contentType": self.content_type, "sampleRate": self.sample_rate, "payload": payload}}

    def mark_frame(self, name: str) -> dict[str, Any]:
        return {"event": "checkpoint", "streamId": self.stream_id, "name": name}

    def clear_frame(self) -> dict[str, Any]:
        return {"event": "clearAudio", "streamId": self.stream_id}

    def dtmf_frame(self, digits: str) -> dict[str, Any]:
        return {"event": "sendDTMF", "streamId": self.stream_id, "dtmf": digits}


def _extra_headers(value: object) -> dict[str, str]:
    """`userId=12345;sessionId=abc` (Plivo joins the XML's `k=v,k2=v2` with either separator)."""
    if not isinstance(value, str):
        return {}
    pairs = (item.partition("=") for item in value.replace(",", ";").split(";"))
    return {k.strip(): v.strip() for k, _, v in pairs if k.strip()}
