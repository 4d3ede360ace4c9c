"""The real SmolLM2 shared by calls: a call with a huge history cannot starve another one.

Issue 8 item 2: a call with 2,000 `initialMessages` kept the shared LLM worker busy for
minutes after it had ended (truncation re-tokenised the whole prompt once per dropped
turn), and another call's turn failed after 60 s.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from voxcall.engine.call import APOLOGY, Call
from voxcall.engine.spec import CallSpec, Greeting
from voxcall.protocol.realtime import State, Transcript, UserTextMessage
from voxcall.providers.base import ChatMessage
from voxcall.providers.embedded import LlamaLLM
from voxcall.providers.llm_queue import Request

pytestmark = pytest.mark.models


def long_history(count: int) -> tuple[ChatMessage, ...]:
    """`count` messages, user and agent in turn, ending with a user question."""
    turns = [ChatMessage("user" if i % 2 == 0 else "assistant", f"Message {i}: let us talk about gardening and roses.")
             for i in range(count - 1)]
    return (*turns, ChatMessage("user", "So what should I plant first?"))


class Party:
    def __init__(self, spec: CallSpec, llm: LlamaLLM) -> None:
        self.sent: list[Any] = []
        self.call = Call(spec, llm, send=self._send, record=self._record)
        self.task = asyncio.create_task(self.call.run())

    async def _send(self, message: Any) -> None:
        self.sent.append(message)

    async def _record(self, message: Any) -> None:
        pass

    def agent_text(self) -> list[Transcript]:
        return [m for m in self.sent if isinstance(m, Transcript) and m.role == "agent"]


async def until(predicate: Any, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_a_call_with_2000_initial_messages_ends_and_another_call_is_answered_promptly(smollm: LlamaLLM) -> None:
    heavy = Party(CallSpec(call_id="heavy", history=long_history(2000), greeting=Greeting(agent_first=False)), smollm)
    await until(lambda: any(isinstance(m, State) and m.state == "thinking" for m in heavy.sent), 10)
    await until(lambda: smollm._worker.busy, 10)
    await asyncio.sleep(0.5)  # the heavy prompt is being read into the model
    heavy.call.end("hangup")
    async with asyncio.timeout(10):
        await heavy.task
    ended = time.perf_counter()
    await until(lambda: not smollm._worker.busy, 5)  # freed within a chunk of prompt, not after minutes
    freed = time.perf_counter() - ended

    light = Party(CallSpec(call_id="light", greeting=Greeting(agent_first=False), llm_timeout=30), smollm)
    await until(lambda: any(isinstance(m, State) and m.state == "listening" for m in light.sent), 5)
    asked = time.perf_counter()
    light.call.receive(UserTextMessage(text="Say hello."))
    await until(lambda: bool(light.agent_text()), 30)
    answered = time.perf_counter() - asked
    print(f"\nmodel free {freed:.2f} s after the heavy call ended; the next call's first words after {answered:.2f} s")
    assert light.agent_text()[0].text and light.agent_text()[0].text != APOLOGY
    light.call.end("hangup")
    async with asyncio.timeout(10):
        await light.task


@pytest.mark.parametrize("count", [2_000, 20_000])
async def test_truncating_a_huge_history_tokenizes_only_what_fits(smollm: LlamaLLM, count: int,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    tokenize = smollm._prompts._tokenize

    def counting(text: str) -> list[int]:
        calls.append(len(text))
        return tokenize(text)

    monkeypatch.setattr(smollm._prompts, "_tokenize", counting)
    messages = (ChatMessage("system", "You are a helpful assistant."), *long_history(count))
    started = time.perf_counter()
    tokens = smollm._prompt_tokens(Request(messages, (), 0.0, 256), "")
    elapsed = time.perf_counter() - started
    print(f"\n{count} messages: {len(calls)} tokenizer calls on {sum(calls)} characters, {elapsed * 1000:.0f} ms")
    assert 1000 < len(tokens) <= smollm._n_ctx
    assert len(calls) < 500 and sum(calls) < 60_000  # about what fits in 4,096 tokens, whatever the history
