"""Input hygiene and rate limits of the sans-I/O layer: strict JSON, size limits, token buckets. No sockets."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from voxcall.errors import ProtocolError
from voxcall.protocol.connection import BadMessage, InboundLimits, ServerConnection, Throttled, enabled_messages
from voxcall.protocol.hygiene import BodyLimits, UnsafeJSON, call_body_problems, loads_strict
from voxcall.protocol.realtime import Pong, UnknownMessage, UserTextMessage, dump, parse_client
from voxcall.protocol.rest import StartCallRequest


def strict(text: str) -> Any:
    """Parse as a strict JSON reader would (no NaN, no Infinity)."""
    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def debug_connection() -> ServerConnection:
    return ServerConnection(enabled_messages(None, ["debug"]))


# ---------------------------------------------------------------- strict JSON


@pytest.mark.parametrize("depth", [65, 1000, 30_000])
def test_deep_nesting_is_refused_without_recursion(depth: int) -> None:
    with pytest.raises(UnsafeJSON, match="nested more than 64 levels"):
        loads_strict("[" * depth + "]" * depth)
    with pytest.raises(ProtocolError, match="nested more than 64 levels"):
        parse_client('{"type":"ping","x":' + "[" * depth + "]" * depth + "}")


def test_nesting_up_to_the_limit_and_brackets_inside_strings_are_fine() -> None:
    assert loads_strict("[" * 64 + "]" * 64) is not None
    assert loads_strict(json.dumps({"text": "[" * 5000 + '\\"{'})) == {"text": "[" * 5000 + '\\"{'}
    with pytest.raises(UnsafeJSON, match="nested"):
        loads_strict("[" * 8 + "]" * 8, max_depth=7)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e309", "-1e400"])
def test_non_finite_numbers_are_refused_with_their_place(number: str) -> None:
    with pytest.raises(UnsafeJSON) as caught:
        loads_strict('{"a": [1, {"temperature": %s}]}' % number)
    assert caught.value.loc == ("a", 1, "temperature")
    assert caught.value.describe() == f"a.1.temperature must be a finite number, not {number}"
    assert loads_strict('{"big": 1e308, "int": 100000000000000000000000}')["int"] == 10**23


@pytest.mark.parametrize(("text", "problem"), [('"\\ud800"', "lone surrogate (U+D800)"), ('"a\\udfffb"', "U+DFFF"),
                                               ('"nul\\u0000"', "NUL")])
def test_unencodable_text_is_refused_in_values_and_keys(text: str, problem: str) -> None:
    with pytest.raises(UnsafeJSON, match=re.escape(problem)) as caught:
        loads_strict('{"initialMessages": [{"text": %s}]}' % text)
    assert caught.value.loc == ("initialMessages", 0, "text")
    with pytest.raises(UnsafeJSON, match="has a key that contains"):
        loads_strict('{"metadata": {%s: "x"}}' % text)


def test_valid_unicode_passes() -> None:
    assert loads_strict('{"t": "\\ud83d\\ude00 caf\u00e9 \u4e2d"}') == {"t": "\U0001f600 caf\u00e9 \u4e2d"}
    assert loads_strict(b'{"t": "\xc3\xa9"}') == {"t": "\u00e9"}
    with pytest.raises(UnsafeJSON, match="not valid UTF-8"):
        loads_strict(b'{"t": "\xff"}')
    with pytest.raises(UnsafeJSON, match="invalid JSON") as caught:
        loads_strict("{oops")
    assert caught.value.syntax


def test_models_refuse_non_finite_floats_and_dump_is_strict() -> None:
    with pytest.raises(ValidationError, match="finite"):
        Pong(timestamp=float("inf"))
    with pytest.raises(ValidationError, match="finite"):
        StartCallRequest(temperature=float("nan"))
    with pytest.raises(ValueError):
        dump(UnknownMessage(type="x", data={"type": "x", "v": float("nan")}))


# ------------------------------------------------------------ the connection


def test_a_deeply_nested_frame_is_a_bad_message_and_the_connection_goes_on() -> None:
    conn = debug_connection()
    conn.receive_text('{"type":"user_text_message","text":"x","extra":' + "[" * 1000 + "]" * 1000 + "}")
    [bad] = conn.events_received()
    assert isinstance(bad, BadMessage) and "nested more than 64 levels" in bad.reason
    assert "nested" in strict(conn.data_to_send()[0])["message"]
    conn.receive_text('{"type":"user_text_message","text":"still here"}')
    assert conn.events_received() == [UserTextMessage(text="still here")]


@pytest.mark.parametrize("timestamp", ["1e309", "NaN", "-Infinity"])
def test_a_ping_with_a_non_finite_timestamp_gets_no_invalid_json(timestamp: str) -> None:
    conn = debug_connection()
    conn.receive_text('{"type":"ping","timestamp":%s}' % timestamp)
    [bad] = conn.events_received()
    assert isinstance(bad, BadMessage) and "timestamp must be a finite number" in bad.reason
    frames = conn.data_to_send()
    assert [strict(f)["type"] for f in frames] == ["debug"]  # every frame is strict JSON, and there is no pong


def test_a_lone_surrogate_in_a_text_message_is_refused() -> None:
    conn = debug_connection()
    conn.receive_text('{"type":"user_text_message","text":"hi \\ud800"}')
    [bad] = conn.events_received()
    assert isinstance(bad, BadMessage) and bad.reason.startswith("text contains a lone surrogate")
    assert "lone surrogate" in strict(conn.data_to_send()[0])["message"]


def test_the_text_frame_limit_is_configurable_and_counts_utf8_bytes() -> None:
    conn = ServerConnection(max_text=100)
    conn.receive_text(json.dumps({"type": "user_text_message", "text": "\u00e9" * 40}, ensure_ascii=False))  # 80 + 37 bytes
    [bad] = conn.events_received()
    assert isinstance(bad, BadMessage) and "over the 100-byte limit" in bad.reason


# ------------------------------------------------------------- rate limits


def test_text_frames_over_the_rate_are_dropped_unparsed_and_reported_once_a_second() -> None:
    conn = ServerConnection(enabled_messages(None, ["debug"]), limits=InboundLimits(text_frames=10, burst_seconds=2))
    for _ in range(100):
        conn.receive_text('{"type":"ping","timestamp":1}', now=0.0)
    events = conn.events_received()
    assert events == [Throttled(text_frames=1, audio_frames=0, total=1)]  # the first drop is reported at once
    frames = [strict(f) for f in conn.data_to_send()]
    assert [f["type"] for f in frames].count("pong") == 20  # the burst: two seconds' worth
    assert [f["message"] for f in frames if f["type"] == "debug"] == [
        "Dropped 1 client frames over the rate limits (10 text frames, 262144 bytes of text and 500 audio frames a second)"]
    for _ in range(50):
        conn.receive_text("not even json", now=0.05)  # dropped before parsing: no BadMessage, no debug
    assert conn.events_received() == [] and conn.data_to_send() == []
    conn.receive_text('{"type":"ping","timestamp":2}', now=1.0)  # ten tokens back by now
    assert conn.events_received() == [Throttled(text_frames=129, audio_frames=0, total=130)]
    assert [strict(f)["type"] for f in conn.data_to_send()] == ["debug", "pong"]


def test_frames_at_the_rate_are_never_dropped() -> None:
    conn = ServerConnection(limits=InboundLimits(text_frames=10, audio_frames=50))
    for i in range(300):  # 30 s at 10 text and 50 audio frames a second
        now = i / 10
        conn.receive_text('{"type":"user_text_message","text":"%d"}' % i, now=now)
        for j in range(5):
            conn.receive_bytes(b"\x00\x00" * 160, now=now + j / 50)
    events = conn.events_received()
    assert len([e for e in events if isinstance(e, UserTextMessage)]) == 300
    assert len(events) == 300 + 1500 and not any(isinstance(e, Throttled) for e in events)


def test_text_bytes_and_audio_frames_have_their_own_buckets() -> None:
    conn = ServerConnection(limits=InboundLimits(text_frames=1000, text_bytes=1000, audio_frames=5, burst_seconds=1),
                            max_text=2000)
    big = json.dumps({"type": "user_text_message", "text": "x" * 1900})
    conn.receive_text(big, now=0.0)  # the byte bucket holds two frames of the largest size
    conn.receive_text(big, now=0.0)
    conn.receive_text(big, now=0.0)
    for _ in range(8):
        conn.receive_bytes(b"\x00\x00", now=0.0)
    events = conn.events_received()
    assert [type(e).__name__ for e in events].count("UserTextMessage") == 2
    assert [type(e).__name__ for e in events].count("AudioIn") == 5
    assert events[2] == Throttled(text_frames=1, audio_frames=0, total=1)


def test_without_a_clock_or_limits_nothing_is_dropped() -> None:
    limited = ServerConnection(limits=InboundLimits(text_frames=1, burst_seconds=1))
    unlimited = ServerConnection()
    for conn in (limited, unlimited):
        for _ in range(50):
            conn.receive_text('{"type":"hang_up"}')
        assert len(conn.events_received()) == 50


# ---------------------------------------------------------- REST body limits


def test_call_body_problems_name_each_field_and_setting() -> None:
    limits = BodyLimits(max_system_prompt_chars=10, max_initial_messages=2, max_initial_messages_bytes=60, max_metadata_bytes=20)
    assert call_body_problems({"systemPrompt": "x" * 10, "metadata": {"a": "b"}}, limits) == []
    problems = dict(call_body_problems({"systemPrompt": "x" * 11, "initialMessages": [{}, {}, {}],
                                        "metadata": {"k": "v" * 30}}, limits))
    assert problems["systemPrompt"] == "is 11 characters long; the limit is 10 (VOXCALL_MAX_SYSTEM_PROMPT_CHARS)"
    assert problems["initialMessages"] == "has 3 messages; the limit is 2 (VOXCALL_MAX_INITIAL_MESSAGES)"
    assert "VOXCALL_MAX_METADATA_BYTES" in problems["metadata"]
    sized = dict(call_body_problems({"initial_messages": [{"text": "y" * 40}, {"text": "z" * 40}]}, limits))
    assert sized["initialMessages"].startswith("is 105 bytes of JSON; the limit is 60")
    assert call_body_problems([1, 2], limits) == []
