"""Twilio Media Streams, bidirectional (`<Connect><Stream url=…/>`), as the server end.

Twilio → server: `connected`, `start` (streamSid, callSid, accountSid, customParameters,
mediaFormat audio/x-mulaw 8000 mono), `media` (base64 μ-law, 20 ms), `dtmf`, `mark`
(echoed once the audio before it has played, or when a `clear` dropped it), `stop`.
Server → Twilio: `media`, `mark`, `clear`, each with the streamSid. Twilio has no
out-of-band DTMF on this socket. Source: twilio.com/docs/voice/media-streams/websocket-messages.
"""

from __future__ import annotations

from typing import Any

from voxcall.protocol.telephony.base import CODECS, CarrierMedia, StartError, custom, ids, member, rate_of
from voxcall.protocol.telephony.events import MediaStart

__all__ = ["TwilioMedia"]

RATE = 8000


class TwilioMedia(CarrierMedia):
    medium = "twilio"

    def __init__(self) -> None:
        super().__init__()
        self.stream_sid = ""

    def parse_start(self, message: dict[str, Any]) -> MediaStart:
        start = message.get("start")
        if not isinstance(start, dict):
            raise StartError("no start object")
        sid = start.get("streamSid") or message.get("streamSid")
        if not isinstance(sid, str) or not sid:
            raise StartError("no streamSid")
        media_format = member(start, "mediaFormat")
        encoding = str(media_format.get("encoding", "audio/x-mulaw")).lower()
        rate = rate_of(media_format.get("sampleRate", RATE))
        if encoding != "audio/x-mulaw" or rate != RATE:
            raise StartError(f"Twilio media format {encoding} at {rate} Hz: voxcall speaks audio/x-mulaw at 8000 Hz",
                             fatal=True)
        self.stream_sid, self.codec, self.sample_rate = sid, CODECS["mulaw"], RATE
        found = ids(start, "callSid", "accountSid")
        metadata = {"ultravox.twilio.stream_sid": sid}
        if "callSid" in found:
            metadata["ultravox.twilio.call_sid"] = found["callSid"]
        if "accountSid" in found:
            metadata["ultravox.twilio.account_sid"] = found["accountSid"]
        return MediaStart(RATE, metadata, custom(start.get("customParameters")))

    def media_frame(self, payload: str) -> dict[str, Any]:
        return {"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}}

    def mark_frame(self, name: str) -> dict[str, Any]:
        return {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}

    def clear_frame(self) -> dict[str, Any]:
        return {"event": "clear", "streamSid": self.stream_sid}
