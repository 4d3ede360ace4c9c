"""Engine unit tests: the call loop with a scripted LLM (no sockets, no models)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from voxcall.engine.call import APOLOGY, Call
from voxcall.engine.spec import CallSpec, Greeting, ToolDef
from voxcall.errors import ProviderError
from voxcall.protocol.connection import BadMessage
from voxcall.protocol.realtime import (
    ClientToolInvocation,
    ClientToolResult,
    Debug,
    ForcedAgentMessage,
    HangUp,
    InputTextMessage,
    SetOutputMedium,
    State,
    Transcript,
    UserTextMessage,
)
from voxcall.providers.base import ChatMessage, TextDelta, ToolCall, ToolSpec
from voxcall.providers.fake import ScriptedLLM

USER_FIRST = Greeting(agent_first=False)
WEATHER = ToolDef(ToolSpec("getWeather", "Weather", {"type": "object", "properties": {"city": {"type": "string"}}}), timeout=1.0)


class Harness:
    def __init__(self, spec: CallSpec, llm: ScriptedLLM) -> None:
        self.sent: list[Any] = []
        self.records: list[Any] = []
        self.call = Call(spec, llm, send=self._send, record=self._record)
        self.task: asyncio.Task[str] | None = None

    async def _send(self, message: Any) -> None:
        self.sent.append(message)

    async def _record(self, message: Any) -> None:
        self.records.append(message)

    def start(self) -> Harness:
        self.task = asyncio.create_task(self.call.run())
        return self

    async def until(self, predicate: Callable[[], bool], timeout: float = 3.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.005)

    def of(self, kind: type) -> list[Any]:
        return [m for m in self.sent if isinstance(m, kind)]

    def finals(self, role: str = "agent") -> list[Transcript]:
        return [t for t in self.of(Transcript) if t.final and t.role == role]

    async def finish(self) -> str:
        assert self.task is not None
        async with asyncio.timeout(5):
            return await self.task


def spec(**kw: Any) -> CallSpec:
    kw.setdefault("greeting", USER_FIRST)
    return CallSpec(call_id="c1", **kw)


async def test_generated_greeting_streams_text_then_deltas_then_full_final() -> None:
    h = Harness(spec(greeting=Greeting()), ScriptedLLM([[TextDelta("Hello there, how can I help?")]])).start()
    await h.until(lambda: h.finals())
    transcripts = h.of(Transcript)
    assert transcripts[0].text == "Hello " and transcripts[0].delta is None and transcripts[0].ordinal == 0
    assert all(t.delta and t.text is None for t in transcripts[1:-1])
    assert transcripts[-1].text == "Hello there, how can I help?" and transcripts[-1].final
    await h.until(lambda: h.of(State)[-1].state == "listening")
    assert [s.state for s in h.of(State)] == ["idle", "thinking", "speaking", "listening"]
    h.call.end("hangup")
    assert await h.finish() == "hangup"


async def test_greeting_disabled_waits_for_user() -> None:
    llm = ScriptedLLM([[TextDelta("Hi!")]])
    h = Harness(spec(greeting=Greeting(generate=False)), llm).start()
    await h.until(lambda: bool(h.of(State)) and h.of(State)[-1].state == "listening")
    await asyncio.sleep(0.05)
    assert llm.calls == [] and not h.of(Transcript)
    h.call.end("hangup")
    await h.finish()


async def test_fixed_greeting_text_is_said_without_the_model() -> None:
    llm = ScriptedLLM([])
    h = Harness(spec(greeting=Greeting(text="Welcome to Acme.")), llm).start()
    await h.until(lambda: h.finals())
    assert h.finals()[0].text == "Welcome to Acme." and llm.calls == []
    h.call.end("hangup")
    await h.finish()


async def test_user_text_is_echoed_and_answered_with_shared_ordinals() -> None:
    llm = ScriptedLLM([[TextDelta("I am fine.")]])
    h = Harness(spec(), llm).start()
    h.call.receive(UserTextMessage(text="Hello, how are you?"))
    await h.until(lambda: h.finals())
    user = h.finals("user")
    assert [(u.text, u.medium, u.ordinal) for u in user] == [("Hello, how are you?", "text", 0)]
    assert h.finals()[0].ordinal == 1 and h.finals()[0].text == "I am fine."
    assert llm.calls[0].messages[-1] == ChatMessage("user", "Hello, how are you?")
    await h.until(lambda: len(h.records) == 2)
    assert [(r.role, r.text) for r in h.records] == [("MESSAGE_ROLE_USER", "Hello, how are you?"), ("MESSAGE_ROLE_AGENT", "I am fine.")]
    h.call.end("hangup")
    await h.finish()


@pytest.mark.parametrize(
    "message",
    [UserTextMessage(text="note this", defer_response=True), UserTextMessage(text="note this", urgency="later"),
     InputTextMessage(text="note this", defer_response=True)],
)
async def test_deferred_text_adds_history_without_a_reply(message: Any) -> None:
    llm = ScriptedLLM([])
    h = Harness(spec(), llm).start()
    h.call.receive(message)
    await h.until(lambda: len(h.records) == 1)
    await asyncio.sleep(0.05)
    assert llm.calls == [] and h.records[0].text == "note this" and h.finals("user")[0].text == "note this"
    h.call.end("hangup")
    await h.finish()


async def test_immediate_text_interrupts_and_history_keeps_only_what_was_sent() -> None:
    long = "one two three four five six seven eight nine ten eleven twelve"
    llm = ScriptedLLM([[TextDelta(long)], [TextDelta("Sure, stopping.")]], delay=0.03)
    h = Harness(spec(), llm).start()
    h.call.receive(UserTextMessage(text="Count please"))
    await h.until(lambda: len(h.of(Transcript)) >= 4)
    h.call.receive(InputTextMessage(text="Stop"))  # legacy message without defer = immediate
    await h.until(lambda: len(h.finals()) == 2)
    first = h.finals()[0]
    assert first.text != long and long.startswith(first.text.strip())
    second_request = llm.calls[1].messages
    assert second_request[-2].role == "assistant" and second_request[-2].content == first.text
    assert second_request[-1] == ChatMessage("user", "Stop")
    ordinals = [t.ordinal for t in h.of(Transcript) if t.final]
    assert sorted(ordinals) == list(range(len(ordinals)))
    h.call.end("hangup")
    await h.finish()


async def test_soon_text_waits_for_the_current_reply() -> None:
    llm = ScriptedLLM([[TextDelta("a b c d e f")], [TextDelta("Second answer.")]], delay=0.02)
    h = Harness(spec(), llm).start()
    h.call.receive(UserTextMessage(text="first"))
    await h.until(lambda: len(h.of(Transcript)) >= 3)
    h.call.receive(UserTextMessage(text="second", urgency="soon"))
    await h.until(lambda: len(h.finals()) == 2)
    assert h.finals()[0].text == "a b c d e f"
    assert [m.content for m in llm.calls[1].messages[1:]] == ["first", "a b c d e f", "second"]
    h.call.end("hangup")
    await h.finish()


async def test_client_tool_round_trip_feeds_the_result_back() -> None:
    llm = ScriptedLLM([[ToolCall("inv1", "getWeather", {"city": "Paris"})], [TextDelta("It is sunny in Paris.")]])
    h = Harness(spec(tools=(WEATHER,)), llm).start()
    h.call.receive(UserTextMessage(text="Weather in Paris?"))
    await h.until(lambda: bool(h.of(ClientToolInvocation)))
    invocation = h.of(ClientToolInvocation)[0]
    assert (invocation.tool_name, invocation.invocation_id, invocation.parameters) == ("getWeather", "inv1", {"city": "Paris"})
    h.call.receive(ClientToolResult(invocation_id="inv1", result='{"sky": "sunny"}'))
    await h.until(lambda: h.finals())
    assert h.finals()[0].text == "It is sunny in Paris."
    assert llm.calls[1].messages[-1] == ChatMessage("tool", '{"sky": "sunny"}', tool_call_id="inv1", name="getWeather")
    await h.until(lambda: len(h.records) == 4)
    assert [r.role for r in h.records] == ["MESSAGE_ROLE_USER", "MESSAGE_ROLE_TOOL_CALL", "MESSAGE_ROLE_TOOL_RESULT", "MESSAGE_ROLE_AGENT"]
    # late and unknown results are ignored with a debug message, and the call goes on
    h.call.receive(ClientToolResult(invocation_id="inv1", result="again"))
    h.call.receive(ClientToolResult(invocation_id="nope", result="x"))
    await h.until(lambda: sum("Ignored client_tool_result" in d.message for d in h.of(Debug)) == 2)
    h.call.end("hangup")
    assert await h.finish() == "hangup"


async def test_listens_reaction_and_timeout_and_errors() -> None:
    llm = ScriptedLLM([[ToolCall("a", "getWeather", {})], [ToolCall("b", "getWeather", {})], [TextDelta("Sorry.")]])
    h = Harness(spec(tools=(WEATHER,)), llm).start()
    h.call.receive(UserTextMessage(text="x"))
    await h.until(lambda: bool(h.of(ClientToolInvocation)))
    h.call.receive(ClientToolResult(invocation_id="a", result="ok", agent_reaction="listens"))
    await h.until(lambda: h.of(State)[-1].state == "listening")
    assert len(llm.calls) == 1  # listens: no generation after the result
    h.call.receive(UserTextMessage(text="y"))
    await h.until(lambda: len(h.of(ClientToolInvocation)) == 2)
    await h.until(lambda: h.finals(), timeout=4)  # no result: times out after 1 s, then the agent speaks
    results = [r for r in h.records if r.role == "MESSAGE_ROLE_TOOL_RESULT"]
    assert "did not answer in time" in results[-1].text and results[-1].error_details
    h.call.end("hangup")
    await h.finish()


async def test_tool_error_result_is_reported_to_the_model() -> None:
    llm = ScriptedLLM([[ToolCall("a", "getWeather", {})], [TextDelta("Could not check.")]])
    h = Harness(spec(tools=(WEATHER,)), llm).start()
    h.call.receive(UserTextMessage(text="x"))
    await h.until(lambda: bool(h.of(ClientToolInvocation)))
    h.call.receive(ClientToolResult(invocation_id="a", error_type="implementation-error", error_message="boom"))
    await h.until(lambda: h.finals())
    result = [r for r in h.records if r.role == "MESSAGE_ROLE_TOOL_RESULT"][0]
    assert "failed" in result.text and result.error_details == "boom" and "boom" not in result.text
    h.call.end("hangup")
    await h.finish()


async def test_hang_up_result_ends_the_call_as_agent_hangup() -> None:
    llm = ScriptedLLM([[ToolCall("a", "getWeather", {})]])
    h = Harness(spec(tools=(WEATHER,)), llm).start()
    h.call.receive(UserTextMessage(text="bye"))
    await h.until(lambda: bool(h.of(ClientToolInvocation)))
    h.call.receive(ClientToolResult(invocation_id="a", result='{"strict": true, "message": "Goodbye."}', response_type="hang-up"))
    assert await h.finish() == "agent_hangup"
    assert h.finals()[-1].text == "Goodbye."


async def test_forced_message_and_hang_up_with_message() -> None:
    h = Harness(spec(), ScriptedLLM([])).start()
    h.call.receive(ForcedAgentMessage(content="Please hold.", uninterruptible=True))
    await h.until(lambda: h.finals())
    assert h.finals()[0].text == "Please hold."
    h.call.receive(HangUp(message="Bye now."))
    assert await h.finish() == "hangup"
    assert h.finals()[-1].text == "Bye now."
    assert [r.text for r in h.records] == ["Please hold.", "Bye now."]


async def test_max_duration_says_the_message_and_ends_with_timeout() -> None:
    h = Harness(spec(max_duration=0.1, time_exceeded_message="Time is up."), ScriptedLLM([])).start()
    assert await h.finish() == "timeout"
    assert h.finals()[-1].text == "Time is up."


async def test_llm_failure_apologises_and_the_call_goes_on() -> None:
    llm = ScriptedLLM([[ProviderError("backend down")], [TextDelta("Better now.")]])
    h = Harness(spec(), llm).start()
    h.call.receive(UserTextMessage(text="hi"))
    await h.until(lambda: h.finals())
    assert h.finals()[0].text == APOLOGY
    assert any("backend down" in d.message for d in h.of(Debug))
    h.call.receive(BadMessage("invalid JSON"))
    h.call.receive(SetOutputMedium(medium="text"))
    h.call.receive(UserTextMessage(text="again"))
    await h.until(lambda: len(h.finals()) == 2)
    assert h.finals()[1].text == "Better now."
    h.call.end("hangup")
    assert await h.finish() == "hangup"


async def test_user_first_fallback_speaks_after_the_delay() -> None:
    h = Harness(spec(greeting=Greeting(agent_first=False, text="Are you there?", delay=0.05)), ScriptedLLM([])).start()
    await h.until(lambda: h.finals())
    assert h.finals()[0].text == "Are you there?"
    h.call.end("hangup")
    await h.finish()


async def test_history_ending_with_user_message_is_answered_first() -> None:
    llm = ScriptedLLM([[TextDelta("Answer to the prior question.")]])
    h = Harness(spec(history=(ChatMessage("user", "What is 2+2?"),)), llm).start()
    await h.until(lambda: h.finals())
    assert llm.calls[0].messages[-1].content == "What is 2+2?"
    h.call.end("hangup")
    await h.finish()
