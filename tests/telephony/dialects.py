"""The carriers' side of their media-stream protocols, written from their documentation.

One class per carrier builds the frames the carrier sends (connected, start, media, dtmf,
mark acknowledgements, stop) and checks and reads the frames the server sends back
(media, mark/checkpoint, clear, DTMF out). The sans-I/O tests and the real-time
simulators both speak through these, so a test can only pass if the server's media
connection understands the documented shapes.

* Twilio: twilio.com/docs/voice/media-streams/websocket-messages
* Telnyx: developers.telnyx.com/api-reference/websockets/stream-call-media-over-websocket
* Plivo: plivo.com/docs/voice/audio-streaming/audio-streaming (+ playAudio, checkpoint, clearAudio pages)
* Exotel: developer.exotel.com/docs/agentstream/websocket-protocol
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxcall import codecs

Frame = dict[str, Any]


@dataclass
class Outbound:
    """One frame from the server, classified: kind is media, mark, clear or dtmf."""

    kind: str
    pcm: bytes = b""
    name: str = ""
    digits: str = ""


@dataclass
class Dialect:
    """Base: counters and the codec; subclasses fill in the shapes."""

    encoding: str = "mulaw"
    rate: int = 8000
    query: str = ""
    sequence: int = 0
    chunk: int = 0
    echoes_marks_on_clear: bool = True
    answers_clear: bool = False
    ids: dict[str, str] = field(default_factory=dict)

    name = ""

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    def encode(self, pcm: bytes) -> bytes:
        if self.encoding == "mulaw":
            return codecs.ulaw_encode(pcm)
        if self.encoding == "alaw":
            return codecs.alaw_encode(pcm)
        if self.encoding == "l16be":
            return codecs.pcm_to_l16be(pcm)
        return pcm

    def decode(self, data: bytes) -> bytes:
        if self.encoding == "mulaw":
            return codecs.ulaw_decode(data)
        if self.encoding == "alaw":
            return codecs.alaw_decode(data)
        if self.encoding == "l16be":
            return codecs.l16be_to_pcm(data)
        return data

    def b64(self, pcm: bytes) -> str:
        return base64.b64encode(self.encode(pcm)).decode()

    def unb64(self, payload: str) -> bytes:
        return self.decode(base64.b64decode(payload, validate=True))

    # shapes, per carrier
    def connected(self) -> Frame | None:
        return {"event": "connected"}

    def start(self) -> Frame:
        raise NotImplementedError

    def media(self, pcm: bytes, timestamp_ms: int = 0) -> Frame:
        raise NotImplementedError

    def dtmf(self, digit: str) -> Frame:
        raise NotImplementedError

    def ack(self, name: str) -> Frame:
        raise NotImplementedError

    def stop(self) -> Frame | None:
        raise NotImplementedError

    def cleared(self) -> Frame | None:
        return None

    def read(self, text: str) -> Outbound:
        raise NotImplementedError

    @property
    def metadata(self) -> dict[str, str]:
        raise NotImplementedError

    def frame_bytes(self, ms: int = 20) -> int:
        return self.rate * ms // 1000 * 2


class Twilio(Dialect):
    name = "twilio"

    def __init__(self) -> None:
        super().__init__(encoding="mulaw", rate=8000)
        self.ids = {"streamSid": "MZ18ad3ab5a668481ce02b83e7395059f0", "callSid": "CA7b5f3d2c1e0a9b8c7d6e5f4a3b2c1d0e",
                    "accountSid": "AC0123456789abcdef0123456789abcdef"}

    def connected(self) -> Frame:
        return {"event": "connected", "protocol": "Call", "version": "1.0.0"}

    def start(self) -> Frame:
        sid = self.ids["streamSid"]
        return {"event": "start", "sequenceNumber": str(self.next_sequence()), "streamSid": sid,
                "start": {"streamSid": sid, "accountSid": self.ids["accountSid"], "callSid": self.ids["callSid"],
                          "tracks": ["inbound"], "customParameters": {"FirstName": "Jane"},
                          "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}

    def media(self, pcm: bytes, timestamp_ms: int = 0) -> Frame:
        self.chunk += 1
        return {"event": "media", "sequenceNumber": str(self.next_sequence()), "streamSid": self.ids["streamSid"],
                "media": {"track": "inbound", "chunk": str(self.chunk), "timestamp": str(timestamp_ms),
                          "payload": self.b64(pcm)}}

    def dtmf(self, digit: str) -> Frame:
        return {"event": "dtmf", "streamSid": self.ids["streamSid"], "sequenceNumber": str(self.next_sequence()),
                "dtmf": {"track": "inbound_track", "digit": digit}}

    def ack(self, name: str) -> Frame:
        return {"event": "mark", "sequenceNumber": str(self.next_sequence()), "streamSid": self.ids["streamSid"],
                "mark": {"name": name}}

    def stop(self) -> Frame:
        return {"event": "stop", "sequenceNumber": str(self.next_sequence()), "streamSid": self.ids["streamSid"],
                "stop": {"accountSid": self.ids["accountSid"], "callSid": self.ids["callSid"]}}

    def read(self, text: str) -> Outbound:
        frame = json.loads(text)
        assert frame.get("streamSid") == self.ids["streamSid"], frame
        if frame["event"] == "media":
            assert set(frame) == {"event", "streamSid", "media"} and set(frame["media"]) == {"payload"}, frame
            return Outbound("media", pcm=self.unb64(frame["media"]["payload"]))
        if frame["event"] == "mark":
            return Outbound("mark", name=frame["mark"]["name"])
        assert frame == {"event": "clear", "streamSid": self.ids["streamSid"]}, frame
        return Outbound("clear")

    @property
    def metadata(self) -> dict[str, str]:
        return {"ultravox.twilio.call_sid": self.ids["callSid"], "ultravox.twilio.stream_sid": self.ids["streamSid"],
                "ultravox.twilio.account_sid": self.ids["accountSid"]}


class Telnyx(Dialect):
    name = "telnyx"
    CODECS = {"L16": "l16be", "PCMU": "mulaw", "PCMA": "alaw"}

    def __init__(self, codec: str = "L16", rate: int = 16000) -> None:
        super().__init__(encoding=self.CODECS[codec], rate=rate)
        self.codec = codec
        self.ids = {"stream_id": "32DE0DEA-53CB-4B21-89A4-9E1819C043BC",
                    "call_control_id": "v2:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ",
                    "call_session_id": "ff55a038-6f5d-11ef-9692-02420aeffb1f"}

    def connected(self) -> Frame:
        return {"event": "connected", "version": "1.0.0"}

    def start(self) -> Frame:
        return {"event": "start", "sequence_number": str(self.next_sequence()), "stream_id": self.ids["stream_id"],
                "start": {"user_id": "3E6F995F-85F7-4705-9741-53B116D28237",
                          "call_control_id": self.ids["call_control_id"], "call_session_id": self.ids["call_session_id"],
                          "from": "+13122010094", "to": "+13122123456", "tags": ["TAG1"],
                          "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d", "custom_parameters": {"customer_id": "customer_123"},
                          "media_format": {"encoding": self.codec, "sample_rate": self.rate, "channels": 1}}}

    def media(self, pcm: bytes, timestamp_ms: int = 0) -> Frame:
        self.chunk += 1
        return {"event": "media", "sequence_number": str(self.next_sequence()), "stream_id": self.ids["stream_id"],
                "media": {"track": "inbound", "chunk": str(self.chunk), "timestamp": str(timestamp_ms),
                          "payload": self.b64(pcm)}}

    def dtmf(self, digit: str) -> Frame:
        return {"event": "dtmf", "sequence_number": str(self.next_sequence()), "stream_id": self.ids["stream_id"],
                "dtmf": {"digit": digit}}

    def ack(self, name: str) -> Frame:
        return {"event": "mark", "sequence_number": str(self.next_sequence()), "stream_id": self.ids["stream_id"],
                "mark": {"name": name}}

    def stop(self) -> Frame:
        return {"event": "stop", "sequence_number": str(self.next_sequence()), "stream_id": self.ids["stream_id"],
                "stop": {"call_control_id": self.ids["call_control_id"]}}

    def read(self, text: str) -> Outbound:
        frame = json.loads(text)
        if frame["event"] == "media":
            assert set(frame["media"]) == {"payload"}, frame
            return Outbound("media", pcm=self.unb64(frame["media"]["payload"]))
        if frame["event"] == "mark":
            return Outbound("mark", name=frame["mark"]["name"])
        assert frame == {"event": "clear"}, frame
        return Outbound("clear")

    @property
    def metadata(self) -> dict[str, str]:
        return {f"ultravox.telnyx.{k}": v for k, v in self.ids.items()}


class Plivo(Dialect):
    name = "plivo"

    def __init__(self, content_type: str = "audio/x-l16", rate: int = 8000) -> None:
        super().__init__(encoding="mulaw" if content_type == "audio/x-mulaw" else "l16le", rate=rate)
        self.content_type = content_type
        self.echoes_marks_on_clear = False
        self.answers_clear = True
        self.ids = {"callId": "12345678-1234-1234-1234-123456789abc", "streamId": "87654321-4321-4321-4321-cba987654321",
                    "accountId": "MAXXXXXXXXXXXXXXXXXX"}

    def connected(self) -> None:
        return None  # Plivo sends start first

    def start(self) -> Frame:
        return {"event": "start", "sequenceNumber": self.next_sequence(),
                "start": {"callId": self.ids["callId"], "streamId": self.ids["streamId"], "accountId": self.ids["accountId"],
                          "tracks": ["inbound"], "mediaFormat": {"encoding": self.content_type, "sampleRate": self.rate}},
                "extra_headers": "userId=12345;sessionId=abc-xyz"}

    def media(self, pcm: bytes, timestamp_ms: int = 0) -> Frame:
        self.chunk += 1
        return {"event": "media", "sequenceNumber": self.next_sequence(), "streamId": self.ids["streamId"],
                "media": {"track": "inbound", "timestamp": str(timestamp_ms), "chunk": self.chunk, "payload": self.b64(pcm)}}

    def dtmf(self, digit: str) -> Frame:
        return {"event": "dtmf", "sequenceNumber": self.next_sequence(), "streamId": self.ids["streamId"],
                "dtmf": {"track": "inbound", "digit": digit, "timestamp": "1234"}}

    def ack(self, name: str) -> Frame:
        return {"event": "playedStream", "sequenceNumber": self.next_sequence(), "streamId": self.ids["streamId"],
                "name": name}

    def cleared(self) -> Frame:
        return {"event": "clearedAudio", "sequenceNumber": self.next_sequence(), "streamId": self.ids["streamId"]}

    def stop(self) -> None:
        return None  # no stop event: the socket closes

    def read(self, text: str) -> Outbound:
        frame = json.loads(text)
        if frame["event"] == "playAudio":
            media = frame["media"]
            assert (media["contentType"], media["sampleRate"]) == (self.content_type, self.rate), frame
            return Outbound("media", pcm=self.unb64(media["payload"]))
        assert frame.get("streamId") == self.ids["streamId"], frame
        if frame["event"] == "checkpoint":
            return Outbound("mark", name=frame["name"])
        if frame["event"] == "sendDTMF":
            return Outbound("dtmf", digits=frame["dtmf"])
        assert frame["event"] == "clearAudio", frame
        return Outbound("clear")

    @property
    def metadata(self) -> dict[str, str]:
        return {"ultravox.plivo.call_id": self.ids["callId"], "ultravox.plivo.stream_id": self.ids["streamId"],
                "ultravox.plivo.account_id": self.ids["accountId"]}


class Exotel(Dialect):
    name = "exotel"

    def __init__(self, rate: int = 8000) -> None:
        super().__init__(encoding="l16le", rate=rate, query=f"?sample-rate={rate}")
        self.echoes_marks_on_clear = False
        self.ids = {"stream_sid": "MZ9f2c1a0b8e7d6c5b4a39281706f5e4d3", "call_sid": "CA1f2e3d4c5b6a79881726354a5b6c7d8e",
                    "account_sid": "AC9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"}

    def start(self) -> Frame:
        sid = self.ids["stream_sid"]
        return {"event": "start", "sequence_number": str(self.next_sequence()), "stream_sid": sid,
                "start": {"stream_sid": sid, "call_sid": self.ids["call_sid"], "account_sid": self.ids["account_sid"],
                          "from": "+919876543210", "to": "+918047491899", "custom_parameters": {"key1": "value1"},
                          "media_format": {"encoding": "audio/x-raw", "sample_rate": str(self.rate), "bit_rate": "16"}}}

    def media(self, pcm: bytes, timestamp_ms: int = 0) -> Frame:
        self.chunk += 1
        return {"event": "media", "sequence_number": str(self.next_sequence()), "stream_sid": self.ids["stream_sid"],
                "media": {"chunk": str(self.chunk), "timestamp": str(timestamp_ms), "payload": self.b64(pcm)}}

    def dtmf(self, digit: str) -> Frame:
        return {"event": "dtmf", "sequence_number": str(self.next_sequence()), "stream_sid": self.ids["stream_sid"],
                "dtmf": {"digit": digit, "duration": "100"}}

    def ack(self, name: str) -> Frame:
        return {"event": "mark", "sequence_number": str(self.next_sequence()), "stream_sid": self.ids["stream_sid"],
                "mark": {"name": name}}

    def stop(self) -> Frame:
        return {"event": "stop", "sequence_number": str(self.next_sequence()), "stream_sid": self.ids["stream_sid"],
                "stop": {"call_sid": self.ids["call_sid"], "account_sid": self.ids["account_sid"], "reason": "callended"}}

    def read(self, text: str) -> Outbound:
        frame = json.loads(text)
        assert frame.get("stream_sid") == self.ids["stream_sid"], frame
        if frame["event"] == "media":
            data = base64.b64decode(frame["media"]["payload"], validate=True)
            assert len(data) % 320 == 0 and len(data) >= self.rate // 10 * 2, f"Exotel chunk of {len(data)} bytes"
            return Outbound("media", pcm=self.decode(data))
        if frame["event"] == "mark":
            return Outbound("mark", name=frame["mark"]["name"])
        assert frame == {"event": "clear", "stream_sid": self.ids["stream_sid"]}, frame
        return Outbound("clear")

    @property
    def metadata(self) -> dict[str, str]:
        return {f"ultravox.exotel.{k}": v for k, v in self.ids.items()}


def tone(rate: int, seconds: float, level: int = 8000, freq: float = 440.0) -> bytes:
    n = int(rate * seconds)
    return (np.sin(np.arange(n) * 2 * np.pi * freq / rate) * level).astype("<i2").tobytes()


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
