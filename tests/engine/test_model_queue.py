"""Calls sharing one model: fair turns, a clear `thinking` while queued, and an ended call's work dropped.

A fake slow back end stands behind the real `FairWorker` and `LlamaSession` (what the
embedded LLM uses): it streams one word every `step` seconds and stops when told, like
a model between tokens.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Any

from voxcall.engine.call import APOLOGY, Call
from voxcall.engine.spec import CallSpec, Greeting
from voxcall.protocol.realtime import Debug, State, Transcript, UserTextMessage
from voxcall.providers.base import LLMEvent, TextDelta
from voxcall.providers.fake import ScriptedLLM, ScriptedSTT
from voxcall.providers.llm_queue import (
    STARTED,
    Channel,
    Listener,
    LlamaSession,
    Request,
    queued_events,
)
from voxcall.providers.workers import FairWorker


class SlowModel:
    """Answers "<the last user message>: word1 word2 ...", one word per `step` seconds.

    `words` words, or `long_words` for a message that contains "everything".
    """

    name = "slow"

    def __init__(self, words: int = 5, step: float = 0.01, long_words: int = 1000) -> None:
        self.words = words
        self.long_words = long_words
        self.step = step
        self.worker = FairWorker("slow-model")
        self.closed = threading.Event()
        self.served: list[str] = []  # the last user message of each request, in the order they ran
        self.stopped: list[str] = []

    def session(self, key: Hashable, **listeners: Any) -> LlamaSession:
        return LlamaSession(self, key, **listeners)

    def stream(self, messages: Any, tools: Any = (), **kw: Any) -> AsyncIterator[LLMEvent]:
        raise AssertionError("calls use their session")

    def submit(self, request: Request, owner: Hashable, *, background: bool = False,
               listener: Listener | None = None) -> AsyncIterator[LLMEvent]:
        return queued_events(self.worker, self._work(request, background), owner, closed=self.closed,
                             background=background, listener=listener)

    def cancel(self, owner: Hashable) -> int:
        return self.worker.cancel(owner)

    def _work(self, request: Request, background: bool) -> Callable[[Channel], None]:
        question = next(m.content for m in reversed(request.messages) if m.role in ("user", "system"))

        def work(channel: Channel) -> None:
            try:
                channel.put(STARTED)
                if background:
                    return
                self.served.append(question)
                for i in range(self.long_words if "everything" in question else self.words):
                    if channel.stopped.wait(self.step):
                        self.stopped.append(question)
                        return
                    channel.put(TextDelta(f"word{i} " if i else f"{question}: "))
            finally:
                channel.finish()

        return work


class Party:
    def __init__(self, call_id: str, model: SlowModel, **kw: Any) -> None:
        self.sent: list[Any] = []
        spec = CallSpec(call_id=call_id, greeting=Greeting(agent_first=False), **kw)
        self.call = Call(spec, model, send=self._send, record=self._record)  # type: ignore[arg-type]
        self.task = asyncio.create_task(self.call.run())

    async def _send(self, message: Any) -> None:
        self.sent.append(message)

    async def _record(self, message: Any) -> None:
        pass

    def say(self, text: str) -> None:
        self.call.receive(UserTextMessage(text=text, urgency="immediate"))

    def finals(self) -> list[str]:
        return [t.text for t in self.sent if isinstance(t, Transcript) and t.final and t.role == "agent"]

    def index(self, predicate: Callable[[Any], bool]) -> int:
        return next(i for i, m in enumerate(self.sent) if predicate(m))

    async def end(self) -> None:
        self.call.end("hangup")
        async with asyncio.timeout(5):
            await self.task


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def test_ending_a_call_frees_the_model_for_the_next_call_at_once() -> None:
    model = SlowModel(words=5, step=0.01)  # "everything" takes 10 s
    a, b = Party("a", model), Party("b", model)
    a.say("tell me everything")
    await until(lambda: model.served == ["tell me everything"])
    loop = asyncio.get_running_loop()
    b.say("quick question")
    await until(lambda: any(isinstance(m, Debug) and "queued" in m.message for m in b.sent))
    asked = loop.time()
    await a.end()
    await until(lambda: bool(b.finals()))
    assert loop.time() - asked < 2.0  # not after the ended call's 10 s reply
    assert model.stopped == ["tell me everything"]
    assert b.finals()[0].startswith("quick question:")
    await b.end()
    model.worker.close()


async def test_a_queued_turn_shows_thinking_and_a_debug_at_once_and_does_not_time_out() -> None:
    model = SlowModel(words=60, step=0.01)  # each reply takes ~0.6 s
    a, b = Party("a", model), Party("b", model, llm_timeout=0.3)
    a.say("first")
    await until(lambda: model.served == ["first"])
    b.say("second")
    await until(lambda: any(isinstance(m, Debug) and "queued behind 1" in m.message for m in b.sent), 0.5)
    thinking = b.index(lambda m: isinstance(m, State) and m.state == "thinking")
    queued = b.index(lambda m: isinstance(m, Debug) and "queued" in m.message)
    assert thinking < queued and not b.finals()
    await until(lambda: bool(b.finals()))
    assert b.finals()[0].startswith("second:") and APOLOGY not in b.finals()  # the wait in the queue did not count
    await a.end()
    await b.end()
    model.worker.close()


async def test_a_flooding_call_and_a_quiet_call_take_turns() -> None:
    model = SlowModel(words=20, step=0.005)
    flood, quiet = Party("flood", model), Party("quiet", model)
    for i in range(4):
        flood.say(f"flood {i}")
        await until(lambda i=i: f"flood {i}" in model.served)
    for i in range(3):
        quiet.call.receive(UserTextMessage(text=f"quiet {i}"))  # "soon": each answered after the last
        flood.call.receive(UserTextMessage(text=f"flood more {i}"))
    await until(lambda: len(quiet.finals()) >= 1 and len(flood.finals()) >= 2, 10)
    order = [q.split()[0] for q in model.served]
    first_quiet = order.index("quiet")
    assert first_quiet <= 5  # behind the running flood request and at most one more of it per round
    await flood.end()
    await quiet.end()
    model.worker.close()


async def test_the_ended_calls_prefill_and_turns_never_run() -> None:
    model = SlowModel(words=200, step=0.01)
    a, b = Party("a", model), Party("b", model)
    b.say("hold the model")
    await until(lambda: model.served == ["hold the model"])
    a.say("never answered")
    await until(lambda: any(isinstance(m, Debug) and "queued" in m.message for m in a.sent))
    await a.end()
    await until(lambda: not model.worker.busy or bool(b.finals()), 5)
    await until(lambda: bool(b.finals()), 5)
    assert "never answered" not in model.served
    await b.end()
    model.worker.close()


async def test_a_spoken_turn_shows_thinking_while_its_words_are_still_being_recognised() -> None:
    from tests.engine.test_voice import LOUD, QUIET, VoiceHarness

    h = VoiceHarness(ScriptedLLM([[TextDelta("Paris.")]]), ScriptedSTT(["the capital of france"], delay=1.0))
    await h.stream([(QUIET, 0.2), (LOUD, 0.6), (QUIET, 0.6)])
    await h.until(lambda: any(t.final and t.role == "agent" for t in h.of(Transcript)))
    sent = [m for _, m in h.sent]
    thinking = next(i for i, m in enumerate(sent) if isinstance(m, State) and m.state == "thinking")
    heard = next(i for i, m in enumerate(sent) if isinstance(m, Transcript) and m.role == "user")
    assert thinking < heard  # not a silent wait for speech recognition
    await h.finish()
