"""Realtime data messages on the join WebSocket (PROTOCOL.md 2.4-2.6).

Every message is a JSON object with a string `type`; other keys are camelCase.
Clients send extra and null keys, so parsing ignores unknown keys and treats
null as absent. Server messages are dumped compactly with unset keys left out,
so a transcript never carries `"text": ""` next to a delta (PROTOCOL.md 8.2).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, TypeAdapter, ValidationError

from voxcall.errors import ProtocolError
from voxcall.protocol.hygiene import MAX_DEPTH, UnsafeJSON, loads_strict
from voxcall.protocol.wire import WireModel

__all__ = [
    "CallStarted",
    "ClientMessage",
    "ClientToolInvocation",
    "ClientToolResult",
    "Debug",
    "ForcedAgentMessage",
    "HangUp",
    "InputTextMessage",
    "Ping",
    "PlaybackClearBuffer",
    "Pong",
    "ServerMessage",
    "SetOutputMedium",
    "State",
    "Transcript",
    "UnknownMessage",
    "UserTextMessage",
    "dump",
    "parse_client",
    "parse_server",
]

Urgency = Literal["immediate", "soon", "later"]
Medium = Literal["voice", "text"]
Role = Literal["user", "agent"]
AgentState = Literal["idle", "listening", "thinking", "speaking"]
AgentReaction = Literal["speaks", "listens", "speaks-once"]


# ---------------------------------------------------------- client -> server


class Ping(WireModel):
    type: Literal["ping"] = "ping"
    timestamp: float | int = 0


class UserTextMessage(WireModel):
    type: Literal["user_text_message"] = "user_text_message"
    text: str
    urgency: Urgency | None = None
    defer_response: bool | None = Field(default=None, validation_alias=AliasChoices("deferResponse", "defer_response"))
    thread_id: str | None = None


class InputTextMessage(WireModel):
    """The legacy name every official SDK's sendText still uses (PROTOCOL.md 8.1)."""

    type: Literal["input_text_message"] = "input_text_message"
    text: str
    defer_response: bool | None = Field(default=None, validation_alias=AliasChoices("deferResponse", "defer_response"))


class SetOutputMedium(WireModel):
    type: Literal["set_output_medium"] = "set_output_medium"
    medium: Medium


class ClientToolResult(WireModel):
    type: Literal["client_tool_result"] = "client_tool_result"
    invocation_id: str = Field(validation_alias=AliasChoices("invocationId", "invocation_id"))
    result: Any = None
    response_type: str | None = None
    agent_reaction: AgentReaction | None = None
    error_type: str | None = None
    error_message: str | None = None
    update_call_state: dict[str, Any] | None = None


class ForcedToolCall(WireModel):
    id: str | None = None
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ForcedAgentMessage(WireModel):
    type: Literal["forced_agent_message"] = "forced_agent_message"
    content: str = ""
    tool_calls: list[ForcedToolCall] | None = None
    uninterruptible: bool | None = None
    urgency: Literal["immediate", "soon"] | None = None


class HangUp(WireModel):
    type: Literal["hang_up"] = "hang_up"
    message: str | None = None


ClientMessage = Annotated[
    Ping | UserTextMessage | InputTextMessage | SetOutputMedium | ClientToolResult | ForcedAgentMessage | HangUp,
    Field(discriminator="type"),
]
CLIENT_TYPES = frozenset(
    ["ping", "user_text_message", "input_text_message", "set_output_medium", "client_tool_result", "forced_agent_message", "hang_up"]
)


# ---------------------------------------------------------- server -> client


class CallStarted(WireModel):
    type: Literal["call_started"] = "call_started"
    call_id: str


class State(WireModel):
    type: Literal["state"] = "state"
    state: AgentState


class Transcript(WireModel):
    """One transcript update: exactly one of `text` (full replacement) and `delta` (append)."""

    type: Literal["transcript"] = "transcript"
    role: Role
    medium: Medium
    text: str | None = None
    delta: str | None = None
    final: bool
    ordinal: int


class ClientToolInvocation(WireModel):
    type: Literal["client_tool_invocation"] = "client_tool_invocation"
    tool_name: str
    invocation_id: str
    parameters: dict[str, Any] = Field(default_factory=dict)


class Pong(WireModel):
    type: Literal["pong"] = "pong"
    timestamp: float | int


class PlaybackClearBuffer(WireModel):
    type: Literal["playback_clear_buffer"] = "playback_clear_buffer"


class Debug(WireModel):
    type: Literal["debug"] = "debug"
    message: str


class UnknownMessage(WireModel):
    """A server message of a type this SDK does not know; kept whole in `data`."""

    type: str
    data: dict[str, Any] = Field(default_factory=dict)


ServerMessage = Annotated[
    CallStarted | State | Transcript | ClientToolInvocation | Pong | PlaybackClearBuffer | Debug,
    Field(discriminator="type"),
]
SERVER_TYPES = frozenset(
    ["call_started", "state", "transcript", "client_tool_invocation", "pong", "playback_clear_buffer", "debug"]
)

_client_adapter: TypeAdapter[Any] = TypeAdapter(ClientMessage)
_server_adapter: TypeAdapter[Any] = TypeAdapter(ServerMessage)


def _load_object(text: str | bytes, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    try:
        data = loads_strict(text, max_depth=max_depth)
    except UnsafeJSON as exc:
        raise ProtocolError(exc.describe("the message")) from exc
    if not isinstance(data, dict):
        raise ProtocolError("a data message must be a JSON object")
    if not isinstance(data.get("type"), str):
        raise ProtocolError("a data message needs a string 'type'")
    return data


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"][1:]) or "message"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse_client(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse one client data message (strict JSON: see `protocol.hygiene.loads_strict`).

    Raises:
        ProtocolError: invalid or unsafe JSON, an unknown `type`, or missing/mistyped fields.
    """
    data = _load_object(text, max_depth)
    if data["type"] not in CLIENT_TYPES:
        raise ProtocolError(f"unknown message type {data['type'][:40]!r}")
    try:
        return _client_adapter.validate_python(data)
    except ValidationError as exc:
        raise ProtocolError(f"invalid {data['type']}: {_describe(exc)}") from exc


def parse_server(text: str | bytes) -> Any:
    """Parse one server data message; unknown types come back as `UnknownMessage`.

    Raises:
        ProtocolError: invalid JSON, or a known type with missing/mistyped fields.
    """
    data = _load_object(text)
    if data["type"] not in SERVER_TYPES:
        return UnknownMessage(type=data["type"], data=data)
    try:
        return _server_adapter.validate_python(data)
    except ValidationError as exc:
        raise ProtocolError(f"invalid {data['type']}: {_describe(exc)}") from exc


def dump(message: WireModel) -> str:
    """Serialise a message as one compact, strict JSON text frame (unset keys left out).

    Raises:
        ValueError: the message holds a non-finite number, which JSON cannot carry.
    """
    data = message.data if isinstance(message, UnknownMessage) else message.wire()
    return json.dumps(data, separators=(",", ":"), allow_nan=False)
