"""Transcript ordinals, history order and durability over random interleavings (PROTOCOL.md 2.7).

A property test drives the engine with the scripted fakes: random client events
(user text of every urgency, deferred and legacy text, forced messages, hang-ups,
output-medium switches), at random moments, against a scripted model with random
delays, tool calls and failures, a client that answers tool calls late, wrongly or
never, and a database whose writes take time. Whatever happens, the client's view
must hold: ordinals dense from 0 and ascending by first appearance, one non-empty
final per ordinal, `text` xor `delta`; the recorded history agrees with the
ordinals; nothing is told to the client before it is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.engine.test_call import WEATHER as CLIENT_WEATHER
from tests.engine.test_call import Harness, spec
from voxcall.engine.call import Call
from voxcall.engine.spec import (
    CallSpec,
    EventRecord,
    Greeting,
    Speech,
    ToolDef,
    VoiceSpec,
)
from voxcall.errors import ProviderError
from voxcall.protocol.realtime import (
    ClientToolInvocation,
    ClientToolResult,
    ForcedAgentMessage,
    ForcedToolCall,
    HangUp,
    InputTextMessage,
    SetOutputMedium,
    State,
    Transcript,
    UserTextMessage,
)
from voxcall.protocol.rest import CallMessage
from voxcall.providers.base import ChatMessage, TextDelta, ToolCall, ToolSpec
from voxcall.providers.fake import EnergyVAD, ScriptedLLM, ScriptedSTT, ToneTTS

WEATHER = ToolDef(ToolSpec("getWeather", "Weather", {"type": "object", "properties": {}}), timeout=0.08)
HANG_UP = ToolDef(ToolSpec("hangUp", "End the call", {"type": "object", "properties": {}}), kind="hang_up")
TRANSCRIBED = ("MESSAGE_ROLE_USER", "MESSAGE_ROLE_AGENT")

# ------------------------------------------------------------------ strategies

words = st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta", "one", "two", "three."]), min_size=1, max_size=6).map(" ".join)
reply = st.one_of(
    words.map(lambda w: ("text", w)),
    words.map(lambda w: ("text+tool", w)),
    st.just(("tool", "")),
    st.just(("hang-up tool", "")),
    st.just(("fail", "")),
    st.just(("empty", "")),
)
user_text = st.one_of(
    st.builds(UserTextMessage, text=words, urgency=st.sampled_from([None, "immediate", "soon", "later"]),
              defer_response=st.sampled_from([None, None, True])),
    st.builds(InputTextMessage, text=words, defer_response=st.sampled_from([None, True])),
)
forced = st.builds(ForcedAgentMessage, content=st.one_of(st.just(""), words), urgency=st.sampled_from([None, "immediate", "soon"]),
                   uninterruptible=st.booleans(),
                   tool_calls=st.one_of(st.none(), st.just([ForcedToolCall(name="getWeather", arguments={"city": "Oslo"})])))
client_event = st.one_of(
    user_text, user_text, user_text, forced,
    st.just(UserTextMessage(text="", urgency="immediate", defer_response=True)),  # interrupt, no reply (LK)
    st.builds(SetOutputMedium, medium=st.sampled_from(["voice", "text"])),
)
ending = st.one_of(st.none(), st.builds(HangUp, message=st.one_of(st.none(), words)))  # hang_up: at most once, last
tool_answer = st.one_of(
    st.tuples(st.floats(0, 0.03), st.sampled_from([None, "speaks", "listens", "speaks-once"]), st.sampled_from(["ok", "ok", "error", "hang-up"])),
    st.just(None),  # never answered: the tool times out
)


@dataclass
class Scenario:
    greeting: Greeting
    medium: str
    replies: list[tuple[str, str]]
    delay: float
    write_delay: float
    answers: list[Any]
    events: list[tuple[float, object]]


scenarios = st.builds(
    Scenario,
    greeting=st.sampled_from([Greeting(), Greeting(text="Welcome."), Greeting(agent_first=False)]),
    medium=st.sampled_from(["text", "text", "voice"]),
    replies=st.lists(reply, min_size=1, max_size=5),
    delay=st.sampled_from([0.0, 0.002, 0.01]),
    write_delay=st.sampled_from([0.0, 0.001, 0.005]),
    answers=st.lists(tool_answer, min_size=1, max_size=3),
    events=st.tuples(st.lists(st.tuples(st.floats(0, 0.04), client_event), max_size=8), st.floats(0, 0.04), ending).map(
        lambda e: e[0] + ([(e[1], e[2])] if e[2] is not None else [])),
)

# ------------------------------------------------------------------ harness


@dataclass
class Client:
    """The far end: sees messages in order, answers tool calls, and checks each final against the database."""

    scenario: Scenario
    sent: list[Any] = field(default_factory=list)
    written: list[CallMessage] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    call: Call | None = None
    _answers: Any = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _told: int = 0  # transcribed records already matched by a final

    async def send(self, message: Any) -> None:
        self.sent.append(message)
        if isinstance(message, Transcript) and message.final:
            self._check_written(message)
        if isinstance(message, ClientToolInvocation):
            if not any(m.role == "MESSAGE_ROLE_TOOL_CALL" and m.invocation_id == message.invocation_id for m in self.written):
                self.problems.append(f"tool call {message.invocation_id} invoked before it was written")
            self._answer(message.invocation_id)

    async def record(self, item: CallMessage | EventRecord) -> None:
        await asyncio.sleep(self.scenario.write_delay)
        if isinstance(item, CallMessage):
            self.written.append(item)

    def _check_written(self, final: Transcript) -> None:
        role = "MESSAGE_ROLE_USER" if final.role == "user" else "MESSAGE_ROLE_AGENT"
        transcribed = [m for m in self.written if m.role in TRANSCRIBED]
        if self._told >= len(transcribed) or (transcribed[self._told].role, transcribed[self._told].text) != (role, final.text):
            self.problems.append(f"final {final.ordinal} {final.text!r} sent before its entry was written")
        self._told += 1

    def _answer(self, invocation_id: str) -> None:
        if self._answers is None:
            self._answers = itertools.cycle(self.scenario.answers)
        answer = next(self._answers)
        if answer is None or self.call is None:
            return
        wait, reaction, kind = answer

        async def later() -> None:
            await asyncio.sleep(wait)
            assert self.call is not None
            if kind == "error":
                self.call.receive(ClientToolResult(invocation_id=invocation_id, error_type="implementation-error"))
            elif kind == "hang-up":
                self.call.receive(ClientToolResult(invocation_id=invocation_id, result='{"message": "Bye."}', response_type="hang-up"))
            else:
                self.call.receive(ClientToolResult(invocation_id=invocation_id, result='{"ok": true}', agent_reaction=reaction))

        task = asyncio.create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def script(replies: Sequence[tuple[str, str]]) -> Any:
    cycle = itertools.cycle(replies)
    ids = itertools.count()

    def next_reply(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> list[Any]:
        kind, text = next(cycle)
        tool = None
        if tools and kind in ("text+tool", "tool"):
            tool = ToolCall(f"t{next(ids)}", "getWeather", {})
        elif tools and kind == "hang-up tool":
            tool = ToolCall(f"t{next(ids)}", "hangUp", {})
        events: list[Any] = []
        if kind.startswith("text") or (not tools and kind != "empty"):
            events.append(TextDelta(text or "Fine."))
        if kind == "fail":
            events = [ProviderError("backend down")]
        return events + ([tool] if tool else [])

    return next_reply


async def play(scenario: Scenario) -> Client:
    client = Client(scenario)
    speech = Speech(vad=EnergyVAD, stt=ScriptedSTT([]), tts=ToneTTS(word_seconds=0.004))
    spec = CallSpec(call_id="c1", greeting=scenario.greeting, tools=(WEATHER, HANG_UP), output_medium=scenario.medium,  # type: ignore[arg-type]
                    voice=VoiceSpec(input_rate=16000, output_rate=16000, client_buffer=0.02), llm_timeout=1.0)
    call = client.call = Call(spec, ScriptedLLM(script(scenario.replies), delay=scenario.delay), send=client.send,
                              record=client.record, speech=speech)
    run = asyncio.create_task(call.run())
    for wait, message in scenario.events:
        await asyncio.sleep(wait)
        if run.done():
            break
        call.receive(message)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(1.5):  # let it settle: listening with nothing left to do
            while not run.done() and not (client.sent and client.sent[-1] == State(state="listening")):
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.02)
    call.end("hangup")
    async with asyncio.timeout(10):
        await run
    for task in list(client._tasks):
        task.cancel()
    return client


# ------------------------------------------------------------------ checks


def check_client_view(client: Client) -> None:
    assert not client.problems, client.problems
    transcripts = [m for m in client.sent if isinstance(m, Transcript)]
    first_seen: list[int] = []
    by_ordinal: dict[int, list[Transcript]] = {}
    for t in transcripts:
        assert (t.text is None) != (t.delta is None), t
        assert (t.text or t.delta), t  # never "" (PROTOCOL.md 2.7)
        if t.ordinal not in by_ordinal:
            first_seen.append(t.ordinal)
        by_ordinal.setdefault(t.ordinal, []).append(t)
    assert first_seen == list(range(len(first_seen))), f"ordinals by first appearance: {first_seen}"
    for ordinal, parts in by_ordinal.items():
        assert len({(p.role, p.medium) for p in parts}) == 1, parts
        assert [p.final for p in parts] == [False] * (len(parts) - 1) + [True], f"ordinal {ordinal}: {parts}"
        assert parts[-1].text and parts[-1].text.strip(), parts
        assert all(p.text is not None for p in parts[:1]) and all(p.delta is not None for p in parts[1:-1]), parts
        if parts[0].role == "user":
            assert len(parts) == 1
        elif parts[0].medium == "text" and len(parts) > 1:
            assert parts[-1].text == "".join(p.text or p.delta or "" for p in parts[:-1]).strip()


def check_history(client: Client) -> None:
    finals = sorted((t for t in client.sent if isinstance(t, Transcript) and t.final), key=lambda t: t.ordinal)
    transcribed = [m for m in client.written if m.role in TRANSCRIBED]
    assert [(m.role, m.text) for m in transcribed] == [
        ("MESSAGE_ROLE_USER" if t.role == "user" else "MESSAGE_ROLE_AGENT", t.text) for t in finals
    ], "the recorded history must list the transcripts in ordinal order"
    open_calls: set[str] = set()
    for m in client.written:  # a tool call's result follows it, with no message in between
        if m.role == "MESSAGE_ROLE_TOOL_CALL":
            open_calls.add(m.invocation_id or "")
        elif m.role == "MESSAGE_ROLE_TOOL_RESULT":
            open_calls.discard(m.invocation_id or "")
        else:
            assert not open_calls, f"{m.role} inside a tool round"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False)
@given(scenarios)
def test_ordinals_dense_ascending_and_history_in_order(scenario: Scenario) -> None:
    client = asyncio.run(play(scenario))
    check_client_view(client)
    check_history(client)
    describe(client)


def describe(client: Client) -> None:
    """Coverage notes for `--hypothesis-show-statistics`."""
    finals = [t for t in client.sent if isinstance(t, Transcript) and t.final]
    event(f"{min(len(finals), 6)}+ transcripts")
    if any(a.role == "agent" and b.role == "user" and a.ordinal + 1 == b.ordinal for a, b in itertools.pairwise(finals)):
        event("user transcript right after an agent final")
    if any(isinstance(m, ClientToolInvocation) and m.invocation_id.startswith("forced_") for m in client.sent):
        event("forced tool call invoked")
    if any(m.role == "MESSAGE_ROLE_TOOL_RESULT" and m.error_details == "no result: the turn ended" for m in client.written):
        event("tool call cut off")
    if any(isinstance(m, Transcript) and m.medium == "voice" for m in client.sent):
        event("spoken")


# ------------------------------------------------------------------ the observed cases (issue 7)


class SlowDatabase(Harness):
    """Writes take `write_delay`; each final must find its entry already written."""

    def __init__(self, *args: Any, write_delay: float = 0.01) -> None:
        super().__init__(*args)
        self.write_delay = write_delay
        self.unwritten_finals: list[Transcript] = []

    async def _send(self, message: Any) -> None:
        if isinstance(message, Transcript) and message.final and not any(r.text == message.text for r in self.records):
            self.unwritten_finals.append(message)
        await super()._send(message)

    async def _record(self, message: Any) -> None:
        await asyncio.sleep(self.write_delay)
        await super()._record(message)


def wire(h: Harness) -> list[tuple[str, int, bool]]:
    return [(t.role, t.ordinal, t.final) for t in h.of(Transcript)]


async def test_text_typed_during_the_greeting_before_its_first_word_goes_first() -> None:
    llm = ScriptedLLM([[TextDelta("Hello there.")], [TextDelta("Sure.")]], delay=0.05)
    h = SlowDatabase(spec(greeting=Greeting()), llm).start()
    h.call.receive(UserTextMessage(text="I am in a hurry"))  # right after joining: the greeting is still thinking
    await h.until(lambda: len(h.finals()) == 2)
    assert wire(h)[0] == ("user", 0, True) and {o for _, o, _ in wire(h)} == {0, 1, 2}
    assert [o for _, o, _ in wire(h)] == sorted(o for _, o, _ in wire(h))
    assert [(r.role, r.text) for r in h.records] == [("MESSAGE_ROLE_USER", "I am in a hurry"), ("MESSAGE_ROLE_AGENT", "Hello there."),
                                                     ("MESSAGE_ROLE_AGENT", "Sure.")]
    assert h.unwritten_finals == []
    h.call.end("hangup")
    await h.finish()


async def test_text_typed_while_the_greeting_is_on_the_wire_waits_for_its_final() -> None:
    llm = ScriptedLLM([[TextDelta("Hello there, how can I help you today?")], [TextDelta("Sure.")]], delay=0.02)
    h = SlowDatabase(spec(greeting=Greeting()), llm).start()
    await h.until(lambda: len(h.of(Transcript)) >= 2)
    h.call.receive(UserTextMessage(text="Quick question", urgency="soon"))
    await h.until(lambda: len(h.finals()) == 2)
    greeting_final = wire(h).index(("agent", 0, True))
    assert wire(h)[greeting_final + 1] == ("user", 1, True)  # held until the greeting closed
    assert [r.text for r in h.records] == ["Hello there, how can I help you today?", "Quick question", "Sure."]
    assert llm.calls[1].messages[-1] == ChatMessage("user", "Quick question")
    assert h.unwritten_finals == []
    h.call.end("hangup")
    await h.finish()


async def test_a_reply_cancelled_before_its_first_word_uses_no_ordinal() -> None:
    llm = ScriptedLLM([[TextDelta("This reply never starts.")]], delay=0.2)
    h = Harness(spec(), llm).start()
    h.call.receive(UserTextMessage(text="Hello"))
    await h.until(lambda: bool(llm.calls))
    h.call.receive(HangUp(message="Goodbye."))
    assert await h.finish() == "hangup"
    assert wire(h) == [("user", 0, True), ("agent", 1, False), ("agent", 1, True)]
    assert h.finals()[-1].text == "Goodbye."


async def test_text_typed_during_a_tool_round_waits_for_the_result_and_is_answered_once() -> None:
    llm = ScriptedLLM([[TextDelta("Let me check."), ToolCall("inv1", "getWeather", {})], [TextDelta("Sunny, and yes.")]])
    h = SlowDatabase(spec(tools=(CLIENT_WEATHER,)), llm).start()
    h.call.receive(UserTextMessage(text="Weather?"))
    await h.until(lambda: bool(h.of(ClientToolInvocation)))
    h.call.receive(UserTextMessage(text="Also, is it warm?", urgency="soon"))
    await asyncio.sleep(0.1)
    assert [t.text for t in h.finals("user")] == ["Weather?"]  # held: the tool round is open
    h.call.receive(ClientToolResult(invocation_id="inv1", result='{"sky": "sunny"}'))
    await h.until(lambda: len(h.finals()) == 2 and h.of(State)[-1].state == "listening")
    await asyncio.sleep(0.1)
    assert [(r.role, r.text) for r in h.records] == [
        ("MESSAGE_ROLE_USER", "Weather?"), ("MESSAGE_ROLE_AGENT", "Let me check."), ("MESSAGE_ROLE_TOOL_CALL", "{}"),
        ("MESSAGE_ROLE_TOOL_RESULT", '{"sky": "sunny"}'), ("MESSAGE_ROLE_USER", "Also, is it warm?"),
        ("MESSAGE_ROLE_AGENT", "Sunny, and yes.")]
    assert len(llm.calls) == 2  # the second round saw the question: no extra reply after it
    assert [t.ordinal for t in h.finals("user")] == [0, 2] and h.unwritten_finals == []
    h.call.end("hangup")
    await h.finish()
