"""The scripted LLM used by engine unit tests."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from voxcall.errors import ProviderError
from voxcall.providers.base import LLM, ChatMessage, LLMEvent, TextDelta, ToolCall, ToolSpec
from voxcall.providers.fake import ScriptedLLM


async def _collect(llm: ScriptedLLM, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()) -> list[LLMEvent]:
    return [event async for event in llm.stream(messages, tools)]


async def test_list_script_is_consumed_in_order_word_by_word() -> None:
    call = ToolCall("call_1", "getWeather", {"city": "Paris"})
    llm = ScriptedLLM([[TextDelta("Let me check.")], [call], [TextDelta("It is sunny.")]])
    assert isinstance(llm, LLM)
    user = [ChatMessage("user", "Weather?")]
    assert await _collect(llm, user) == [TextDelta("Let "), TextDelta("me "), TextDelta("check.")]
    assert await _collect(llm, user) == [call]
    assert "".join(e.text for e in await _collect(llm, user) if isinstance(e, TextDelta)) == "It is sunny."
    with pytest.raises(ProviderError, match="exhausted"):
        await _collect(llm, user)
    assert len(llm.calls) == 4
    assert llm.calls[0].messages == tuple(user)


async def test_callable_script_sees_messages_and_tools() -> None:
    tool = ToolSpec("getWeather", "Weather for a city.")

    def script(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> list[LLMEvent]:
        return [TextDelta(f"{len(messages)} messages, {len(tools)} tools")]

    llm = ScriptedLLM(script, delay=0.001)
    events = await _collect(llm, [ChatMessage("system", "s"), ChatMessage("user", "u")], [tool])
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "2 messages, 1 tools"
    assert llm.calls[0].tools == (tool,)


async def test_exceptions_in_a_reply_are_raised_where_they_stand() -> None:
    llm = ScriptedLLM([[TextDelta("partial"), ProviderError("boom", retryable=True)]])
    seen: list[LLMEvent] = []
    with pytest.raises(ProviderError, match="boom"):
        async for event in llm.stream([ChatMessage("user", "hi")]):
            seen.append(event)
    assert seen == [TextDelta("partial")]
