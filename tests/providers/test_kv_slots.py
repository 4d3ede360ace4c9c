"""KV-cache slots: which call keeps which context (pure), and the swap on a real llama.cpp model."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from voxcall.providers.base import ChatMessage, TextDelta
from voxcall.providers.embedded import LlamaLLM
from voxcall.providers.kv_slots import SlotTable


def test_each_owner_keeps_its_slot_while_there_is_room() -> None:
    table = SlotTable(2)
    assert [table.assign("a"), table.assign("b"), table.assign("a"), table.assign("b")] == [0, 1, 0, 1]


def test_the_least_recently_used_slot_goes_to_a_newcomer() -> None:
    table = SlotTable(2)
    table.assign("a")
    table.assign("b")
    table.assign("a")  # b is now the least recently used
    assert table.assign("c") == 1
    assert table.assign("a") == 0
    assert table.assign("b") == 1  # b lost its slot to c; it now takes c's (the least recently used)


def test_a_released_slot_is_the_next_newcomers() -> None:
    table = SlotTable(3)
    for owner in "abc":
        table.assign(owner)
    table.release("b")
    table.release("nobody")  # unknown owners are ignored
    assert table.assign("d") == 1
    with pytest.raises(ValueError):
        SlotTable(0)


@pytest.mark.models
async def test_two_calls_taking_turns_keep_their_own_kv_cache(smollm: LlamaLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    evaluated: list[int] = []
    inner = smollm._llama.eval
    monkeypatch.setattr(smollm._llama, "eval", lambda tokens: (evaluated.append(len(tokens)), inner(tokens))[1])
    a, b = smollm.session(f"a-{uuid.uuid4()}"), smollm.session(f"b-{uuid.uuid4()}")
    prompt_a = [ChatMessage("system", f"Call A {uuid.uuid4()}. Answer briefly."), ChatMessage("user", "Name a colour.")]
    prompt_b = [ChatMessage("system", f"Call B {uuid.uuid4()}. Answer briefly."), ChatMessage("user", "Name a tree.")]

    async def reply(session: object, prompt: list[ChatMessage]) -> str:
        return "".join([e.text async for e in session.stream(prompt, max_tokens=1) if isinstance(e, TextDelta)])  # type: ignore[attr-defined]

    await a.prefill(prompt_a)
    await reply(b, prompt_b)  # the other call's reply runs in between
    evaluated.clear()
    assert await reply(a, prompt_a)
    assert sum(evaluated) == 0  # a's prompt was still in a's own cache: not one token read again
    a.end()
    b.end()


@pytest.mark.models
async def test_a_draft_gives_way_to_another_calls_turn_unless_settled(smollm: LlamaLLM) -> None:
    from voxcall.errors import ProviderError

    a, b = smollm.session(f"a-{uuid.uuid4()}"), smollm.session(f"b-{uuid.uuid4()}")
    long = [ChatMessage("system", f"{uuid.uuid4()}"), ChatMessage("user", "Count from 1 to 200, one number a line.")]
    draft = a.draft(long, max_tokens=200)
    first = await anext(draft)  # the draft is running
    assert isinstance(first, TextDelta)
    reply = [e async for e in b.stream([ChatMessage("user", "Say hi.")], max_tokens=2)]  # b's turn is due
    with pytest.raises(ProviderError, match="gave way"):
        async for _ in draft:
            pass
    assert reply

    settled = a.draft(long, max_tokens=40)
    await anext(settled)
    assert settled.settle()  # the guess was right: the reply is a's now

    async def b_turn() -> None:
        async for _ in b.stream([ChatMessage("user", "Say hi.")], max_tokens=2):
            pass

    waiting = asyncio.get_running_loop().create_task(b_turn())
    await asyncio.sleep(0.05)  # b's turn is queued while a's settled reply runs
    rest = [e async for e in settled]  # a draft that gave way would raise ProviderError("gave way") here
    assert rest and all(isinstance(e, TextDelta) for e in rest)  # it ran to its own end: b's turn did not stop it
    await waiting
    a.end()
    b.end()
