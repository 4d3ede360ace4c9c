"""A deterministic scripted LLM, for ENGINE UNIT TESTS ONLY.

Integration tests, benchmarks and the CLI use real models (`embedded.py`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass

from voxcall.errors import ProviderError
from voxcall.providers.base import ChatMessage, LLMEvent, TextDelta, ToolSpec

__all__ = ["LLMRequest", "Script", "ScriptedLLM"]

Reply = Sequence[LLMEvent | Exception]
Script = Callable[[Sequence[ChatMessage], Sequence[ToolSpec]], Reply] | Sequence[Reply]
_WORDS = re.compile(r"\s*\S+\s*|\s+")


@dataclass(frozen=True, slots=True)
class LLMRequest:
    """What one `stream()` call was given."""

    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolSpec, ...]


class ScriptedLLM:
    """Replies from a script: a callable `(messages, tools) -> events`, or a list of replies used in order.

    `TextDelta`s are re-split into words, each after `delay` seconds; an `Exception`
    in a reply is raised at that point. Every call is recorded in `calls`.
    """

    name = "scripted"

    def __init__(self, script: Script, *, delay: float = 0.0) -> None:
        self._script = script
        self._replies: Iterator[Reply] = iter(()) if callable(script) else iter(script)
        self.delay = delay
        self.calls: list[LLMRequest] = []

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        temperature: float = 0.0,
        max_tokens: int = 256,
    ) -> AsyncIterator[LLMEvent]:
        """Yield the next scripted reply. Cancellation-safe (nothing is left behind)."""
        self.calls.append(LLMRequest(tuple(messages), tuple(tools)))
        for event in self._next_reply(messages, tools):
            if isinstance(event, Exception):
                raise event
            if isinstance(event, TextDelta):
                for word in _WORDS.findall(event.text):
                    await asyncio.sleep(self.delay)
                    yield TextDelta(word)
            else:
                await asyncio.sleep(self.delay)
                yield event

    def _next_reply(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> Reply:
        if callable(self._script):
            return self._script(messages, tools)
        for reply in self._replies:
            return reply
        raise ProviderError(f"script exhausted after {len(self.calls) - 1} replies")
