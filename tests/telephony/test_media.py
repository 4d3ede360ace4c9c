"""Every carrier's media connection, sans I/O: the documented frames in, engine events out, and back."""

from __future__ import annotations

import base64
import json

import pytest

from tests.telephony.dialects import Dialect, Exotel, Plivo, Telnyx, Twilio, rms, tone
from voxcall import codecs
from voxcall.protocol.connection import AudioIn, BadMessage
from voxcall.protocol.media import MediaConnection, MediaStop
from voxcall.protocol.realtime import PlaybackClearBuffer, State
from voxcall.protocol.telephony import CarrierMedia, DtmfDigit, MediaStart, SendDtmf, carrier_media

DIALECTS = {
    "twilio": Twilio,
    "telnyx-l16-16k": lambda: Telnyx("L16", 16000),
    "telnyx-l16-8k": lambda: Telnyx("L16", 8000),
    "telnyx-pcmu": lambda: Telnyx("PCMU", 8000),
    "telnyx-pcma": lambda: Telnyx("PCMA", 8000),
    "plivo-l16-8k": lambda: Plivo("audio/x-l16", 8000),
    "plivo-l16-16k": lambda: Plivo("audio/x-l16", 16000),
    "plivo-mulaw": lambda: Plivo("audio/x-mulaw", 8000),
    "exotel-8k": lambda: Exotel(8000),
    "exotel-16k": lambda: Exotel(16000),
    "exotel-24k": lambda: Exotel(24000),
}


@pytest.fixture(params=list(DIALECTS))
def dialect(request: pytest.FixtureRequest) -> Dialect:
    return DIALECTS[request.param]()  # type: ignore[no-any-return,operator]


def query(d: Dialect) -> dict[str, str]:
    return dict(part.split("=") for part in d.query.lstrip("?").split("&") if part)


def feed(media: CarrierMedia, frame: dict[str, object] | None) -> list[object]:
    return media.receive(json.dumps(frame)) if frame is not None else []


def started(d: Dialect) -> CarrierMedia:
    media = carrier_media(d.name, query(d))
    feed(media, d.connected())
    [start] = feed(media, d.start())
    assert isinstance(start, MediaStart)
    return media


def outbound(d: Dialect, media: CarrierMedia) -> list:
    frames = media.data_to_send()
    assert all(isinstance(f, str) for f in frames)
    return [d.read(f) for f in frames]  # type: ignore[arg-type]


def bad(events: list[object]) -> str:
    assert len(events) == 1 and isinstance(events[0], BadMessage), events
    return events[0].reason


def test_a_carrier_media_is_a_media_connection(dialect: Dialect) -> None:
    media = carrier_media(dialect.name, query(dialect))
    assert isinstance(media, MediaConnection) and media.medium == dialect.name


def test_start_gives_the_rate_and_the_carrier_ids_as_metadata(dialect: Dialect) -> None:
    media = carrier_media(dialect.name, query(dialect))
    assert feed(media, dialect.connected()) == []
    [start] = feed(media, dialect.start())
    assert isinstance(start, MediaStart)
    assert start.sample_rate == media.sample_rate == dialect.rate
    assert start.metadata == dialect.metadata
    assert start.custom  # each documented start carries custom parameters


def test_inbound_audio_arrives_as_pcm_at_the_stream_rate(dialect: Dialect) -> None:
    media = started(dialect)
    sound = tone(dialect.rate, 0.02)
    [audio] = feed(media, dialect.media(sound))
    assert isinstance(audio, AudioIn)
    assert audio.pcm == dialect.decode(dialect.encode(sound))  # exact for L16, G.711-quantised otherwise
    assert len(audio.pcm) == len(sound) and abs(rms(audio.pcm) - rms(sound)) < 0.03 * rms(sound)


def test_agent_audio_goes_out_in_the_carrier_format_each_chunk_followed_by_a_mark(dialect: Dialect) -> None:
    media = started(dialect)
    chunk = tone(dialect.rate, media.chunk_ms / 1000, freq=300)
    media.send(chunk)
    media.send(chunk)
    frames = outbound(dialect, media)
    assert [f.kind for f in frames] == ["media", "mark", "media", "mark"]
    assert frames[1].name != frames[3].name
    assert frames[0].pcm == dialect.decode(dialect.encode(chunk))


def test_marks_acknowledged_move_the_playback_position(dialect: Dialect) -> None:
    media = started(dialect)
    chunk = tone(dialect.rate, media.chunk_ms / 1000)
    for _ in range(3):
        media.send(chunk)
    marks = [f.name for f in outbound(dialect, media) if f.kind == "mark"]
    seconds = media.chunk_ms / 1000
    assert media.played() is None  # nothing acknowledged yet: the engine stays on its own clock
    assert feed(media, dialect.ack(marks[0])) == []
    assert media.played() == pytest.approx(seconds)
    assert feed(media, dialect.ack(marks[2])) == []  # a later mark: everything before it has played too
    assert media.played() == pytest.approx(3 * seconds)
    assert "never sent" in bad(feed(media, dialect.ack(marks[1])))  # already counted, so now unknown
    assert "never sent" in bad(feed(media, dialect.ack("not-ours")))


def test_clear_drops_queued_audio_and_returned_marks_do_not_count_as_heard(dialect: Dialect) -> None:
    media = started(dialect)
    chunk = tone(dialect.rate, media.chunk_ms / 1000)
    for _ in range(4):
        media.send(chunk)
    marks = [f.name for f in outbound(dialect, media) if f.kind == "mark"]
    feed(media, dialect.ack(marks[0]))
    media.send(PlaybackClearBuffer())
    assert [f.kind for f in outbound(dialect, media)] == ["clear"]
    for name in marks[1:]:  # a carrier hands back the marks of the audio it dropped
        assert feed(media, dialect.ack(name)) == []
    assert feed(media, dialect.cleared()) == []
    assert media.played() == pytest.approx(media.chunk_ms / 1000)


def test_keys_become_dtmf_digits(dialect: Dialect) -> None:
    media = started(dialect)
    assert feed(media, dialect.dtmf("5")) == [DtmfDigit("5")]
    assert feed(media, dialect.dtmf("#")) == [DtmfDigit("#")]
    assert feed(media, dialect.dtmf("a")) == [DtmfDigit("A")]
    assert "digit" in bad(feed(media, dialect.dtmf("55")))
    assert "digit" in bad(feed(media, dialect.dtmf("x")))


def test_stop_ends_the_stream_where_the_carrier_has_one(dialect: Dialect) -> None:
    media = started(dialect)
    stop = dialect.stop()
    if stop is None:  # Plivo: the socket closes; a "stop" is not part of its protocol
        assert "unknown" in bad(feed(media, {"event": "stop"}))
    else:
        [event] = feed(media, stop)
        assert isinstance(event, MediaStop)


def test_media_before_start_is_dropped_and_the_stream_goes_on(dialect: Dialect) -> None:
    media = carrier_media(dialect.name, query(dialect))
    assert "before start" in bad(feed(media, dialect.media(tone(dialect.rate, 0.02))))
    assert "before start" in bad(feed(media, dialect.dtmf("1")))
    media.send(tone(dialect.rate, 0.02))  # nothing to send to before the stream has started
    assert media.data_to_send() == []
    [start] = feed(media, dialect.start())
    assert isinstance(start, MediaStart)
    assert isinstance(feed(media, dialect.media(tone(dialect.rate, 0.02)))[0], AudioIn)


def test_a_second_start_is_ignored(dialect: Dialect) -> None:
    media = started(dialect)
    assert "second start" in bad(feed(media, dialect.start()))
    assert media.sample_rate == dialect.rate


@pytest.mark.parametrize("frame", ["not json", "[1, 2]", '{"no": "event"}', '{"event": 5}'])
def test_frames_that_are_not_carrier_events_are_reported(dialect: Dialect, frame: str) -> None:
    media = started(dialect)
    assert bad(media.receive(frame))
    assert isinstance(feed(media, dialect.media(tone(dialect.rate, 0.02)))[0], AudioIn)


def test_unknown_events_binary_frames_and_bad_payloads_are_reported_and_the_stream_goes_on(dialect: Dialect) -> None:
    media = started(dialect)
    assert "unknown" in bad(feed(media, {"event": "something_new", "x": 1}))
    assert "binary" in bad(media.receive(b"\x00\x01"))
    frame = dialect.media(tone(dialect.rate, 0.02))
    frame["media"]["payload"] = "%%% not base64 %%%"
    assert "base64" in bad(feed(media, frame))
    del frame["media"]["payload"]
    assert "payload" in bad(feed(media, frame))
    assert isinstance(feed(media, dialect.media(tone(dialect.rate, 0.02)))[0], AudioIn)


def test_an_odd_length_16_bit_payload_loses_its_last_byte(dialect: Dialect) -> None:
    media = started(dialect)
    frame = dialect.media(b"")
    raw = dialect.encode(tone(dialect.rate, 0.02)) + b"\x07"
    frame["media"]["payload"] = base64.b64encode(raw).decode()
    events = feed(media, frame)
    if dialect.encoding in ("mulaw", "alaw"):  # one byte a sample: odd lengths are fine
        assert len(events) == 1 and len(events[0].pcm) == 2 * len(raw)  # type: ignore[attr-defined]
    else:
        audio, problem = events
        assert isinstance(audio, AudioIn) and len(audio.pcm) == len(raw) - 1
        assert isinstance(problem, BadMessage) and "odd" in problem.reason


def test_a_flood_of_one_problem_is_reported_a_few_times_only(dialect: Dialect) -> None:
    media = started(dialect)
    reports = sum(len(feed(media, {"event": "bogus"})) for _ in range(500))
    assert reports == 3


def test_the_outbound_track_of_a_carrier_is_not_taken_as_the_caller(dialect: Dialect) -> None:
    media = started(dialect)
    frame = dialect.media(tone(dialect.rate, 0.02))
    if "track" not in frame["media"]:
        return  # Exotel sends one track
    frame["media"]["track"] = "outbound"
    assert feed(media, frame) == []


def test_server_messages_are_not_sent_to_a_carrier(dialect: Dialect) -> None:
    media = started(dialect)
    media.send(State(state="listening"))
    assert media.data_to_send() == []


def test_dtmf_out_only_where_the_carrier_has_it(dialect: Dialect) -> None:
    media = started(dialect)
    media.send(SendDtmf(digits="12#"))
    frames = outbound(dialect, media)
    if media.sends_dtmf:
        assert [(f.kind, f.digits) for f in frames] == [("dtmf", "12#")]
    else:
        assert frames == []


def test_codec_choice_follows_start(dialect: Dialect) -> None:
    media = started(dialect)
    expected = {"mulaw": codecs.ulaw_decode, "alaw": codecs.alaw_decode, "l16be": codecs.l16be_to_pcm}
    payload = dialect.encode(tone(dialect.rate, 0.02))
    [audio] = feed(media, dialect.media(b"") | {"media": {"payload": base64.b64encode(payload).decode()}})
    decode = expected.get(dialect.encoding, lambda data: data)
    assert audio.pcm == decode(payload)  # type: ignore[attr-defined]
