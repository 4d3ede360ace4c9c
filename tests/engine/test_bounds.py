"""The call loop under floods and failures: bounded queues, rate-limit events, logs without prompts."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from voxcall.engine import call as call_module
from voxcall.engine.call import APOLOGY, MAX_AGENDA, MAX_INBOX, MAX_UNRECORDED, Call
from voxcall.engine.spec import CallSpec, EventRecord, Greeting
from voxcall.errors import ProviderError
from voxcall.protocol.connection import Throttled
from voxcall.protocol.realtime import ForcedAgentMessage, Transcript, UserTextMessage
from voxcall.protocol.rest import CallMessage
from voxcall.providers.base import TextDelta
from voxcall.providers.fake import ScriptedLLM

SPEC = CallSpec(call_id="c-bounds", greeting=Greeting(agent_first=False))


class Harness:
    def __init__(self, llm: ScriptedLLM, *, stuck_store: bool = False) -> None:
        self.sent: list[Any] = []
        self.records: list[Any] = []
        self.store_open = asyncio.Event()
        if not stuck_store:
            self.store_open.set()
        self.call = Call(SPEC, llm, send=self._send, record=self._record)
        self.task = asyncio.create_task(self.call.run())

    async def _send(self, message: Any) -> None:
        self.sent.append(message)

    async def _record(self, item: Any) -> None:
        await self.store_open.wait()
        self.records.append(item)

    async def until(self, predicate: Any, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.005)

    def user_finals(self) -> list[str]:
        return [m.text for m in self.sent if isinstance(m, Transcript) and m.final and m.role == "user"]

    def events(self, kind: str) -> list[EventRecord]:
        return [r for r in self.records if isinstance(r, EventRecord) and r.type == kind]

    async def hang_up(self) -> str:
        self.store_open.set()
        self.call.end("hangup")
        async with asyncio.timeout(15):
            return await self.task


async def test_a_flood_of_client_events_is_bounded_and_reported_and_the_call_goes_on() -> None:
    h = Harness(ScriptedLLM([[TextDelta("Still here.")]]))
    for i in range(MAX_INBOX * 5):  # all at once, as a reader faster than the call loop would hand them over
        h.call.receive(UserTextMessage(text=f"m{i}", urgency="later"))
    assert h.call._inbox.qsize() <= MAX_INBOX
    await h.until(lambda: h.events("inbox_overflow"))
    overflow = h.events("inbox_overflow")[0]
    assert overflow.severity == "error" and overflow.extras == {"dropped": 1}
    await h.until(lambda: len(h.user_finals()) == MAX_INBOX)
    assert h.user_finals()[-1] == f"m{MAX_INBOX - 1}"  # the first MAX_INBOX, in order
    h.call.receive(UserTextMessage(text="are you there?", urgency="immediate"))
    await h.until(lambda: any(isinstance(m, Transcript) and m.final and m.text == "Still here." for m in h.sent))
    assert await h.hang_up() == "hangup"


async def test_throttled_frames_become_a_call_event() -> None:
    h = Harness(ScriptedLLM([]))
    h.call.receive(Throttled(text_frames=120, audio_frames=3, total=500))
    await h.until(lambda: h.events("rate_limited"))
    event = h.events("rate_limited")[0]
    assert event.severity == "warning" and event.extras == {"text": 120, "audio": 3, "total": 500}
    assert "120 text and 3 audio frames" in event.text
    assert await h.hang_up() == "hangup"


async def test_a_stuck_store_does_not_grow_the_record_queue_without_bound(caplog: pytest.LogCaptureFixture) -> None:
    h = Harness(ScriptedLLM([]), stuck_store=True)
    sent = 0
    while sent < MAX_UNRECORDED + 2000:
        for _ in range(MAX_INBOX // 2):
            h.call.receive(UserTextMessage(text=str(sent), urgency="later"))
            sent += 1
        await h.until(lambda: h.call._inbox.qsize() == 0, timeout=15.0)  # the first write waits write_timeout
    assert h.call._h._queue.qsize() <= MAX_UNRECORDED
    assert any("dropped" in r.getMessage() and "storage is not keeping up" in r.getMessage() for r in caplog.records)
    assert await h.hang_up() == "hangup"
    stored = [r.text for r in h.records if isinstance(r, CallMessage)]
    assert len(stored) == MAX_UNRECORDED + 1 and stored[:2] == ["0", "1"]  # one was already being written


async def test_a_failed_turn_logs_the_call_id_and_error_type_never_the_prompt(caplog: pytest.LogCaptureFixture) -> None:
    secret = "TOP-SECRET-PROMPT " * 20_000  # what llama.cpp's UnicodeEncodeError used to carry into the log
    failure = ProviderError(f"llama.cpp generation failed: {secret}")
    failure.__cause__ = UnicodeEncodeError("utf-8", secret, 0, 1, "surrogates not allowed")
    h = Harness(ScriptedLLM([[failure]]))
    caplog.set_level(logging.DEBUG, logger=call_module.logger.name)
    h.call.receive(UserTextMessage(text="hello"))
    await h.until(lambda: any(isinstance(m, Transcript) and m.final and m.text == APOLOGY for m in h.sent))
    assert await h.hang_up() == "hangup"
    assert not [r for r in caplog.records if "TOP-SECRET" in r.getMessage()]
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage() == "agent reply failed in call c-bounds: ProviderError (UnicodeEncodeError)"


class PrefillingLLM(ScriptedLLM):
    """A model with a KV-cache prefill that never finishes (a model busy with other calls)."""

    def __init__(self) -> None:
        super().__init__(lambda messages, tools: [TextDelta("ok")])
        self.waiting = 0

    async def prefill(self, messages: Any, tools: Any, *, open_end: bool = False) -> None:
        self.waiting += 1
        try:
            await asyncio.Event().wait()
        finally:
            self.waiting -= 1


async def test_at_most_one_prefill_waits_for_the_model() -> None:
    llm = PrefillingLLM()
    h = Harness(llm)
    for i in range(20):
        h.call.receive(UserTextMessage(text=f"turn {i}", urgency="immediate"))
        await h.until(lambda i=i: sum(isinstance(m, Transcript) and m.final and m.role == "agent" for m in h.sent) == i + 1)
        await asyncio.sleep(0.01)
    assert len(llm.calls) == 20 and llm.waiting == 1  # it used to be one more waiting prefill per turn
    assert await h.hang_up() == "hangup"


async def test_forced_agent_messages_waiting_to_be_said_are_bounded() -> None:
    h = Harness(ScriptedLLM([]))
    h.call.receive(ForcedAgentMessage(content="first", uninterruptible=True))
    for i in range(MAX_AGENDA * 3):
        h.call.receive(ForcedAgentMessage(content=f"say {i}"))
    await h.until(lambda: h.events("agenda_overflow"))
    assert len(h.call._agenda) <= MAX_AGENDA
    assert await h.hang_up() == "hangup"
