"""The `CallStage` resource (PROTOCOL.md 1.8): one stage of a call, as `GET /api/calls/{id}/stages` lists it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from voxcall.protocol.rest import _Response

__all__ = ["CallStage"]


class CallStage(_Response):
    """A stage's settings: the call's, with what `new-stage` results changed (systemPrompt, temperature, voice, languageHint)."""

    nullable = frozenset({"initial_token_count", "latest_token_count", "language_hint", "system_prompt",
                          "time_exceeded_message", "voice", "experimental_settings"})

    call_id: str
    call_stage_id: str
    created: datetime
    inactivity_messages: list[dict[str, Any]] = Field(default_factory=list)
    initial_token_count: int | None = None
    language_hint: str | None = None
    latest_token_count: int | None = None
    model: str = "ultravox-v0.7"
    system_prompt: str | None = None
    temperature: float = 0.0
    time_exceeded_message: str | None = None
    voice: str | None = None
    external_voice: dict[str, Any] | None = None
    voice_overrides: dict[str, Any] | None = None
    error_count: int = 0
    experimental_settings: dict[str, Any] | None = None
    initial_state: dict[str, Any] = Field(default_factory=dict)
