"""The serverWebSocket `MediaConnection`: frames in, engine events out; engine output in, frames out (sync)."""

from __future__ import annotations

import json

from voxcall.protocol.connection import AudioIn, BadMessage, ServerConnection, enabled_messages
from voxcall.protocol.media import MediaConnection, ServerWebSocketMedia
from voxcall.protocol.realtime import CallStarted, Debug, State, UserTextMessage


def media(*extra: str) -> ServerWebSocketMedia:
    return ServerWebSocketMedia(ServerConnection(enabled_messages(None, extra)))


def test_it_is_a_media_connection_named_after_its_medium() -> None:
    assert isinstance(media(), MediaConnection) and media().medium == "serverWebSocket"


def test_client_messages_become_events_and_pings_are_answered_inside() -> None:
    m = media()
    events = m.receive('{"type": "user_text_message", "text": "hi"}')
    assert events == [UserTextMessage(text="hi")]
    assert m.receive('{"type": "ping", "timestamp": 1.5}') == []
    assert [json.loads(f) for f in m.data_to_send()] == [{"type": "pong", "timestamp": 1.5}]
    assert m.data_to_send() == []


def test_audio_passes_through_at_the_call_rate_and_odd_bytes_wait() -> None:
    m = media()
    assert m.receive(b"\x01\x02\x03") == [AudioIn(b"\x01\x02")]
    assert m.receive(b"\x04") == [AudioIn(b"\x03\x04")]
    assert m.receive(b"") == []


def test_bad_frames_become_bad_message_events_never_exceptions() -> None:
    m = media("debug")
    [event] = m.receive("not json")
    assert isinstance(event, BadMessage)
    assert json.loads(m.data_to_send()[0])["type"] == "debug"


def test_engine_output_becomes_frames_in_order_and_disabled_types_are_dropped() -> None:
    m = media()
    m.send(CallStarted(call_id="c1"))
    m.send(b"\x00\x00")
    m.send(Debug(message="off by default"))
    m.send(State(state="listening"))
    frames = m.data_to_send()
    assert frames[1] == b"\x00\x00" and len(frames) == 3
    assert json.loads(frames[0]) == {"type": "call_started", "callId": "c1"}  # type: ignore[arg-type]
    assert json.loads(frames[2]) == {"type": "state", "state": "listening"}  # type: ignore[arg-type]
