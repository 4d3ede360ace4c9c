"""Measure the embedded LLM: load time, cold/warm time to first token, tokens/s, tool routing.

Usage: python benchmarks/llm_ttft.py [--model qwen2.5-1.5b] [--cache-dir ~/.local/share/voxcall/models] [--threads 2]
Figures are single runs on whatever else the machine is doing; read them as rough sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from voxcall.config import default_data_dir
from voxcall.providers.base import ChatMessage, TextDelta, ToolCall, ToolSpec
from voxcall.providers.embedded import LlamaLLM, load_llm

WEATHER = ToolSpec(
    "getWeather",
    "Get the current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
REMINDER = ToolSpec(
    "setReminder",
    "Set a reminder for the user.",
    {
        "type": "object",
        "properties": {"text": {"type": "string"}, "minutes": {"type": "integer"}},
        "required": ["text", "minutes"],
    },
)
ROUTING = [
    ("What's the weather in Paris?", "getWeather"),
    ("Tell me a joke.", "answer"),
    ("Tell me a fun fact about octopuses.", "answer"),
    ("Do I need an umbrella in London today?", "getWeather"),
    ("What is 2+2?", "answer"),
    ("How hot is it in Madrid right now?", "getWeather"),
    ("Remind me to call mom in 10 minutes.", "setReminder"),
    ("Is it raining in Tokyo?", "getWeather"),
    ("What's the capital of France?", "answer"),
    ("How are you?", "answer"),
    ("Where is Paris?", "answer"),
    ("Will it snow in Oslo tomorrow?", "getWeather"),
    ("Who wrote Hamlet?", "answer"),
    ("Can you tell me the temperature in Rome?", "getWeather"),
]


async def timed(
    llm: LlamaLLM, messages: list[ChatMessage], tools: list[ToolSpec], max_tokens: int = 128
) -> dict[str, Any]:
    started = time.perf_counter()
    first = None
    events = []
    async for event in llm.stream(messages, tools, max_tokens=max_tokens):
        if first is None:
            first = time.perf_counter()
        events.append(event)
    end = time.perf_counter()
    deltas = [e for e in events if isinstance(e, TextDelta)]
    rate = (len(deltas) - 1) / (end - first) if first and len(deltas) > 1 and end > first else 0.0
    return {
        "ttft": (first or end) - started,
        "rate": rate,
        "text": "".join(e.text for e in deltas),
        "calls": [e for e in events if isinstance(e, ToolCall)],
    }


async def main(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    llm = load_llm(args.model, cache_dir=args.cache_dir, n_threads=args.threads)
    print(f"load (incl. verify): {time.perf_counter() - started:.2f} s, llama.cpp load {llm.load_seconds:.2f} s")
    # A fresh system prompt makes the first request cold.
    system = ChatMessage(
        "system", f"[{uuid.uuid4().hex[:8]}] You are a helpful assistant. Answer in a sentence or two."
    )
    for tools, label in (([], "no tools"), ([WEATHER], "1 tool")):
        cold = await timed(llm, [system, ChatMessage("user", "Tell me about the moon.")], tools)
        warm = await timed(llm, [system, ChatMessage("user", "Tell me about the sun.")], tools)
        print(
            f"{label}: TTFT cold {cold['ttft'] * 1000:.0f} ms, warm {warm['ttft'] * 1000:.0f} ms, "
            f"{warm['rate']:.1f} text deltas/s; {warm['text']!r}"
        )
    for count in (1, 2):
        tools = [WEATHER, REMINDER][:count]
        correct = 0
        for question, expected in ROUTING:
            expected = "answer" if expected == "setReminder" and count == 1 else expected
            messages = [ChatMessage("system", "You are a helpful assistant."), ChatMessage("user", question)]
            result = await timed(llm, messages, tools, 64)
            got = result["calls"][0].name if result["calls"] else "answer"
            correct += got == expected
            detail = result["calls"][0].arguments if result["calls"] else result["text"][:50]
            print(f"  [{'ok ' if got == expected else 'BAD'}] {question!r} -> {got} {detail}")
        print(f"routing with {count} tool(s): {correct}/{len(ROUTING)}")
    llm.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-1.5b", choices=["qwen2.5-1.5b", "smollm2-135m"])
    parser.add_argument("--cache-dir", type=Path, default=default_data_dir() / "models")
    parser.add_argument("--threads", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
