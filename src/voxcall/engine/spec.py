"""What the engine needs to know about a call, as frozen values (no pydantic, no web)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from voxcall.providers.base import ChatMessage, ToolSpec

__all__ = ["CallSpec", "Greeting", "ToolDef"]

Reaction = Literal["speaks", "listens", "speaks-once"]


@dataclass(frozen=True, slots=True)
class ToolDef:
    """A tool offered in a call: how the model sees it and how it is run."""

    spec: ToolSpec
    kind: Literal["client", "http", "static", "hang_up"] = "client"
    timeout: float = 2.5
    static_parameters: dict[str, Any] = field(default_factory=dict)
    default_reaction: Reaction = "speaks"
    static_response: str | None = None
    http_url: str | None = None
    http_method: str = "GET"


@dataclass(frozen=True, slots=True)
class Greeting:
    """How the conversation opens (firstSpeakerSettings)."""

    agent_first: bool = True
    text: str | None = None
    prompt: str | None = None
    uninterruptible: bool = False
    delay: float = 0.0
    generate: bool = True
    """False when enableGreetingPrompt=false: no generated greeting."""


@dataclass(frozen=True, slots=True)
class CallSpec:
    """Everything `Call` needs, resolved from the stored call."""

    call_id: str
    system_prompt: str = "You are a helpful assistant."
    temperature: float = 0.0
    tools: tuple[ToolDef, ...] = ()
    history: tuple[ChatMessage, ...] = ()
    greeting: Greeting = Greeting()
    output_medium: Literal["voice", "text"] = "voice"
    max_duration: float = 3600.0
    time_exceeded_message: str | None = None
    max_tool_rounds: int = 4
    llm_timeout: float = 60.0
    """Longest wait for the model's first event before the agent apologises."""
