"""The provider protocols: what the engine needs from a model back end.

Structural `Protocol`s, so the embedded, OpenAI-compatible and fake back ends
share no base class (STYLE.md rule 6).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, cast, runtime_checkable

__all__ = [
    "LLM",
    "STT",
    "TTS",
    "VAD",
    "ChatMessage",
    "LLMEvent",
    "TextDelta",
    "ToolCall",
    "ToolSpec",
    "end_session",
    "open_session",
]

M = TypeVar("M")


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
    prompt_tokens: int | None = None
    """See `TextDelta.prompt_tokens`."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the model's answer text."""

    text: str
    prompt_tokens: int | None = None
    """The length of the prompt in tokens, on one event of a stream whose back end counts it (None on the
    others): the call stage's `initialTokenCount`/`latestTokenCount`. A back end that learns it only after
    the answer (an OpenAI-compatible server's usage chunk) sends it on a last, empty `TextDelta`."""


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

        One of them may carry `prompt_tokens` (the prompt's length, when the back end knows it).
        Cancellation-safe: cancelling the consumer stops generation at the next token.
        Raises `voxcall.errors.ProviderError` on back-end failure.
        """
        ...


# ------------------------------------------------------------------ speech


@runtime_checkable
class VAD(Protocol):
    """Voice activity detection on fixed frames. Stateful: one instance per call."""

    sample_rate: int
    """Rate of the frames it takes (16000 for Silero)."""
    frame_samples: int
    """Samples per frame (512 = 32 ms for Silero)."""

    def probability(self, frame: bytes) -> float:
        """Speech probability of one s16le frame of exactly `frame_samples` samples. Fast, sync."""
        ...

    def reset(self) -> None:
        """Forget the recurrent state (after a long gap)."""
        ...


@runtime_checkable
class STT(Protocol):
    """Speech to text on a finished utterance."""

    name: str
    sample_rate: int
    """Rate of the PCM it takes (16000 for Whisper)."""

    async def transcribe(self, pcm: bytes, *, language: str | None = None) -> str:
        """Transcribe s16le mono PCM at `sample_rate`. Cancellation-safe; raises ProviderError."""
        ...


@runtime_checkable
class TTS(Protocol):
    """Text to speech, one sentence or clause at a time."""

    name: str
    sample_rate: int
    """Rate of the PCM it yields (22050 for Piper)."""

    def voices(self) -> list[str]:
        """Voice ids this back end can speak with."""
        ...

    def synthesize(self, text: str, *, voice: str | None = None) -> AsyncIterator[bytes]:
        """Yield s16le mono PCM at `sample_rate` for `text`. Cancellation stops at the next chunk."""
        ...


# ------------------------------------------------------------------ sessions


def open_session(model: M, key: str, **listeners: Any) -> M:
    """One call's view of a shared model: `model.session(key, **listeners)` if it has one, else `model`.

    A shared embedded model (LLM, Whisper) queues each session's work separately and
    serves sessions fairly; `end_session` drops what an ended call still has queued.
    `listeners` are the session's callbacks (`on_queued(ahead)`, `on_started()` for the LLM).
    """
    opener = getattr(model, "session", None)
    return cast(M, opener(key, **listeners)) if callable(opener) else model


def end_session(model: object) -> None:
    """Cancel what a session from `open_session` has queued or running. Never blocks; a no-op for plain models."""
    end = getattr(model, "end", None)
    if callable(end):
        end()
