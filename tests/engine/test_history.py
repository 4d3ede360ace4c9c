"""engine/history.py on its own: write-before-tell, holding, and the steps that never stop halfway."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from voxcall.engine.history import History
from voxcall.errors import StorageUnavailable
from voxcall.protocol.realtime import Transcript
from voxcall.protocol.rest import CallMessage
from voxcall.providers.base import ChatMessage, ToolCall

LOG = logging.getLogger("test")


class Far:
    """The client and the database, with a log of both in one order."""

    def __init__(self, write: float = 0.0, hang: bool = False) -> None:
        self.log: list[str] = []
        self.write, self.hang = write, hang

    async def send(self, message: Any) -> None:
        if isinstance(message, Transcript):
            self.log.append(f"sent {message.role}{message.ordinal}{'!' if message.final else ''}")

    async def record(self, item: Any) -> None:
        if self.hang:
            await asyncio.Event().wait()
        await asyncio.sleep(self.write)
        if isinstance(item, CallMessage):
            self.log.append(f"wrote {item.role.removeprefix('MESSAGE_ROLE_').lower()} {item.text}")


async def running(far: Far, **kw: Any) -> tuple[History, asyncio.Task[None]]:
    history = History((), send=far.send, record=far.record, log=LOG, **kw)
    return history, asyncio.create_task(history.run_recorder())


async def test_user_waits_for_the_agent_utterance_on_the_wire_and_finals_wait_for_their_write() -> None:
    far = Far(write=0.01)
    history, recorder = await running(far)
    agent = history.agent("text")
    await history.user("first", "text")  # the agent has said nothing: the user goes first
    await history.say(agent, "Hello")
    await history.user("second", "text")  # held: the agent is on the wire
    assert far.log == ["wrote user first", "sent user0!", "sent agent1"]
    assert await history.close(agent, None) == "Hello"
    assert far.log[3:] == ["wrote agent Hello", "sent agent1!", "wrote user second", "sent user2!"]
    assert [e.content for e in history.entries] == ["first", "Hello", "second"] and history.last_user_at == 2
    await history.drain(recorder)


async def test_a_tool_round_holds_the_user_until_its_results_and_force_closes_a_dangling_call() -> None:
    far = Far()
    history, recorder = await running(far)
    call = ToolCall("t1", "getWeather", {})
    await history.close(history.agent("text"), None, [call, ToolCall("t2", "getWeather", {})])
    await history.user("meanwhile", "text")
    await history.tool_result(ChatMessage("tool", "sunny", tool_call_id="t1", name="getWeather"))
    assert "sent user0!" not in far.log  # t2 is still open
    await history.release(force=True)  # the turn ended without t2's result
    assert far.log == ["wrote tool_call {}", "wrote tool_call {}", "wrote tool_result sunny",
                       "wrote tool_result The tool call was cancelled before it returned a result.",
                       "wrote user meanwhile", "sent user0!"]
    await history.drain(recorder)


async def test_a_close_that_is_cancelled_still_writes_and_sends_its_final() -> None:
    far = Far(write=0.05)
    history, recorder = await running(far)
    agent = history.agent("text")
    await history.say(agent, "Half a sentence")
    closing = asyncio.create_task(history.close(agent, None))
    await asyncio.sleep(0.01)
    closing.cancel()  # a second interruption arrives while the final is being written
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert far.log == ["sent agent0", "wrote agent Half a sentence", "sent agent0!"]
    await history.drain(recorder)


async def test_a_stuck_database_does_not_stall_the_call_and_its_finals_wait_for_their_write() -> None:
    far = Far(hang=True)
    history, recorder = await running(far, write_timeout=0.05)
    async with asyncio.timeout(2):
        await history.user("hello", "text")
        agent = history.agent("text")
        await history.say(agent, "Hi")  # the call keeps talking
        await history.close(agent, None)  # queued behind the deferred final: no second wait
    assert far.log == ["sent agent1"]  # neither final went out unstored
    await history.drain(recorder, timeout=0.05)
    assert far.log == ["sent agent1"]


class Outage(Far):
    """A database that is unreachable for its first `failures` writes, then works."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def record(self, item: Any) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise StorageUnavailable("The database")
        await super().record(item)


async def test_writes_during_an_outage_are_retried_and_the_finals_go_out_in_order_once_stored() -> None:
    far = Outage(failures=3)  # retried after 0.2, 0.4 and 0.8 s
    history, recorder = await running(far, write_timeout=0.05)
    async with asyncio.timeout(1):
        await history.user("hello", "text")
        agent = history.agent("text")
        await history.say(agent, "Hi")
        await history.close(agent, None)
    assert far.log == ["sent agent1"]
    async with asyncio.timeout(5):
        while len(far.log) < 5:
            await asyncio.sleep(0.02)
    assert far.log == ["sent agent1", "wrote user hello", "sent user0!", "wrote agent Hi", "sent agent1!"]
    await history.drain(recorder)


async def test_the_call_ending_during_an_outage_still_sends_the_finals_stored_before_the_drain_ends() -> None:
    far = Outage(failures=2)
    history, recorder = await running(far, write_timeout=0.05)
    await history.user("bye", "text")
    await history.drain(recorder, timeout=5)  # the call ended: the writes catch up within the drain
    assert far.log == ["wrote user bye", "sent user0!"]


async def test_a_write_that_fails_for_another_reason_is_logged_and_skipped() -> None:
    class Broken(Far):
        async def record(self, item: Any) -> None:
            raise ValueError("not storable")

    far = Broken()
    history, recorder = await running(far)
    async with asyncio.timeout(2):
        await history.user("hello", "text")
    assert far.log == ["sent user0!"]  # not retried for ever: the call goes on
    await history.drain(recorder)


async def test_a_tool_call_during_an_outage_waits_once_then_the_tool_runs_and_its_final_waits_for_the_write() -> None:
    far = Outage(failures=1)  # the first write is retried after 0.2 s
    history, recorder = await running(far, write_timeout=0.05)
    agent = history.agent("text")
    await history.say(agent, "Checking")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await history.close(agent, None, [ToolCall("t1", "getWeather", {})])
    assert loop.time() - started < 0.15  # one bounded wait, not one per record
    assert far.log == ["sent agent0"]
    await history.tool_result(ChatMessage("tool", "sunny", tool_call_id="t1", name="getWeather"))
    await history.drain(recorder, timeout=5)
    writes = [line for line in far.log if line.startswith("wrote")]
    assert writes == ["wrote agent Checking", "wrote tool_call {}", "wrote tool_result sunny"]
    assert far.log.index("sent agent0!") > far.log.index("wrote tool_call {}")  # the final once its entry is stored


async def test_messages_carry_their_timespan_from_the_calls_start_and_a_held_user_keeps_when_it_spoke() -> None:
    stored: list[CallMessage] = []

    async def record(item: Any) -> None:
        if isinstance(item, CallMessage):
            stored.append(item)

    async def send(message: Any) -> None:
        pass

    started = asyncio.get_running_loop().time() - 10.0  # the call began 10 s ago
    history = History((), send=send, record=record, log=LOG, started=started)
    recorder = asyncio.create_task(history.run_recorder())
    agent = history.agent("voice")
    await history.say(agent, "Hello there")
    await history.user("hi", "voice", span=(9.5, 10.25))  # said while the agent spoke: held, with its own span
    await history.close(agent, None, span=(8.0, 10.5))
    await history.user("typed", "text")  # no span: now
    await history.drain(recorder)
    spans = {m.text: m.timespan for m in stored}
    assert spans["Hello there"] == {"start": "8s", "end": "10.5s"}
    assert spans["hi"] == {"start": "9.5s", "end": "10.25s"}
    start = float(spans["typed"]["start"].removesuffix("s"))  # type: ignore[index]
    assert 10.0 <= start < 11.0 and spans["typed"]["end"] == spans["typed"]["start"]  # type: ignore[index]
    assert all(m.wall_clock_timespan == m.timespan for m in stored)
