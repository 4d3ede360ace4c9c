"""The pure parts of tool routing: modes, prompt rendering, grammars, JSON-string decoding."""

from __future__ import annotations

import json

import pytest

from voxcall.providers.base import ChatMessage, ToolCall, ToolSpec
from voxcall.providers.routing import (
    JsonStringDecoder,
    action_grammar,
    arguments_grammar,
    choose_mode,
    forced_after_action,
    render_messages,
    settle_action,
)

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = ToolSpec("getWeather", "Get the weather.", CITY)


def _decode(pieces: list[str]) -> tuple[str, bool]:
    decoder = JsonStringDecoder()
    out = "".join(decoder.feed(piece) for piece in pieces)
    return out + ("" if decoder.done else decoder.finish()), decoder.done


@pytest.mark.parametrize(
    "value",
    ['He said "hi"\n', "back\\slash/and\ttab", "caf\u00e9 \u2603 \U0001f600 end", "", "\b\f\r\u0001"],
)
def test_decoder_round_trips_json_split_at_every_point(value: str) -> None:
    encoded = json.dumps(value, ensure_ascii=True)[1:] + "} trailing"  # the body after the opening quote
    for cut in range(len(encoded) + 1):
        assert _decode([encoded[:cut], encoded[cut:]]) == (value, True), cut
    assert _decode(list(encoded)) == (value, True)


def test_decoder_keeps_raw_unicode_and_stops_at_the_quote() -> None:
    decoder = JsonStringDecoder()
    assert decoder.feed("Grüße, ") == "Grüße, "
    assert decoder.feed('😀 done"}') == "😀 done"
    assert decoder.done
    assert decoder.feed("more") == ""


def test_decoder_is_lenient_with_invalid_escapes_and_lone_surrogates() -> None:
    assert _decode(["it\\'s \\uZZ12 ", '\\ud83d x\\ude00"']) == ("it's uZZ12 \ufffd x\ufffd", True)
    assert _decode(["cut off \\u00"]) == ("cut off ", False)


def test_modes() -> None:
    user = ChatMessage("user", "hi")
    tool = ChatMessage("tool", "{}", tool_call_id="c")
    assert choose_mode([user], []) == "plain"
    assert choose_mode([user], [WEATHER]) == "route"
    assert choose_mode([user, tool], [WEATHER]) == "answer"
    assert choose_mode([user, tool], []) == "plain"


def test_rendered_prefix_is_stable_across_turns() -> None:
    system = ChatMessage("system", "You are helpful.")
    turn1 = [system, ChatMessage("user", "Weather in Paris?")]
    call = ToolCall("call_1", "getWeather", {"city": "Paris"})
    result = ChatMessage("tool", '{"temp_c": 21}', tool_call_id="call_1")
    turn2 = [*turn1, ChatMessage("assistant", tool_calls=(call,)), result]
    turn3 = [*turn2, ChatMessage("assistant", 'It is 21 "degrees".'), ChatMessage("user", "Thanks")]
    r1, r2, r3 = (render_messages(m, [WEATHER]) for m in (turn1, turn2, turn3))
    assert r3[: len(r2)] == r2 and r2[: len(r1)] == r1
    assert r1[0]["role"] == "system"
    assert r1[0]["content"].startswith(
        "You are helpful.\n\nYou can call these tools:\n- getWeather(city: string): Get the weather."
    )
    assert r2[2] == {"role": "assistant", "content": '{"action": "getWeather", "arguments": {"city": "Paris"}}'}
    assert r2[3] == {"role": "user", "content": 'Tool result for getWeather: {"temp_c": 21}'}
    assert json.loads(r3[4]["content"]) == {"action": "answer", "text": 'It is 21 "degrees".'}


def test_rendering_without_tools_is_plain() -> None:
    messages = [ChatMessage("user", "Hi"), ChatMessage("assistant", "Hello"), ChatMessage("tool", "x", name="t")]
    assert render_messages(messages, []) == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Tool result for t: x"},
    ]


def test_action_grammar_and_forced_text() -> None:
    answer_tool = ToolSpec("answer", "clashes with the text action")
    assert action_grammar([WEATHER, answer_tool]) == 'root ::= ("answer" | "getWeather") "\\","'
    assert forced_after_action("answer", "answer") == '", "text": "'
    assert forced_after_action("answer", 'answer",') == ' "text": "'
    assert forced_after_action("getWeather", "getWeather") == '", "arguments": '


def test_settle_action_waits_for_an_unambiguous_name() -> None:
    names = ["answer", "get", "getWeather"]
    assert settle_action("ans", names) is None
    assert settle_action("answer", names) == "answer"
    assert settle_action("get", names) is None  # could still become getWeather
    assert settle_action('get"', names) is None
    assert settle_action('get",', names) == "get"
    assert settle_action("getWeather", names) == "getWeather"


def test_arguments_grammar_follows_the_schema() -> None:
    pytest.importorskip("llama_cpp")
    grammar = arguments_grammar(WEATHER.parameters)
    assert '"\\"city\\""' in grammar and "root ::=" in grammar
    assert "root ::=" in arguments_grammar({"type": "object", "properties": {}})
    assert "root ::=" in arguments_grammar({"type": "object", "properties": {"x": {"type": "mystery"}}})
