"""LlamaLLM with the real embedded models (Qwen2.5-Coder-1.5B and SmolLM2-135M)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from voxcall.errors import ProviderError
from voxcall.providers.base import LLM, ChatMessage, LLMEvent, TextDelta, ToolCall, ToolSpec
from voxcall.providers.embedded import LlamaLLM, load_llm

pytestmark = pytest.mark.models

WEATHER = ToolSpec(
    name="getWeather",
    description="Get the current weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
SYSTEM = ChatMessage("system", "You are a helpful assistant.")


async def _run(
    llm: LlamaLLM, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = (), **kw: object
) -> tuple[list[LLMEvent], float]:
    """Collect a reply and its time to the first event."""
    started = time.perf_counter()
    first = 0.0
    events: list[LLMEvent] = []
    async for event in llm.stream(messages, tools, **kw):  # type: ignore[arg-type]
        if not events:
            first = time.perf_counter() - started
        events.append(event)
    return events, first


def _text(events: list[LLMEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


async def _wait_idle(llm: LlamaLLM, seconds: float = 5.0) -> None:
    deadline = time.perf_counter() + seconds
    while llm._worker.busy:  # a worker thread: polling is the only way to watch it from the loop
        assert time.perf_counter() < deadline, "the worker did not stop"
        await asyncio.sleep(0.01)


async def test_weather_question_calls_the_tool(qwen: LlamaLLM) -> None:
    assert isinstance(qwen, LLM)
    events, _ = await _run(qwen, [SYSTEM, ChatMessage("user", "What's the weather in Paris?")], [WEATHER])
    calls = [event for event in events if isinstance(event, ToolCall)]
    assert len(calls) == 1, events
    assert calls[0].name == "getWeather"
    assert calls[0].arguments["city"].casefold() == "paris"
    assert calls[0].id.startswith("call_")
    assert events[0].prompt_tokens is not None and events[0].prompt_tokens > 20  # the tool router's prompt, counted
    assert _text(events) == ""


async def test_joke_is_streamed_text_only(qwen: LlamaLLM) -> None:
    events, _ = await _run(qwen, [SYSTEM, ChatMessage("user", "Tell me a joke.")], [WEATHER])
    assert events and all(isinstance(event, TextDelta) for event in events)
    assert len(events) > 3  # streamed token by token, not in one piece
    assert _text(events).strip()
    assert '"' not in _text(events)[-1:] and "action" not in _text(events)


async def test_answer_after_the_tool_result(qwen: LlamaLLM) -> None:
    call = ToolCall("call_test1", "getWeather", {"city": "Paris"})
    messages = [
        SYSTEM,
        ChatMessage("user", "What's the weather in Paris?"),
        ChatMessage("assistant", tool_calls=(call,)),
        ChatMessage("tool", '{"temp_c": 21, "condition": "sunny"}', tool_call_id=call.id, name="getWeather"),
    ]
    events, _ = await _run(qwen, messages, [WEATHER])
    text = _text(events)
    assert not [event for event in events if isinstance(event, ToolCall)]
    assert "21" in text or "sunny" in text.casefold(), text


async def test_prefix_reuse_makes_the_second_turn_fast(qwen: LlamaLLM) -> None:
    # A unique system prompt guarantees a cold KV cache for the first turn.
    system = ChatMessage(
        "system",
        (
            f"Session {uuid.uuid4()}. You are the concierge of the Hotel Sunrise. Breakfast is served from 6:30 to "
            "10:30 in the lobby restaurant. The wifi password is sunrise2024. Checkout is at 11:00 and late "
            "checkout costs 20 euros. The pool is open from 8:00 to 20:00. Answer in one short sentence."
        ),
    )
    first, cold = await _run(qwen, [system, ChatMessage("user", "What time is breakfast?")], [WEATHER])
    history = [system, ChatMessage("user", "What time is breakfast?"), ChatMessage("assistant", _text(first))]
    second, warm = await _run(qwen, [*history, ChatMessage("user", "What is the wifi password?")], [WEATHER])
    print(f"\nTTFT cold {cold * 1000:.0f} ms, warm {warm * 1000:.0f} ms; replies {_text(first)!r} {_text(second)!r}")
    assert "sunrise2024" in _text(second)
    assert warm < cold


async def test_smollm_streams_plain_text(smollm: LlamaLLM) -> None:
    started = time.perf_counter()
    events, ttft = await _run(smollm, [SYSTEM, ChatMessage("user", "Say hello.")], max_tokens=48)
    elapsed = time.perf_counter() - started
    assert len(events) > 3 and all(isinstance(event, TextDelta) for event in events)
    assert _text(events).strip()
    print(f"\nsmollm2: TTFT {ttft * 1000:.0f} ms, {len(events)} deltas in {elapsed:.2f} s")


async def test_the_first_event_carries_the_prompt_length(smollm: LlamaLLM) -> None:
    short = [SYSTEM, ChatMessage("user", "Say hello.")]
    longer = [*short, ChatMessage("assistant", "Hello there, how can I help you today?"), ChatMessage("user", "Say it again.")]
    counts = []
    for messages in (short, longer):
        events, _ = await _run(smollm, messages, max_tokens=8)
        assert events and [e.prompt_tokens is not None for e in events] == [True] + [False] * (len(events) - 1)
        counts.append(events[0].prompt_tokens)
    assert counts[0] is not None and counts[1] is not None
    assert len("You are a helpful assistant. Say hello.".split()) < counts[0] < 100  # words plus the chat template's tokens
    assert counts[1] - counts[0] >= len("Hello there, how can I help you today? Say it again.".split())


async def test_closing_the_consumer_stops_generation(smollm: LlamaLLM) -> None:
    stream = smollm.stream([SYSTEM, ChatMessage("user", "Count from 1 to 500, one number per line.")], max_tokens=400)
    for _ in range(3):
        assert isinstance(await anext(stream), TextDelta)
    await stream.aclose()
    await _wait_idle(smollm, 1.0)
    events, _ = await _run(smollm, [SYSTEM, ChatMessage("user", "Say hi.")], max_tokens=8)
    assert events


async def test_cancelling_the_consumer_task_stops_generation(smollm: LlamaLLM) -> None:
    received: list[LLMEvent] = []
    two_received = asyncio.Event()

    async def consume() -> None:
        async for event in smollm.stream([SYSTEM, ChatMessage("user", "Write a long story.")], max_tokens=400):
            received.append(event)
            if len(received) == 2:
                two_received.set()

    task = asyncio.create_task(consume())
    await two_received.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _wait_idle(smollm, 1.0)
    assert len(received) < 400


async def test_concurrent_streams_are_serialised(smollm: LlamaLLM) -> None:
    replies = await asyncio.gather(
        *(
            _run(smollm, [SYSTEM, ChatMessage("user", question)], max_tokens=16)
            for question in ("Say hi.", "Name a colour.", "Name a fruit.")
        )
    )
    assert all(_text(events).strip() for events, _ in replies)


async def test_failures_become_provider_errors(smollm: LlamaLLM, tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="does not fit"):
        await _run(smollm, [ChatMessage("user", "word " * 6000)])
    events, _ = await _run(smollm, [SYSTEM, ChatMessage("user", "Say hi.")], max_tokens=8)
    assert events  # still usable afterwards
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a model")
    with pytest.raises(ProviderError, match="cannot load"):
        LlamaLLM(bogus, name="bogus")


async def test_warm_up_then_first_turn(smollm: LlamaLLM) -> None:
    await smollm.warm_up("You are a terse assistant.", [WEATHER])
    messages = [ChatMessage("system", "You are a terse assistant."), ChatMessage("user", "Hi")]
    events, ttft = await _run(smollm, messages, [WEATHER], max_tokens=16)
    assert events
    print(f"\nsmollm2 after warm_up: TTFT {ttft * 1000:.0f} ms")


async def test_close_ends_running_and_waiting_requests(smollm: LlamaLLM, model_cache: Path) -> None:
    llm = load_llm("smollm2-135m", cache_dir=model_cache)  # a second instance: this one gets closed
    first = llm.stream([SYSTEM, ChatMessage("user", "Write a long story.")], max_tokens=400)
    second = llm.stream([SYSTEM, ChatMessage("user", "Say hi.")], max_tokens=8)
    assert isinstance(await anext(first), TextDelta)
    waiting = asyncio.create_task(anext(second))
    await asyncio.to_thread(llm.close)
    with pytest.raises(ProviderError, match="closed"):
        async for _ in first:
            pass
    with pytest.raises(ProviderError, match="closed"):
        await waiting
    with pytest.raises(ProviderError, match="closed"):
        await _run(llm, [ChatMessage("user", "Hi")])


async def _drain(stream: AsyncIterator[LLMEvent]) -> None:
    async for _ in stream:
        pass


class _Evals:
    """Counts the prompt tokens llama.cpp is given (`Llama.eval`), to see what the KV cache saved."""

    def __init__(self, llm: LlamaLLM, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tokens = 0
        inner = llm._llama.eval

        def counted(tokens: Sequence[int]) -> None:
            self.tokens += len(tokens)
            inner(tokens)

        monkeypatch.setattr(llm._llama, "eval", counted)


async def test_a_prefilled_prompt_starts_without_a_forward_pass(smollm: LlamaLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    system = ChatMessage("system", f"Session {uuid.uuid4()}. You answer in one short sentence.")
    prompt = [system, ChatMessage("user", "Name a colour.")]
    cold, _ = await _run(smollm, prompt, max_tokens=6)
    await _run(smollm, [ChatMessage("system", f"Other {uuid.uuid4()}."), ChatMessage("user", "Hi")], max_tokens=2)
    evals = _Evals(smollm, monkeypatch)
    call = smollm.session(uuid.uuid4())  # one call: one KV cache slot
    await call.prefill(prompt)
    read = evals.tokens
    assert read > 10  # a new conversation: the prompt was read
    warm = [e async for e in call.stream(prompt, max_tokens=1)]
    assert evals.tokens == read  # the first token came from the prefill's own logits: not one token evaluated again
    assert _text(warm) == _text(cold)[: len(_text(warm))] and _text(warm)


async def test_a_prompt_shorter_than_the_cache_is_answered_from_its_own_logits(smollm: LlamaLLM) -> None:
    system = ChatMessage("system", f"Session {uuid.uuid4()}. You answer in one short sentence.")
    prompt = [system, ChatMessage("user", "Name a fruit.")]
    cold, _ = await _run(smollm, prompt, max_tokens=8)
    call = smollm.session(uuid.uuid4())
    await _drain(call.stream(prompt, max_tokens=8))  # the cache now runs past the prompt (its reply's tokens)
    again = [e async for e in call.stream(prompt, max_tokens=8)]
    assert _text(again) == _text(cold)  # greedy: the same reply, so the logits were the prompt's


async def test_an_open_ended_prefill_reads_the_words_so_far(smollm: LlamaLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    system = ChatMessage("system", f"Session {uuid.uuid4()}. You answer in one short sentence.")
    words = "Please tell me the name of the largest ocean on our planet"
    cold, _ = await _run(smollm, [system, ChatMessage("user", words + ", in one word.")], max_tokens=6)
    await _run(smollm, [ChatMessage("system", f"Other {uuid.uuid4()}."), ChatMessage("user", "Hi")], max_tokens=2)
    evals = _Evals(smollm, monkeypatch)
    call = smollm.session(uuid.uuid4())
    await call.prefill([system, ChatMessage("user", words)], open_end=True)  # the user is still talking
    partial = evals.tokens
    warm = [e async for e in call.stream([system, ChatMessage("user", words + ", in one word.")], max_tokens=1)]
    rest = evals.tokens - partial  # max_tokens=1: no sampled token is evaluated
    assert partial > 20 and rest < 12  # only the words after the partial and the template's closing were left
    assert _text(warm) and _text(cold).startswith(_text(warm))
