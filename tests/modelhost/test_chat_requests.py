"""The model host's request rules, without a model: OpenAI chat bodies to `ChatMessage`s, refusals, stop sequences."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from voxcall.config import Settings
from voxcall.modelhost.chat import (
    ChatRequest,
    _stopped_at,
    check,
    to_messages,
    to_tools,
)
from voxcall.modelhost.errors import HostError
from voxcall.providers.base import LLMEvent, TextDelta, ToolCall


def body(**fields: object) -> ChatRequest:
    return ChatRequest.model_validate({"messages": [{"role": "user", "content": "Hi"}], **fields})


def test_messages_become_chat_messages_with_tool_calls_and_results() -> None:
    request = body(messages=[
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather "}, {"type": "text", "text": "in Paris?"}]},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "getWeather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ])
    system, user, call, result = to_messages(request)
    assert (system.role, system.content) == ("system", "Be brief.")
    assert user.content == "Weather in Paris?"
    assert call.tool_calls == (ToolCall("c1", "getWeather", {"city": "Paris"}),) and call.content == ""
    assert (result.role, result.tool_call_id, result.content) == ("tool", "c1", "sunny")


@pytest.mark.parametrize("message, where", [
    ({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}, "only text content parts"),
    ({"role": "tool", "content": "sunny"}, "needs tool_call_id"),
    ({"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}]}, "not a JSON object"),
])
def test_unreadable_messages_are_refused_with_400(message: dict[str, object], where: str) -> None:
    with pytest.raises(HostError) as caught:
        to_messages(body(messages=[message]))
    assert caught.value.status == 400 and where in caught.value.message


@pytest.mark.parametrize("fields, param", [
    ({"n": 2}, "n"), ({"tool_choice": "required"}, "tool_choice"),
    ({"tool_choice": {"type": "function", "function": {"name": "f"}}}, "tool_choice"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
])
def test_what_the_embedded_model_cannot_do_is_refused(fields: dict[str, object], param: str) -> None:
    with pytest.raises(HostError) as caught:
        check(body(**fields))
    assert caught.value.status == 400 and caught.value.param == param


def test_tool_choice_none_drops_the_tools_and_limits_default() -> None:
    tools = [{"type": "function", "function": {"name": "getWeather", "parameters": {"type": "object", "properties": {}}}}]
    assert [t.name for t in to_tools(body(tools=tools))] == ["getWeather"]
    assert to_tools(body(tools=tools, tool_choice="none")) == ()
    assert body().limit() == 512 and body(max_tokens=9).limit() == 9 and body(max_tokens=9, max_completion_tokens=3).limit() == 3


async def _events(*items: LLMEvent) -> AsyncIterator[LLMEvent]:
    for item in items:
        yield item


async def test_text_ends_before_the_first_stop_sequence_even_across_deltas() -> None:
    source = _events(TextDelta("Hello wo"), TextDelta("rld. END more"), TextDelta("never sent"))
    out = [e.text async for e in _stopped_at(source, ["END", "rld!"]) if isinstance(e, TextDelta)]
    assert "".join(out) == "Hello world. "
    passed = [e async for e in _stopped_at(_events(TextDelta("a"), ToolCall("c", "f", {})), ["zz"])]
    assert passed == [TextDelta("a"), ToolCall("c", "f", {})]


def test_models_url_points_all_three_at_one_host_and_explicit_settings_win(tmp_path: object) -> None:
    one = Settings(models_url="http://127.0.0.1:8001/v1", models_api_key="k", data_dir=str(tmp_path))
    assert (one.llm, one.llm_url, one.stt_url, one.tts_url) == ("openai", *["http://127.0.0.1:8001/v1"] * 3)
    assert (one.llm_api_key, one.speech_api_key) == ("k", "k")
    mixed = Settings(models_url="http://h/v1", tts_url="http://tts/v1", llm="smollm2-135m", data_dir=str(tmp_path))
    assert (mixed.llm, mixed.stt_url, mixed.tts_url) == ("smollm2-135m", "http://h/v1", "http://tts/v1")


def test_the_cli_flag_sets_the_model_host(tmp_path: object) -> None:
    from voxcall.cli import _parser, _settings

    args = _parser().parse_args(["serve", "--models-url", "http://127.0.0.1:8001/v1", "--data-dir", str(tmp_path)])
    settings = _settings(args)
    assert settings.llm == "openai" and settings.stt_url == settings.tts_url == "http://127.0.0.1:8001/v1"


async def test_tool_calls_in_the_shapes_openai_and_the_call_plane_read() -> None:
    """What the host sends for a tool call: the official SDK's types accept it, and voxcall's client gets the events back."""
    import httpx
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    from voxcall.modelhost.chat import chunks, whole
    from voxcall.providers.base import ChatMessage, ToolSpec
    from voxcall.providers.openai import OpenAILLM

    said = [TextDelta("Let me check. "), ToolCall("call_1", "getWeather", {"city": "Paris"})]
    completion = ChatCompletion.model_validate(await whole("m", _events(*said)))
    assert completion.choices[0].finish_reason == "tool_calls"
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert (call.id, call.function.name, call.function.arguments) == ("call_1", "getWeather", '{"city": "Paris"}')  # type: ignore[union-attr]

    stream = "".join([piece async for piece in chunks("m", _events(*said))])
    data = [line[6:] for line in stream.splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    parsed = [ChatCompletionChunk.model_validate_json(item) for item in data[:-1]]
    assert parsed[-1].choices[0].finish_reason == "tool_calls"
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text=stream, headers={"content-type": "text/event-stream"}))
    async with httpx.AsyncClient(transport=transport) as client:
        llm = OpenAILLM(base_url="http://host/v1", model="m", client=client)
        got = [e async for e in llm.stream([ChatMessage("user", "hi")], [ToolSpec("getWeather", "")])]
    assert got == said
