"""The embedded LLM with hostile input: text that is not valid Unicode, and a very long history (SmolLM2)."""

from __future__ import annotations

import asyncio
from typing import Any

from voxcall.errors import ProviderError
from voxcall.providers.base import ChatMessage, TextDelta
from voxcall.providers.embedded import LlamaLLM
from voxcall.providers.llm_queue import Memory, Request

SECRET = "SECRET-SYSTEM-PROMPT"


async def _reply(llm: LlamaLLM, messages: list[ChatMessage], max_tokens: int = 8) -> str:
    text = ""
    async with asyncio.timeout(240):  # the shared test machine can be very slow
        async for event in llm.stream(messages, max_tokens=max_tokens):
            if isinstance(event, TextDelta):
                text += event.text
    return text


async def test_a_lone_surrogate_in_the_history_does_not_fail_every_turn(smollm: LlamaLLM) -> None:
    messages = [ChatMessage("system", f"{SECRET} " * 5), ChatMessage("user", "hello \ud800"), ChatMessage("assistant", "Hi."),
                ChatMessage("user", "Say hi.")]
    try:
        await _reply(smollm, messages, max_tokens=2)
    except ProviderError as exc:  # it used to fail, with the whole prompt in the error text
        assert SECRET not in str(exc)
        raise


def test_fitting_a_long_history_takes_a_few_tokenizations(smollm: LlamaLLM, monkeypatch: Any) -> None:
    calls: list[int] = []
    tokenize = smollm._tokenize

    def counted(text: str, *, special: bool) -> list[int]:
        calls.append(len(text))
        return tokenize(text, special=special)

    monkeypatch.setattr(smollm, "_tokenize", counted)
    history = [ChatMessage("user" if i % 2 == 0 else "assistant", f"Message number {i}: " + "words " * 30) for i in range(3000)]
    request = Request((ChatMessage("system", "Be brief."), *history, ChatMessage("user", "Say hi.")), (), 0.0, 64)
    tokens = smollm._prompt_tokens(request, "")
    assert 2500 < len(tokens) <= 4096 - 256 - 16  # about as many of the newest turns as fit
    text = smollm._llama.detokenize(tokens).decode()
    assert text.startswith("system\nBe brief.") and text.endswith("Message number 2999: " + "words " * 30 + "\nuser\nSay hi.\nassistant\n")
    assert "Message number 0:" not in text
    prompts = [n for n in calls if n > 1000]
    assert 1 <= len(prompts) <= 20  # it used to drop one turn per tokenization: thousands of them
    assert len(calls) < 200  # each kept turn counted once, the turns that cannot fit never
    assert max(prompts) < 4096 * 40  # turns that cannot fit are cut by length before any tokenization


def test_a_long_prompt_keeps_its_start_for_several_turns(smollm: LlamaLLM) -> None:
    """A conversation's cut, once moved, leaves room to spare: the prompt's start, and so the model's cache
    of it, lasts for many turns (a session remembers the cut in its `Memory`)."""
    history = [ChatMessage("user" if i % 2 == 0 else "assistant", f"Message number {i}: " + "words " * 30) for i in range(400)]
    starts = set()
    memory = Memory()
    for turns in range(300, 310):
        request = Request((ChatMessage("system", "Be brief."), *history[:turns]), (), 0.0, 64, memory)
        text = smollm._llama.detokenize(smollm._prompt_tokens(request, "")).decode()
        starts.add(text.split("Message number ", 1)[1].split(":", 1)[0])
    assert len(starts) <= 2  # it used to move on by a turn with every turn
