"""The provider protocols: what the engine needs from a model back end.

Structural `Protocol`s, so the embedded, OpenAI-compatible and fake back ends
share no base class (STYLE.md rule 6).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = ["LLM", "ChatMessage", "LLMEvent", "TextDelta", "ToolCall", "ToolSpec"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as the model sees it: model-facing name, description, JSON Schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asks for a tool to be run."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the model's answer text."""

    text: str


LLMEvent = TextDelta | ToolCall


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One entry of the conversation as the LLM sees it (OpenAI chat shape).

    `role="assistant"` with `tool_calls` is a tool request; `role="tool"` carries
    the result for `tool_call_id`.
    """

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@runtime_checkable
class LLM(Protocol):
    """A chat model that streams text and tool calls."""

    name: str

    def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        temperature: float = 0.0,
        max_tokens: int = 256,
    ) -> AsyncIterator[LLMEvent]:
        """Yield `TextDelta`s and/or `ToolCall`s for the next assistant turn.

        Cancellation-safe: cancelling the consumer stops generation at the next token.
        Raises `voxcall.errors.ProviderError` on back-end failure.
        """
        ...
