"""The values of one tool invocation, sorted by where they go (path, query, header, body).

Dynamic parameters come from the model's arguments (arguments that are not in the
model's schema are dropped), static ones from the definition and parameterOverrides, automatic ones from the
call (PROTOCOL.md 1.9.2 `knownValue`). Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from voxcall.engine.spec import ToolDef
from voxcall.providers.base import ChatMessage

__all__ = ["MissingArguments", "ToolContext", "ToolInputs", "assemble", "history_messages", "known_value", "text_value"]


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What automatic parameters can read about the call at the moment of the invocation."""

    call_id: str
    call_stage_id: str
    call_state: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)
    output_sample_rate: int = 48000
    history: tuple[ChatMessage, ...] = ()


@dataclass(slots=True)
class ToolInputs:
    path: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    header: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)


class MissingArguments(ValueError):
    """The model left out required parameters (their names are in `names`)."""

    def __init__(self, names: list[str]) -> None:
        super().__init__("missing required parameter(s): " + ", ".join(names))
        self.names = names


def assemble(tool: ToolDef, arguments: Mapping[str, Any], context: ToolContext) -> ToolInputs:
    """Every parameter value of one invocation, by location.

    Raises:
        MissingArguments: a required dynamic parameter is absent (or null).
    """
    inputs = ToolInputs()
    missing: list[str] = []
    for param in tool.parameters:
        if param.source == "dynamic":
            if arguments.get(param.name) is None:
                if param.required:
                    missing.append(param.name)
                continue
            value = arguments[param.name]
        elif param.source == "automatic":
            value = known_value(param.known or "", context)
        else:
            value = param.value
        getattr(inputs, param.location)[param.name] = value
    if missing:
        raise MissingArguments(missing)
    declared = {p.name for p in tool.parameters}
    offered = tool.spec.parameters.get("properties") or {}
    for name, value in arguments.items():  # offered in the schema without a location: the body
        if name not in declared and name in offered:
            inputs.body[name] = value
    return inputs


def known_value(known: str, context: ToolContext) -> Any:
    """The value of a KNOWN_PARAM_* for this call (None for an unknown one)."""
    values: dict[str, Any] = {
        "KNOWN_PARAM_CALL_ID": context.call_id,
        "KNOWN_PARAM_CALL_STAGE_ID": context.call_stage_id,
        "KNOWN_PARAM_CALL_STATE": dict(context.call_state),
        "KNOWN_PARAM_CALL_METADATA": dict(context.metadata),
        "KNOWN_PARAM_OUTPUT_SAMPLE_RATE": context.output_sample_rate,
        "KNOWN_PARAM_CONVERSATION_HISTORY": history_messages(context.history),
        "KNOWN_PARAM_THREAD_ID": "UI",  # threads are not implemented: every call has the one default thread
        "KNOWN_PARAM_THREAD_STATES": {},
    }
    return values.get(known)


def history_messages(history: tuple[ChatMessage, ...]) -> list[dict[str, Any]]:
    """The conversation so far as `ultravox.v1.Message` objects (role, text, tool name and id)."""
    out: list[dict[str, Any]] = []
    for entry in history:
        if entry.role == "user":
            out.append({"role": "MESSAGE_ROLE_USER", "text": entry.content})
        elif entry.role == "assistant":
            if entry.content:
                out.append({"role": "MESSAGE_ROLE_AGENT", "text": entry.content})
            out.extend({"role": "MESSAGE_ROLE_TOOL_CALL", "text": json.dumps(c.arguments), "toolName": c.name,
                        "invocationId": c.id} for c in entry.tool_calls)
        elif entry.role == "tool":
            out.append({"role": "MESSAGE_ROLE_TOOL_RESULT", "text": entry.content, "toolName": entry.name,
                        "invocationId": entry.tool_call_id})
    return out


def text_value(value: Any) -> str:
    """A value for a path, query or header slot: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
