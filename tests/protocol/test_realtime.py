"""Protocol unit tests: parsing, serialisation, transcripts, the sans-I/O connection. No sockets."""

from __future__ import annotations

import json

import pytest

from voxcall.errors import ProtocolError
from voxcall.protocol.connection import AudioIn, BadMessage, ClientConnection, ServerConnection, enabled_messages
from voxcall.protocol.realtime import (
    CallStarted,
    ClientToolInvocation,
    ClientToolResult,
    Debug,
    ForcedAgentMessage,
    HangUp,
    InputTextMessage,
    Pong,
    SetOutputMedium,
    State,
    Transcript,
    UnknownMessage,
    UserTextMessage,
    dump,
    parse_client,
    parse_server,
)
from voxcall.protocol.rest import EnabledDataMessages
from voxcall.protocol.transcripts import TranscriptLog, TranscriptWriter

# Golden client messages from PROTOCOL.md 2.5/2.8 and CONFORMANCE.md 4.6.
CLIENT_GOLDEN = [
    ('{"type":"user_text_message","text":"hi","urgency":"immediate","deferResponse":true}',
     UserTextMessage(text="hi", urgency="immediate", defer_response=True)),
    ('{"type":"user_text_message","text":"","urgency":"immediate","defer_response":true}',
     UserTextMessage(text="", urgency="immediate", defer_response=True)),
    ('{"type":"input_text_message","text":"legacy","deferResponse":null}', InputTextMessage(text="legacy")),
    ('{"type":"set_output_medium","medium":"text"}', SetOutputMedium(medium="text")),
    ('{"type":"client_tool_result","invocationId":"call_8Yx","result":"{\\"tempC\\":3}","responseType":"tool-response",'
     '"agentReaction":"speaks","updateCallState":null}',
     ClientToolResult(invocation_id="call_8Yx", result='{"tempC":3}', response_type="tool-response", agent_reaction="speaks")),
    ('{"type":"client_tool_result","invocation_id":"x","errorType":"undefined","errorMessage":"not registered","extra":1}',
     ClientToolResult(invocation_id="x", error_type="undefined", error_message="not registered")),
    ('{"type":"forced_agent_message","content":"Hold on","uninterruptible":true,"urgency":"soon"}',
     ForcedAgentMessage(content="Hold on", uninterruptible=True, urgency="soon")),
    ('{"type":"hang_up","message":"Bye"}', HangUp(message="Bye")),
    ('{"type":"hang_up"}', HangUp()),
]


@pytest.mark.parametrize(("text", "expected"), CLIENT_GOLDEN)
def test_client_messages_parse(text: str, expected: object) -> None:
    assert parse_client(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "invalid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"text": "no type"}', "string 'type'"),
        ('{"type": "playbackClearBuffer"}', "unknown message type"),
        ('{"type": "user_text_message"}', "text"),
        ('{"type": "user_text_message", "text": 5}', "text"),
        ('{"type": "set_output_medium", "medium": "video"}', "medium"),
        ('{"type": "client_tool_result"}', "invocation"),
    ],
)
def test_bad_client_messages_raise_protocol_error(text: str, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        parse_client(text)


def test_server_messages_round_trip_and_leave_unset_keys_out() -> None:
    messages = [
        CallStarted(call_id="c"),
        State(state="listening"),
        Transcript(role="agent", medium="voice", delta=", there", final=False, ordinal=0),
        ClientToolInvocation(tool_name="getWeather", invocation_id="i", parameters={"city": "Oslo"}),
        Pong(timestamp=1234567890.123),
        Debug(message="x"),
    ]
    for message in messages:
        assert parse_server(dump(message)) == message
    assert json.loads(dump(messages[2])) == {"type": "transcript", "role": "agent", "medium": "voice", "delta": ", there", "final": False, "ordinal": 0}
    assert json.loads(dump(messages[0])) == {"type": "call_started", "callId": "c"}
    assert json.loads(dump(messages[3]))["toolName"] == "getWeather"


def test_unknown_server_types_are_kept_not_raised() -> None:
    message = parse_server('{"type":"call_event","text":"x"}')
    assert isinstance(message, UnknownMessage) and message.data["text"] == "x"


def test_transcript_writer_rules() -> None:
    w = TranscriptWriter()
    planned = w.open("agent", "voice")  # planned first, says nothing yet: no ordinal
    user = w.complete("user", "text", "Hi")
    assert (user.ordinal, user.final, user.text) == (0, True, "Hi")
    o = w.open("agent", "voice")
    assert o.ordinal is None and not o.on_wire
    assert w.append(o, "") is None and w.append(o, "  ") is None and o.ordinal is None  # blanks take no ordinal
    first, second = w.append(o, " Hello"), w.append(o, ", there")
    assert first is not None and (first.text, first.delta, first.ordinal) == ("Hello", None, 1) and o.on_wire
    assert second is not None and (second.text, second.delta, second.ordinal) == (None, ", there", 1)
    final = w.close(o)
    assert final is not None and (final.text, final.final, final.ordinal) == ("Hello, there", True, 1) and not o.on_wire
    o2 = w.open("agent", "voice")
    w.append(o2, "Interrupted sentence")
    heard = w.close(o2, heard="Interrupted")
    assert heard is not None and heard.text == "Interrupted" and heard.ordinal == 2
    o3 = w.open("agent", "voice")
    w.append(o3, "Sent but not played")
    unheard = w.close(o3, heard="")  # on the wire: it still gets a non-empty final
    assert unheard is not None and unheard.text == "Sent but not played" and unheard.ordinal == 3
    assert w.close(planned, heard="") is None  # cancelled before a word: no message, no ordinal used
    empty = w.open("agent", "text")
    assert w.close(empty) is None  # never a final with empty text
    with pytest.raises(ProtocolError):
        w.close(empty)
    with pytest.raises(ProtocolError):
        w.append(empty, "late")
    with pytest.raises(ProtocolError):
        w.complete("user", "text", "")
    assert w.next_ordinal == 4 and w.complete("agent", "text", "Next").ordinal == 4


def test_transcript_log_merges_by_ordinal() -> None:
    log = TranscriptLog()
    log.apply(Transcript(role="agent", medium="voice", text="Hel", final=False, ordinal=1))
    log.apply(Transcript(role="agent", medium="voice", delta="lo", final=False, ordinal=1))
    log.apply(Transcript(role="user", medium="text", text="Hi", final=True, ordinal=0))
    assert [(e.ordinal, e.text, e.final) for e in log.entries] == [(0, "Hi", True), (1, "Hello", False)]
    log.apply(Transcript(role="agent", medium="voice", text="Hello!", final=True, ordinal=1))
    assert log.entries[1].text == "Hello!" and log.entries[1].final


def test_server_connection_pongs_filters_and_survives_bad_input() -> None:
    conn = ServerConnection(enabled_messages(None, ["debug"]))
    conn.receive_text('{"type":"ping","timestamp":1.5}')
    assert conn.events_received() == []
    assert conn.data_to_send() == ['{"type":"pong","timestamp":1.5}']
    conn.receive_text("{bad")
    conn.receive_text(json.dumps({"type": "user_text_message", "text": "x" * (70 * 1024)}))
    events = conn.events_received()
    assert [type(e) for e in events] == [BadMessage, BadMessage] and "64" not in events[0].reason
    assert all(json.loads(f)["type"] == "debug" for f in conn.data_to_send())
    conn.receive_text('{"type":"user_text_message","text":"still here"}')
    assert conn.events_received() == [UserTextMessage(text="still here")]


def test_debug_and_other_default_off_messages_stay_off() -> None:
    conn = ServerConnection(enabled_messages())
    assert not conn.send(Debug(message="hidden"))
    conn.receive_text("oops")
    assert conn.data_to_send() == []
    assert isinstance(conn.events_received()[0], BadMessage)


def test_enabled_messages_from_medium_and_query() -> None:
    configured = EnabledDataMessages(debug=True, pong=False)
    enabled = enabled_messages(configured, ["callEvent,", "", "user_started_speaking"])
    assert {"debug", "call_event", "user_started_speaking", "transcript"} <= enabled and "pong" not in enabled


def test_audio_frames_keep_an_odd_byte_for_the_next_frame() -> None:
    conn = ServerConnection()
    for chunk in (b"", b"\x01", b"\x02\x03\x04", b"\x05"):
        conn.receive_bytes(chunk)
    assert conn.events_received() == [AudioIn(b"\x01\x02\x03\x04")]
    conn.receive_bytes(b"\x06")
    assert conn.events_received() == [AudioIn(b"\x05\x06")]


def test_client_connection_reports_malformed_server_messages() -> None:
    conn = ClientConnection()
    conn.receive_text('{"type":"transcript","role":"agent"}')
    conn.receive_text('{"type":"state","state":"speaking"}')
    events = conn.events_received()
    assert isinstance(events[0], BadMessage) and events[1] == State(state="speaking")
    conn.send(UserTextMessage(text="x", urgency="soon"))
    assert conn.data_to_send() == ['{"type":"user_text_message","text":"x","urgency":"soon"}']
