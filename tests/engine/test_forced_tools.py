"""forced_agent_message.toolCalls: the listed tools run as if the model had called them (PROTOCOL.md 2.5)."""

from __future__ import annotations

import asyncio

import pytest

from tests.engine.test_call import WEATHER, Harness, spec
from voxcall.engine.spec import ToolDef
from voxcall.protocol.realtime import (
    ClientToolInvocation,
    ClientToolResult,
    ForcedAgentMessage,
    ForcedToolCall,
    State,
)
from voxcall.providers.base import ChatMessage, TextDelta, ToolCall, ToolSpec
from voxcall.providers.fake import ScriptedLLM

LOOKUP = ForcedToolCall(id="forced1", name="getWeather", arguments={"city": "Oslo"})


async def test_forced_tool_call_is_invoked_after_the_content_and_the_agent_reacts() -> None:
    llm = ScriptedLLM([[TextDelta("It is 3 degrees in Oslo.")]])
    h = Harness(spec(tools=(WEATHER,)), llm).start()
    h.call.receive(ForcedAgentMessage(content="Let me look that up.", tool_calls=[LOOKUP]))
    await h.until(lambda: bool(h.of(ClientToolInvocation)))
    assert [t.text for t in h.finals()] == ["Let me look that up."]  # said first, then the tool runs
    invocation = h.of(ClientToolInvocation)[0]
    assert (invocation.tool_name, invocation.invocation_id, invocation.parameters) == ("getWeather", "forced1", {"city": "Oslo"})
    h.call.receive(ClientToolResult(invocation_id="forced1", result='{"tempC": 3}'))
    await h.until(lambda: len(h.finals()) == 2)
    assert h.finals()[1].text == "It is 3 degrees in Oslo."  # agentReaction speaks (the default): the model answers
    request = llm.calls[0].messages
    assert request[-2] == ChatMessage("assistant", "Let me look that up.", tool_calls=(ToolCall("forced1", "getWeather", {"city": "Oslo"}),))
    assert request[-1] == ChatMessage("tool", '{"tempC": 3}', tool_call_id="forced1", name="getWeather")
    await h.until(lambda: len(h.records) == 4)
    assert [(r.role, r.text, r.invocation_id) for r in h.records] == [
        ("MESSAGE_ROLE_AGENT", "Let me look that up.", None), ("MESSAGE_ROLE_TOOL_CALL", '{"city": "Oslo"}', "forced1"),
        ("MESSAGE_ROLE_TOOL_RESULT", '{"tempC": 3}', "forced1"), ("MESSAGE_ROLE_AGENT", "It is 3 degrees in Oslo.", None)]
    h.call.end("hangup")
    await h.finish()


@pytest.mark.parametrize(("content", "reaction", "generates"),
                         [("Checking.", "listens", False), ("Checking.", "speaks-once", False), ("", "speaks-once", True)])
async def test_forced_tool_call_reactions(content: str, reaction: str, generates: bool) -> None:
    llm = ScriptedLLM([[TextDelta("Done.")]])
    h = Harness(spec(tools=(WEATHER,)), llm).start()
    h.call.receive(ForcedAgentMessage(content=content, tool_calls=[ForcedToolCall(name="getWeather", arguments={})]))
    await h.until(lambda: bool(h.of(ClientToolInvocation)))
    invocation_id = h.of(ClientToolInvocation)[0].invocation_id
    assert invocation_id  # generated when the message has no id
    h.call.receive(ClientToolResult(invocation_id=invocation_id, result="ok", agent_reaction=reaction))  # type: ignore[arg-type]
    await h.until(lambda: any(r.role == "MESSAGE_ROLE_TOOL_RESULT" for r in h.records))
    await h.until(lambda: h.of(State)[-1].state == "listening")
    await asyncio.sleep(0.05)
    assert bool(llm.calls) is generates
    assert [t.text for t in h.finals()] == [t for t in (content, "Done." if generates else "") if t]
    h.call.end("hangup")
    await h.finish()


async def test_forced_static_and_unknown_tools_go_to_the_history() -> None:
    static = ToolDef(ToolSpec("policy", "The refund policy", {"type": "object", "properties": {}}), kind="static",
                     static_response="30 days", default_reaction="listens")
    llm = ScriptedLLM([[TextDelta("Refunds take 30 days.")]])
    h = Harness(spec(tools=(static,)), llm).start()
    h.call.receive(ForcedAgentMessage(tool_calls=[ForcedToolCall(id="a", name="policy"), ForcedToolCall(id="b", name="nope")],
                                      urgency="immediate"))
    await h.until(lambda: sum(r.role == "MESSAGE_ROLE_TOOL_RESULT" for r in h.records) == 2)
    results = [r for r in h.records if r.role == "MESSAGE_ROLE_TOOL_RESULT"]
    assert (results[0].invocation_id, results[0].text) == ("a", "30 days")
    assert results[1].invocation_id == "b" and results[1].error_details == "unknown tool"
    await h.until(lambda: bool(h.finals()))  # the last call's reaction (speaks) decides
    assert not h.of(ClientToolInvocation) and [t.text for t in h.finals()] == ["Refunds take 30 days."]
    assert llm.calls[0].messages[-1].tool_call_id == "b"
    h.call.end("hangup")
    await h.finish()
