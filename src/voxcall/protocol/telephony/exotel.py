"""Exotel Voicebot (bidirectional) streams, as the server end.

Exotel → server: `connected`, `start` (stream_sid; start.call_sid, account_sid,
custom_parameters, media_format), `media` (base64 16-bit little-endian mono PCM), `dtmf`,
`mark`, `stop`. Server → Exotel: `media`, `mark`, `clear`, each with the stream_sid.
Source: developer.exotel.com/docs/agentstream/websocket-protocol.

The sample rate is chosen in the URL (`?sample-rate=8000|16000|24000`, 8000 by default)
and read from the join URL's query here (a `start.media_format.sample_rate` is used when
the query has none). Outbound chunks must be a multiple of 320 bytes and at least 100 ms
(Exotel's rules), so the engine sends 100 ms chunks and a shorter last chunk of a clause
is padded with silence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from voxcall.protocol.telephony.base import CODECS, CarrierMedia, StartError, custom, ids, member, rate_of
from voxcall.protocol.telephony.events import MediaStart

__all__ = ["ExotelMedia"]

RATES = (8000, 16000, 24000)
CHUNK_MULTIPLE = 320
PCM_NAMES = ("", "audio/x-raw", "raw", "slin", "slin16", "pcm", "audio/l16", "l16", "audio/x-l16")


class ExotelMedia(CarrierMedia):
    medium = "exotel"
    chunk_ms = 100

    def __init__(self, query: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.stream_sid = ""
        self.query_rate = rate_of((query or {}).get("sample-rate"))

    def parse_start(self, message: dict[str, Any]) -> MediaStart:
        start = message.get("start")
        if not isinstance(start, dict):
            raise StartError("no start object")
        media_format = member(start, "media_format")
        encoding = str(media_format.get("encoding", "")).lower().partition(";")[0].strip()
        rate = self.query_rate or rate_of(media_format.get("sample_rate")) or 8000
        if encoding not in PCM_NAMES or rate not in RATES:
            raise StartError(f"Exotel media format {encoding or 'PCM'} at {rate} Hz: voxcall speaks 16-bit PCM at "
                             "8000, 16000 or 24000 Hz (set ?sample-rate= in the URL)", fatal=True)
        self.codec, self.sample_rate = CODECS["l16le"], rate
        self.stream_sid = str(message.get("stream_sid") or start.get("stream_sid") or "")
        metadata = {f"ultravox.exotel.{k}": v for k, v in ids(start, "call_sid", "account_sid").items()}
        if self.stream_sid:
            metadata["ultravox.exotel.stream_sid"] = self.stream_sid
        return MediaStart(rate, metadata, custom(start.get("custom_parameters")))

    def prepare_audio(self, pcm: bytes) -> bytes:
        assert self.sample_rate is not None
        least = self.sample_rate // 10 * 2  # 100 ms
        size = max(least, -(-len(pcm) // CHUNK_MULTIPLE) * CHUNK_MULTIPLE)
        return pcm.ljust(size, b"\x00")

    def media_frame(self, payload: str) -> dict[str, Any]:
        return {"event": "media", "stream_sid": self.stream_sid, "media": {"payload": payload}}

    def mark_frame(self, name: str) -> dict[str, Any]:
        return {"event": "mark", "stream_sid": self.stream_sid, "mark": {"name": name}}

    def clear_frame(self) -> dict[str, Any]:
        return {"event": "clear", "stream_sid": self.stream_sid}
