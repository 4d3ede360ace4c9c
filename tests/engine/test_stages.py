"""Call stages in the engine: a client tool answers `responseType: "new-stage"` (scripted LLM, fake resolver)."""

from __future__ import annotations

import json
from typing import Any

from tests.engine.test_call import USER_FIRST, Harness
from voxcall.engine.call import Call
from voxcall.engine.spec import CallSpec, EventRecord, ToolDef, ToolParam
from voxcall.engine.stages import ResolvedStage, StageError, StageRecord, StageRequest, TokenCount
from voxcall.engine.tool_rounds import UNRUN
from voxcall.protocol.realtime import ClientToolInvocation, ClientToolResult, UserTextMessage
from voxcall.protocol.rest import CallMessage, first_stage_id
from voxcall.providers.base import TextDelta, ToolCall, ToolSpec
from voxcall.providers.fake import ScriptedLLM

STAGE_PARAM = ToolParam("stage", "body", "automatic", known="KNOWN_PARAM_CALL_STAGE_ID")
ADVANCE = ToolDef(ToolSpec("advance", "Next stage.", {"type": "object", "properties": {}}), parameters=(STAGE_PARAM,), timeout=2.0)
SPELL = ToolDef(ToolSpec("spell", "Spell a word.", {"type": "object", "properties": {}}), parameters=(STAGE_PARAM,), timeout=2.0)


class Resolver:
    """Resolves selectedTools by name among a fixed set; an unknown name is refused as the server would."""

    def __init__(self, known: dict[str, ToolDef]) -> None:
        self.known = known
        self.asked: list[StageRequest] = []

    async def resolve(self, request: StageRequest) -> ResolvedStage:
        self.asked.append(request)
        if request.selected_tools is None:
            return ResolvedStage(voice=request.changes.get("voice"))
        names = [t["toolName"] for t in request.selected_tools]
        if any(n not in self.known for n in names):
            raise StageError(f"unknown tool {names}")
        return ResolvedStage(tools=tuple(self.known[n] for n in names), tool_entries=[{"name": n} for n in names])


class StageHarness(Harness):
    def __init__(self, spec: CallSpec, llm: ScriptedLLM, resolver: Resolver | None) -> None:
        super().__init__(spec, llm)
        self.call = Call(spec, llm, send=self._send, record=self._record, stages=resolver)

    def messages(self) -> list[CallMessage]:
        return [r for r in self.records if isinstance(r, CallMessage)]

    def stages(self) -> list[StageRecord]:
        return [r for r in self.records if isinstance(r, StageRecord)]


def start(llm: ScriptedLLM, resolver: Resolver | None = None, **kw: Any) -> StageHarness:
    kw.setdefault("tools", (ADVANCE,))
    h = StageHarness(CallSpec(call_id="c1", greeting=USER_FIRST, system_prompt="Stage one.", **kw), llm, resolver)
    h.start()
    return h


async def answer(h: StageHarness, invocation: str, result: dict[str, Any] | str, **kw: Any) -> None:
    await h.until(lambda: any(i.invocation_id == invocation for i in h.of(ClientToolInvocation)))
    text = result if isinstance(result, str) else json.dumps(result)
    h.call.receive(ClientToolResult(invocation_id=invocation, result=text, response_type="new-stage", **kw))


async def test_a_new_stage_switches_prompt_and_stage_id_and_keeps_the_history() -> None:
    llm = ScriptedLLM([[ToolCall("t1", "advance", {})], [TextDelta("Now in two.")]])
    h = start(llm)
    h.call.receive(UserTextMessage(text="go on"))
    await answer(h, "t1", {"systemPrompt": "Stage two.", "temperature": 0.4, "toolResultText": "Moved to two."})
    await h.until(lambda: bool(h.finals()))
    h.call.end("hangup")
    await h.finish()
    first = first_stage_id("c1")
    assert h.of(ClientToolInvocation)[0].parameters == {"stage": first}
    second = llm.calls[1].messages
    assert second[0].content == "Stage two." and llm.calls[0].messages[0].content == "Stage one."
    assert [m.role for m in second[1:]] == ["user", "assistant", "tool"] and second[-1].content == "Moved to two."
    [stage] = h.stages()
    assert stage.call_stage_id != first and stage.settings == {"systemPrompt": "Stage two.", "temperature": 0.4}
    assert stage.tools is None and stage.initial_messages is None  # inherited: the store copies the history
    order = [(type(r).__name__, getattr(r, "role", None), getattr(r, "call_stage_id", None)) for r in h.records
             if not isinstance(r, EventRecord)]
    assert order == [("CallMessage", "MESSAGE_ROLE_USER", first), ("CallMessage", "MESSAGE_ROLE_TOOL_CALL", first),
                     ("CallMessage", "MESSAGE_ROLE_TOOL_RESULT", first), ("StageRecord", None, stage.call_stage_id),
                     ("CallMessage", "MESSAGE_ROLE_AGENT", stage.call_stage_id)]
    assert h.messages()[2].text == "Moved to two."
    assert h.call.spec.temperature == 0.4 and h.call.spec.call_stage_id == stage.call_stage_id
    events = [r for r in h.records if isinstance(r, EventRecord) and r.type == "call_stage"]
    assert events and events[0].call_stage_id == stage.call_stage_id


async def test_initial_messages_replace_the_history_and_tools_change_through_the_resolver() -> None:
    llm = ScriptedLLM([[ToolCall("t1", "advance", {})], [ToolCall("t2", "spell", {})], [TextDelta("Done.")]])
    resolver = Resolver({"spell": SPELL, "advance": ADVANCE})
    h = start(llm, resolver)
    h.call.receive(UserTextMessage(text="go on"))
    initial = [{"role": "MESSAGE_ROLE_USER", "text": "I want to spell."}]
    await answer(h, "t1", {"systemPrompt": "Spell.", "initialMessages": initial, "selectedTools": [{"toolName": "spell"}]})
    await h.until(lambda: any(i.invocation_id == "t2" for i in h.of(ClientToolInvocation)))
    [stage] = h.stages()
    assert h.of(ClientToolInvocation)[1].parameters == {"stage": stage.call_stage_id}  # KNOWN_PARAM_CALL_STAGE_ID
    h.call.receive(ClientToolResult(invocation_id="t2", result="S-P-E-L-L"))
    await h.until(lambda: bool(h.finals()))
    h.call.end("hangup")
    await h.finish()
    assert [t.name for t in llm.calls[1].tools] == ["spell"] and [t.name for t in llm.calls[0].tools] == ["advance"]
    assert [(m.role, m.content) for m in llm.calls[1].messages] == [("system", "Spell."), ("user", "I want to spell.")]
    assert stage.tools == [{"name": "spell"}] and stage.initial_messages is not None
    assert [m.text for m in stage.initial_messages] == ["I want to spell."]
    assert resolver.asked[0].tool_result_text == "OK"
    assert h.messages()[2].text == "OK"  # the default toolResultText, in the old stage


async def test_a_forbidden_or_invalid_field_is_a_tool_failure_and_the_stage_stays() -> None:
    llm = ScriptedLLM([[ToolCall("t1", "advance", {})], [TextDelta("Sorry.")], [ToolCall("t2", "advance", {})],
                       [TextDelta("Still one.")]])
    h = start(llm)
    h.call.receive(UserTextMessage(text="go"))
    await answer(h, "t1", {"systemPrompt": "Two.", "maxDuration": "10s"})
    await h.until(lambda: len(h.finals()) == 1)
    h.call.receive(UserTextMessage(text="again"))
    await answer(h, "t2", {"temperature": 7})
    await h.until(lambda: len(h.finals()) == 2)
    h.call.end("hangup")
    await h.finish()
    failures = [m for m in h.messages() if m.role == "MESSAGE_ROLE_TOOL_RESULT"]
    assert "could not start a new call stage: maxDuration cannot change" in (failures[0].text or "")
    assert "temperature" in (failures[1].text or "") and (failures[1].error_details or "").startswith("new-stage refused")
    assert h.stages() == [] and all(m.call_stage_id == first_stage_id("c1") for m in h.messages())
    assert all(c.messages[0].content == "Stage one." for c in llm.calls)


async def test_selected_tools_without_a_resolver_and_unknown_tools_are_refused() -> None:
    for resolver in (None, Resolver({})):
        llm = ScriptedLLM([[ToolCall("t1", "advance", {})], [TextDelta("Could not.")]])
        h = start(llm, resolver)
        h.call.receive(UserTextMessage(text="go"))
        await answer(h, "t1", {"selectedTools": [{"toolName": "nothing"}]})
        await h.until(lambda: bool(h.finals()))
        h.call.end("hangup")
        await h.finish()
        result = next(m for m in h.messages() if m.role == "MESSAGE_ROLE_TOOL_RESULT")
        assert "could not start a new call stage" in (result.text or "") and h.stages() == []
        assert [t.name for t in llm.calls[1].tools] == ["advance"]


async def test_the_rest_of_the_round_is_not_run_after_a_new_stage() -> None:
    llm = ScriptedLLM([[ToolCall("t1", "advance", {}), ToolCall("t2", "spell", {})], [TextDelta("Two.")]])
    h = start(llm, tools=(ADVANCE, SPELL))
    h.call.receive(UserTextMessage(text="go"))
    await answer(h, "t1", {"systemPrompt": "Two."})
    await h.until(lambda: bool(h.finals()))
    h.call.end("hangup")
    await h.finish()
    assert [i.invocation_id for i in h.of(ClientToolInvocation)] == ["t1"]
    [stage] = h.stages()
    results = [(m.invocation_id, m.text, m.call_stage_id) for m in h.messages() if m.role == "MESSAGE_ROLE_TOOL_RESULT"]
    assert results == [("t1", "OK", first_stage_id("c1")), ("t2", UNRUN, first_stage_id("c1"))]
    assert [m.role for m in llm.calls[1].messages] == ["system", "user", "assistant", "tool", "tool"]
    assert stage.call_stage_id == h.messages()[-1].call_stage_id


class BrokenResolver(Resolver):
    async def resolve(self, request: StageRequest) -> ResolvedStage:
        raise RuntimeError("the tool store is down")


async def test_a_failing_resolver_is_a_tool_failure_not_the_end_of_the_call() -> None:
    llm = ScriptedLLM([[ToolCall("t1", "advance", {})], [TextDelta("Could not.")]])
    h = start(llm, BrokenResolver({}))
    h.call.receive(UserTextMessage(text="go"))
    await answer(h, "t1", {"systemPrompt": "Two."})
    await h.until(lambda: bool(h.finals()))
    h.call.end("hangup")
    assert await h.finish() == "hangup"
    result = next(m for m in h.messages() if m.role == "MESSAGE_ROLE_TOOL_RESULT")
    assert "could not resolve the stage (RuntimeError)" in (result.text or "") and h.stages() == []


async def test_prompt_token_counts_are_recorded_per_stage_and_kept_off_the_tool_calls() -> None:
    llm = ScriptedLLM([[ToolCall("t1", "advance", {}, prompt_tokens=40)],
                       [TextDelta("Now in two."), TextDelta("", prompt_tokens=55)],
                       [TextDelta("Plain.")],  # a back end that did not count: nothing recorded
                       [TextDelta("Longer.", prompt_tokens=61)]])
    h = start(llm)
    h.call.receive(UserTextMessage(text="go on"))
    await answer(h, "t1", {"systemPrompt": "Stage two."})
    await h.until(lambda: len(h.finals()) == 1)
    h.call.receive(UserTextMessage(text="and?"))
    await h.until(lambda: len(h.finals()) == 2)
    h.call.receive(UserTextMessage(text="more"))
    await h.until(lambda: len(h.finals()) == 3)
    h.call.end("hangup")
    await h.finish()
    [stage] = h.stages()
    counts = [(r.call_stage_id, r.prompt_tokens) for r in h.records if isinstance(r, TokenCount)]
    assert counts == [(first_stage_id("c1"), 40), (stage.call_stage_id, 55), (stage.call_stage_id, 61)]
    assert [r for r in h.records if isinstance(r, TokenCount | StageRecord)][:2] == [
        TokenCount(first_stage_id("c1"), 40), stage]  # the first stage's count is queued before the stage changes
    tool_call = next(m for m in llm.calls[1].messages if m.tool_calls).tool_calls[0]
    assert tool_call == ToolCall("t1", "advance", {})  # the history's call carries no count
    assert [f.text for f in h.finals()] == ["Now in two.", "Plain.", "Longer."]
