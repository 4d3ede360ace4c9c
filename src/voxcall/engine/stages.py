"""Call stages: a `new-stage` tool result parsed, checked and turned into the next stage of a call.

A tool answers with the response type `new-stage` (the `X-Ultravox-Response-Type` header of an
HTTP tool, `responseType` of a `client_tool_result`) and a partial StartCallRequest as its
result (PROTOCOL.md 1.9.4; https://docs.ultravox.ai/agents/call-stages). Fields that may
change: `systemPrompt`, `temperature`, `voice`, `languageHint`, `initialMessages`,
`selectedTools`; `toolResultText` is the text of the tool-result message (default "OK"). A
field not given is inherited from the previous stage. Any other StartCallRequest field, an
unknown field, or an invalid value makes the result a tool failure the model can speak about;
the call stays in its stage.

History, as the hosted API keeps it: the new stage starts from the previous stage's whole
conversation (its initial messages: the hosted `mode=in_call` message list leaves those copies
out), or from `initialMessages` when the result gives them, which replace it.

The engine knows no database and no tool store: the server hands the call a `StageResolver`
that resolves `selectedTools` as call creation does, and a voice name as the call's voice is.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from voxcall.engine.spec import ToolDef
from voxcall.protocol.rest import CallMessage, StartCallRequest
from voxcall.providers.base import ChatMessage, ToolCall

__all__ = [
    "CHANGEABLE",
    "DEFAULT_TOOL_RESULT",
    "FIXED",
    "ResolvedStage",
    "StageError",
    "StageRecord",
    "StageRequest",
    "StageResolver",
    "TokenCount",
    "chat_history",
    "parse_stage_request",
]

CHANGEABLE = ("systemPrompt", "temperature", "voice", "languageHint", "initialMessages", "selectedTools")
FIXED = ("firstSpeaker", "model", "joinTimeout", "maxDuration", "timeExceededMessage", "inactivityMessages", "medium",
         "recordingEnabled")
"""The fields the call stages docs name as unchangeable; every other StartCallRequest field is refused as well."""
DEFAULT_TOOL_RESULT = "OK"


class StageError(ValueError):
    """Why a `new-stage` result cannot start a stage: a sentence the model (and errorDetails) gets."""


@dataclass(frozen=True, slots=True)
class StageRequest:
    """A checked `new-stage` result: only the fields it gives (`changes`, wire form), plus the tool result text."""

    changes: dict[str, Any]
    tool_result_text: str = DEFAULT_TOOL_RESULT
    initial_messages: tuple[CallMessage, ...] | None = None

    @property
    def system_prompt(self) -> str | None:
        return self.changes.get("systemPrompt")

    @property
    def selected_tools(self) -> list[dict[str, Any]] | None:
        return self.changes.get("selectedTools")


@dataclass(frozen=True, slots=True)
class ResolvedStage:
    """What the server resolved for a stage: the tools (None: the previous stage's) and the TTS voice."""

    tools: tuple[ToolDef, ...] | None = None
    tool_entries: list[dict[str, Any]] | None = None
    """The stage's `CallTool` entries as the server stores them (None: inherited)."""
    voice: str | None = None
    """The installed voice to speak with, when `voice` was given."""


class StageResolver(Protocol):
    """Resolves what a stage needs from the server; raises StageError with a sentence for the model."""

    async def resolve(self, request: StageRequest) -> ResolvedStage: ...


@dataclass(frozen=True, slots=True)
class StageRecord:
    """A new stage for the `record` callable: stored before any message of the stage.

    `settings` are the stage's changed fields so far (cumulative, wire form: systemPrompt,
    temperature, voice, languageHint); `tools` None means the previous stage's; `initial_messages`
    None means a copy of the previous stage's messages.
    """

    call_stage_id: str
    settings: dict[str, Any] = field(default_factory=dict)
    tools: list[dict[str, Any]] | None = None
    initial_messages: tuple[CallMessage, ...] | None = None


@dataclass(frozen=True, slots=True)
class TokenCount:
    """The prompt of a model request in this stage was `prompt_tokens` long (the stage's first such count is its
    `initialTokenCount`, the newest its `latestTokenCount`); recorded only when the model back end counts."""

    call_stage_id: str
    prompt_tokens: int


def new_stage_id() -> str:
    return str(uuid.uuid4())


def parse_stage_request(body: str) -> StageRequest:
    """Parse and check a `new-stage` result. Raises StageError naming the field."""
    try:
        value = json.loads(body) if body.strip() else {}
    except ValueError:
        raise StageError("the new-stage result is not JSON: it must be an object with the fields to change") from None
    if not isinstance(value, dict):
        raise StageError("the new-stage result must be a JSON object with the fields to change")
    text = value.pop("toolResultText", None)
    if text is not None and not isinstance(text, str):
        raise StageError("toolResultText must be a string")
    for key in value:
        if key in FIXED or key in _FIELDS:
            if key not in CHANGEABLE:
                raise StageError(f"{key} cannot change in a new stage (changeable: {', '.join(CHANGEABLE)})")
        elif key not in CHANGEABLE:
            raise StageError(f"unknown field {key!r} in the new-stage result (changeable: {', '.join(CHANGEABLE)})")
    changes = {k: v for k, v in value.items() if v is not None}
    try:
        parsed = StartCallRequest.model_validate(changes)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "the result"
        raise StageError(f"invalid {where} in the new-stage result: {first['msg']}") from None
    wire = parsed.wire()
    messages = tuple(parsed.initial_messages) if parsed.initial_messages is not None else None
    return StageRequest(changes={k: wire[k] for k in changes if k in wire and k != "initialMessages"},
                        tool_result_text=text if text is not None else DEFAULT_TOOL_RESULT, initial_messages=messages)


_FIELDS = frozenset(StartCallRequest.model_fields[name].alias or name for name in StartCallRequest.model_fields)


def chat_history(messages: Sequence[CallMessage]) -> list[ChatMessage]:
    """The LLM history of stored or initial call messages (a tool call joins the agent message before it)."""
    history: list[ChatMessage] = []
    for m in messages:
        text = m.text or ""
        if m.role == "MESSAGE_ROLE_USER":
            history.append(ChatMessage("user", text))
        elif m.role == "MESSAGE_ROLE_AGENT":
            history.append(ChatMessage("assistant", text))
        elif m.role == "MESSAGE_ROLE_TOOL_CALL":
            _add_tool_call(history, m, text)
        elif m.role == "MESSAGE_ROLE_TOOL_RESULT":
            history.append(ChatMessage("tool", text, tool_call_id=m.invocation_id, name=m.tool_name))
    return history


def _add_tool_call(history: list[ChatMessage], m: CallMessage, text: str) -> None:
    try:
        args = json.loads(text) if text else {}
    except ValueError:
        args = {}
    call = ToolCall(m.invocation_id or str(uuid.uuid4()), m.tool_name or "tool", args if isinstance(args, dict) else {})
    if history and history[-1].role == "assistant":
        prior = history.pop()
        history.append(ChatMessage("assistant", prior.content, tool_calls=(*prior.tool_calls, call)))
    else:
        history.append(ChatMessage("assistant", "", tool_calls=(call,)))
