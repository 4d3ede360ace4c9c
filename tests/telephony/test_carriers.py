"""What is particular to each carrier: the formats it may announce, its ids, its outbound rules."""

from __future__ import annotations

import base64
import json

import pytest

from tests.telephony.dialects import Exotel, Plivo, Telnyx, Twilio, tone
from voxcall.protocol.connection import BadMessage
from voxcall.protocol.telephony import ExotelMedia, MediaRefused, MediaStart, PlivoMedia, carrier_media


def feed(media: object, frame: dict[str, object]) -> list[object]:
    return media.receive(json.dumps(frame))  # type: ignore[attr-defined,no-any-return]


# ------------------------------------------------------------------ Twilio


def test_twilio_refuses_a_format_other_than_mulaw_8k_with_a_reason() -> None:
    d = Twilio()
    start = d.start()
    start["start"]["mediaFormat"] = {"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1}
    [refused] = feed(carrier_media("twilio"), start)
    assert isinstance(refused, MediaRefused) and "audio/x-mulaw" in refused.reason


def test_twilio_start_without_a_stream_sid_is_reported_and_a_later_good_start_works() -> None:
    d, media = Twilio(), carrier_media("twilio")
    broken = d.start()
    del broken["streamSid"], broken["start"]["streamSid"]
    [problem] = feed(media, broken)
    assert isinstance(problem, BadMessage) and "streamSid" in problem.reason
    assert isinstance(feed(media, d.start())[0], MediaStart)


def test_twilio_outbound_frames_carry_the_stream_sid() -> None:
    d = Twilio()
    media = carrier_media("twilio")
    feed(media, d.start())
    media.send(tone(8000, 0.02))
    frames = [json.loads(f) for f in media.data_to_send()]  # type: ignore[arg-type]
    assert [f["event"] for f in frames] == ["media", "mark"]
    assert all(f["streamSid"] == d.ids["streamSid"] for f in frames)
    assert len(base64.b64decode(frames[0]["media"]["payload"])) == 160  # 20 ms of μ-law


# ------------------------------------------------------------------ Telnyx


@pytest.mark.parametrize("codec,rate", [("G722", 8000), ("OPUS", 16000), ("AMR-WB", 16000), ("PCMU", 16000), ("L16", 44100)])
def test_telnyx_refuses_codecs_it_cannot_speak(codec: str, rate: int) -> None:
    start = Telnyx().start()
    start["start"]["media_format"] = {"encoding": codec, "sample_rate": rate, "channels": 1}
    [refused] = feed(carrier_media("telnyx"), start)
    assert isinstance(refused, MediaRefused) and "L16" in refused.reason


def test_telnyx_l16_is_big_endian_on_the_wire() -> None:
    d = Telnyx("L16", 16000)
    media = carrier_media("telnyx")
    feed(media, d.start())
    media.send(b"\x01\x02")
    payload = json.loads(media.data_to_send()[0])["media"]["payload"]  # type: ignore[arg-type]
    assert base64.b64decode(payload) == b"\x02\x01"


def test_telnyx_error_frames_are_reported_and_the_stream_goes_on() -> None:
    d = Telnyx()
    media = carrier_media("telnyx")
    feed(media, d.start())
    [problem] = feed(media, {"event": "error", "payload": {"code": 100002, "title": "Unknown error"}})
    assert isinstance(problem, BadMessage) and "100002" in problem.reason
    assert feed(media, d.media(tone(16000, 0.02)))


# ------------------------------------------------------------------ Plivo


@pytest.mark.parametrize("encoding,rate,expected", [
    ("audio/x-l16", 8000, 8000), ("audio/x-l16", 16000, 16000), ("audio/x-mulaw", 8000, 8000),
    ("audio/x-l16;rate=16000", None, 16000), ("audio/x-mulaw;rate=8000", None, 8000),
])
def test_plivo_reads_the_format_from_start(encoding: str, rate: int | None, expected: int) -> None:
    start = Plivo().start()
    start["start"]["mediaFormat"] = {"encoding": encoding} | ({"sampleRate": rate} if rate else {})
    media = carrier_media("plivo")
    [started] = feed(media, start)
    assert isinstance(started, MediaStart) and started.sample_rate == expected
    media.send(tone(expected, 0.02))
    play = json.loads(media.data_to_send()[0])  # type: ignore[arg-type]
    assert play["event"] == "playAudio"
    assert play["media"]["contentType"] == encoding.partition(";")[0] and play["media"]["sampleRate"] == expected


@pytest.mark.parametrize("encoding,rate", [("audio/x-mulaw", 16000), ("audio/x-l16", 24000), ("audio/wav", 8000)])
def test_plivo_refuses_formats_outside_its_documented_three(encoding: str, rate: int) -> None:
    start = Plivo().start()
    start["start"]["mediaFormat"] = {"encoding": encoding, "sampleRate": rate}
    [refused] = feed(carrier_media("plivo"), start)
    assert isinstance(refused, MediaRefused)


def test_plivo_extra_headers_are_custom_parameters_and_checkpoints_are_its_marks() -> None:
    d = Plivo()
    media = carrier_media("plivo")
    [started] = feed(media, d.start())
    assert isinstance(started, MediaStart) and started.custom == {"userId": "12345", "sessionId": "abc-xyz"}
    media.send(tone(8000, 0.02))
    play, checkpoint = (json.loads(f) for f in media.data_to_send())  # type: ignore[arg-type]
    assert checkpoint == {"event": "checkpoint", "streamId": d.ids["streamId"], "name": checkpoint["name"]}
    assert feed(media, d.ack(checkpoint["name"])) == [] and media.played() == pytest.approx(0.02)


# ------------------------------------------------------------------ Exotel


def test_exotel_takes_the_rate_from_the_url_query() -> None:
    d = Exotel(16000)
    start = d.start()
    start["start"]["media_format"]["sample_rate"] = "8000"
    media = ExotelMedia({"sample-rate": "16000"})
    [started] = feed(media, start)
    assert isinstance(started, MediaStart) and started.sample_rate == 16000


def test_exotel_without_a_query_uses_the_start_or_8k() -> None:
    d = Exotel(16000)
    assert feed(ExotelMedia(), d.start())[0].sample_rate == 16000  # type: ignore[attr-defined]
    start = d.start()
    del start["start"]["media_format"]
    assert feed(ExotelMedia(), start)[0].sample_rate == 8000  # type: ignore[attr-defined]


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
@pytest.mark.parametrize("ms", [20, 60, 100, 130])
def test_exotel_chunks_are_multiples_of_320_bytes_and_at_least_100_ms(rate: int, ms: int) -> None:
    media = ExotelMedia({"sample-rate": str(rate)})
    feed(media, Exotel(rate).start())
    pcm = tone(rate, ms / 1000)
    media.send(pcm)
    payload = base64.b64decode(json.loads(media.data_to_send()[0])["media"]["payload"])  # type: ignore[arg-type]
    assert len(payload) % 320 == 0 and len(payload) >= rate // 10 * 2
    assert payload[: len(pcm)] == pcm and set(payload[len(pcm):]) <= {0}


def test_exotel_refuses_a_rate_it_does_not_offer() -> None:
    [refused] = feed(ExotelMedia({"sample-rate": "11025"}), Exotel().start())
    assert isinstance(refused, MediaRefused) and "sample-rate" in refused.reason


def test_the_engine_is_asked_for_100_ms_chunks_on_exotel_only() -> None:
    assert ExotelMedia.chunk_ms == 100
    assert {carrier_media(n).chunk_ms for n in ("twilio", "telnyx", "plivo")} == {20}
    assert PlivoMedia.sends_dtmf and not any(carrier_media(n).sends_dtmf for n in ("twilio", "telnyx", "exotel"))


def test_an_unknown_carrier_is_an_error() -> None:
    with pytest.raises(ValueError):
        carrier_media("sip")
