"""OpenAILLM against httpx.MockTransport handlers (SSE framing, tool-call deltas, error mapping)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from voxcall.errors import ProviderError
from voxcall.providers.base import LLM, ChatMessage, LLMEvent, TextDelta, ToolCall, ToolSpec
from voxcall.providers.openai import OpenAILLM

WEATHER = ToolSpec("getWeather", "Weather for a city.", {"type": "object", "properties": {"city": {"type": "string"}}})


def _sse(*chunks: dict[str, Any] | str) -> bytes:
    events = [c if isinstance(c, str) else json.dumps(c) for c in chunks]
    return "".join(f"data: {event}\n\n" for event in events).encode()


def _delta(**delta: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    return {"id": "x", "object": "chat.completion.chunk", "choices": [choice]}


def _llm(handler: Callable[[httpx.Request], httpx.Response], **options: Any) -> OpenAILLM:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return OpenAILLM(base_url="http://llm.test/v1/", model="m", client=client, **options)


async def _collect(llm: OpenAILLM, messages: list[ChatMessage], tools: list[ToolSpec] | None = None) -> list[LLMEvent]:
    return [event async for event in llm.stream(messages, tools or [])]


async def test_text_stream_and_request_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = _sse(_delta(role="assistant"), _delta(content="Hel"), _delta(content="lo!"), "[DONE]")
        # A comment line and an event field must be ignored.
        return httpx.Response(200, content=b": keep-alive\n\nevent: message\n" + body)

    llm = _llm(handler, api_key="sk-test")
    assert isinstance(llm, LLM)
    events = await _collect(llm, [ChatMessage("system", "Be brief."), ChatMessage("user", "Hi")])
    assert events == [TextDelta("Hel"), TextDelta("lo!")]
    request = seen[0]
    assert request.url == "http://llm.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    body = json.loads(request.content)
    assert body["stream"] is True and body["model"] == "m" and "tools" not in body
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


USAGE = {"id": "x", "object": "chat.completion.chunk", "choices": [],
         "usage": {"prompt_tokens": 37, "completion_tokens": 2, "total_tokens": 39}}


async def test_the_usage_chunk_gives_the_prompt_length_on_a_last_empty_delta() -> None:
    def text(request: httpx.Request) -> httpx.Response:
        end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        return httpx.Response(200, content=_sse(_delta(content="Hi."), end, USAGE, "[DONE]"))

    def tool(request: httpx.Request) -> httpx.Response:
        call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "getWeather", "arguments": "{}"}}
        return httpx.Response(200, content=_sse(_delta(tool_calls=[call]), USAGE, "[DONE]"))

    def odd(request: httpx.Request) -> httpx.Response:  # usage that is not a count is not one
        bad = {**USAGE, "usage": {"prompt_tokens": "many"}}
        return httpx.Response(200, content=_sse(_delta(content="Hi."), bad, {"choices": [], "usage": None}, "[DONE]"))

    hi = [ChatMessage("user", "Hi")]
    assert await _collect(_llm(text), hi) == [TextDelta("Hi."), TextDelta("", prompt_tokens=37)]
    assert await _collect(_llm(tool), hi, [WEATHER]) == [ToolCall("call_1", "getWeather", {}),
                                                         TextDelta("", prompt_tokens=37)]
    assert await _collect(_llm(odd), hi) == [TextDelta("Hi.")]


async def test_tool_call_split_over_chunks_and_history_shape() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(
            200,
            content=_sse(
                _delta(
                    role="assistant",
                    content=None,
                    tool_calls=[
                        {
                            "index": 0,
                            "id": "call_abc",
                            "type": "function",
                            "function": {"name": "getWea", "arguments": ""},
                        }
                    ],
                ),
                _delta(tool_calls=[{"index": 0, "function": {"name": "ther", "arguments": '{"ci'}}]),
                _delta(tool_calls=[{"index": 0, "function": {"arguments": 'ty": "Pa'}}]),
                _delta(
                    tool_calls=[{"index": 1, "id": "call_def", "function": {"name": "getWeather", "arguments": "{}"}}]
                ),
                _delta(tool_calls=[{"index": 0, "function": {"arguments": 'ris"}'}}]),
                {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
                "[DONE]",
            ),
        )

    history = [
        ChatMessage("user", "Weather in Rome?"),
        ChatMessage("assistant", tool_calls=(ToolCall("call_1", "getWeather", {"city": "Rome"}),)),
        ChatMessage("tool", '{"temp_c": 20}', tool_call_id="call_1", name="getWeather"),
        ChatMessage("user", "And Paris?"),
    ]
    events = await _collect(_llm(handler), history, [WEATHER])
    assert events == [
        ToolCall("call_abc", "getWeather", {"city": "Paris"}),
        ToolCall("call_def", "getWeather", {}),
    ]
    body = seen[0]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "getWeather", "description": "Weather for a city.", "parameters": WEATHER.parameters},
        }
    ]
    assert body["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "getWeather", "arguments": '{"city": "Rome"}'}}
        ],
    }
    assert body["messages"][2] == {"role": "tool", "content": '{"temp_c": 20}', "tool_call_id": "call_1"}


async def test_tool_call_without_id_gets_one_and_stream_may_end_without_done() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content=_sse(
                _delta(tool_calls=[{"index": 0, "function": {"name": "getWeather", "arguments": '{"city":"Oslo"}'}}])
            ).rstrip(b"\n"),
        )

    [event] = await _collect(_llm(handler), [ChatMessage("user", "Oslo?")], [WEATHER])
    assert isinstance(event, ToolCall) and event.id.startswith("call_") and event.arguments == {"city": "Oslo"}


@pytest.mark.parametrize(
    ("status", "retryable"), [(400, False), (401, False), (404, False), (429, True), (500, True), (503, True)]
)
async def test_http_errors_map_to_provider_error(status: int, retryable: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": {"message": "nope"}})

    with pytest.raises(ProviderError, match=str(status)) as info:
        await _collect(_llm(handler), [ChatMessage("user", "hi")])
    assert info.value.retryable is retryable
    assert isinstance(info.value.__cause__, httpx.HTTPStatusError)


@pytest.mark.parametrize("error", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
async def test_transport_errors_are_retryable(error: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(ProviderError) as info:
        await _collect(_llm(handler), [ChatMessage("user", "hi")])
    assert info.value.retryable is True
    assert info.value.__cause__ is error


async def test_error_inside_the_stream_and_bad_json() -> None:
    def in_stream(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=_sse(_delta(content="Hi"), {"error": {"message": "overloaded"}}))

    with pytest.raises(ProviderError, match="overloaded"):
        await _collect(_llm(in_stream), [ChatMessage("user", "hi")])

    def bad_json(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"data: {not json\n\n")

    with pytest.raises(ProviderError, match="invalid JSON"):
        await _collect(_llm(bad_json), [ChatMessage("user", "hi")])


async def test_invalid_tool_arguments() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content=_sse(
                _delta(
                    tool_calls=[{"index": 0, "id": "c", "function": {"name": "getWeather", "arguments": '{"city": '}}]
                ),
                "[DONE]",
            ),
        )

    with pytest.raises(ProviderError, match="invalid arguments"):
        await _collect(_llm(handler), [ChatMessage("user", "hi")], [WEATHER])


async def test_closing_the_consumer_closes_the_response() -> None:
    closed: list[bool] = []

    class Body(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[override]
            for word in ["One", " two", " three"]:
                yield _sse(_delta(content=word))

        async def aclose(self) -> None:
            closed.append(True)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Body())

    stream = _llm(handler).stream([ChatMessage("user", "count")])
    assert await anext(stream) == TextDelta("One")
    await stream.aclose()
    assert closed == [True]


async def test_owned_client_is_closed() -> None:
    llm = OpenAILLM(base_url="http://llm.test/v1", model="m", timeout=5)
    await llm.aclose()
    assert llm._client.is_closed
