"""REST shapes of the Ultravox API (ultravox-openapi.yaml), as pydantic models.

Requests are parsed strictly enough to give field-level 422s and leniently
enough for real clients (PROTOCOL.md 1.2, CONFORMANCE.md 4). Responses that
the spec marks `required` always carry every required key, `null` when unknown.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from voxcall.protocol.tools import (
    DEFAULT_TOOL_TIMEOUT,
    MAX_TOOL_TIMEOUT,
    TOOL_NAME_PATTERN,
    AutomaticParameter,
    BaseToolDefinition,
    DynamicParameter,
    SelectedTool,
    StaticParameter,
)
from voxcall.protocol.wire import Duration, WireModel

__all__ = [
    "DEFAULT_TOOL_TIMEOUT",
    "MAX_TOOL_TIMEOUT",
    "TELEPHONY_MEDIA",
    "TOOL_NAME_PATTERN",
    "Account",
    "AutomaticParameter",
    "BaseToolDefinition",
    "Call",
    "CallEvent",
    "CallMedium",
    "CallMessage",
    "CallTool",
    "Callback",
    "Callbacks",
    "DtmfHandling",
    "DtmfUserTextMessage",
    "DynamicParameter",
    "EnabledDataMessages",
    "ErrorBody",
    "ExotelMedium",
    "FirstSpeakerSettings",
    "MessageListMode",
    "ModelAlias",
    "Page",
    "SelectedTool",
    "StartCallRequest",
    "StaticParameter",
    "TelephonyMedium",
    "TimedMessage",
    "VadSettings",
    "Voice",
    "WebSocketMedium",
    "first_stage_id",
]

T = TypeVar("T")

MessageRole = Literal[
    "MESSAGE_ROLE_UNSPECIFIED", "MESSAGE_ROLE_USER", "MESSAGE_ROLE_AGENT", "MESSAGE_ROLE_TOOL_CALL", "MESSAGE_ROLE_TOOL_RESULT"
]
MessageMedium = Literal["MESSAGE_MEDIUM_UNSPECIFIED", "MESSAGE_MEDIUM_VOICE", "MESSAGE_MEDIUM_TEXT"]
EndReason = Literal["unjoined", "hangup", "agent_hangup", "timeout", "connection_error", "system_error"]
MessageListMode = Literal["last_stage", "in_call"]
"""`mode` of `GET /api/calls/{id}/messages`: the last stage's messages with its initial ones (the default),
or every stage's without their initial ones."""

# Tools (1.9) live in protocol/tools.py; re-exported here for existing importers.


# ------------------------------------------------------- call settings (1.5)


class EnabledDataMessages(WireModel):
    pong: bool | None = None
    state: bool | None = None
    transcript: bool | None = None
    client_tool_invocation: bool | None = None
    data_connection_tool_invocation: bool | None = None
    playback_clear_buffer: bool | None = None
    call_started: bool | None = None
    debug: bool | None = None
    call_event: bool | None = None
    tool_used: bool | None = None
    user_started_speaking: bool | None = None
    user_stopped_speaking: bool | None = None
    invoking_tool: bool | None = None


class WebSocketMedium(WireModel):
    input_sample_rate: int = Field(ge=8000, le=48000)
    output_sample_rate: int | None = Field(default=None, ge=8000, le=48000)
    client_buffer_size_ms: int | None = Field(default=None, ge=0)
    data_messages: EnabledDataMessages | None = None
    media_idle_timeout: Duration | None = None


class WebRtcMedium(WireModel):
    data_messages: EnabledDataMessages | None = None


class DtmfUserTextMessage(WireModel):
    text: str | None = None
    """Template with "{digits}"; empty or unset means "{digits}"."""
    urgency: Literal["URGENCY_UNSPECIFIED", "URGENCY_IMMEDIATE", "URGENCY_SOON", "URGENCY_LATER"] | None = None


class DtmfHandling(WireModel):
    """`CallMedium_DtmfHandling`: absent = the digits as a user text message, urgency immediate."""

    ignore: bool | None = None
    user_text_message: DtmfUserTextMessage | None = None


class ExotelMedium(WireModel):
    dtmf_handling: DtmfHandling | None = None


class TelephonyMedium(ExotelMedium):
    """`twilio`, `telnyx` and `plivo` (`outgoing` is kept as given, for the outgoing-call code to read)."""

    outgoing: dict[str, Any] | None = None


TELEPHONY_MEDIA = ("twilio", "telnyx", "plivo", "exotel")
"""The carrier media: their join URL is given to the carrier, which speaks its own media-stream protocol."""


class CallMedium(WireModel):
    web_rtc: WebRtcMedium | None = None
    server_web_socket: WebSocketMedium | None = None
    twilio: TelephonyMedium | None = None
    telnyx: TelephonyMedium | None = None
    plivo: TelephonyMedium | None = None
    exotel: ExotelMedium | None = None
    sip: dict[str, Any] | None = None

    @property
    def carrier(self) -> str | None:
        """The telephony medium set ("twilio", ...), or None."""
        return next((name for name in TELEPHONY_MEDIA if getattr(self, name) is not None), None)

    @model_validator(mode="after")
    def _at_most_one(self) -> CallMedium:
        if len(self.wire()) > 1:
            raise ValueError("set at most one medium")
        return self

    @property
    def data_messages(self) -> EnabledDataMessages | None:
        source = self.server_web_socket or self.web_rtc
        return source.data_messages if source else None


class VadSettings(WireModel):
    turn_endpoint_delay: Duration | None = None
    minimum_turn_duration: Duration | None = None
    minimum_interruption_duration: Duration | None = None
    frame_activation_threshold: float | None = Field(default=None, ge=0.1, le=1)

    @field_validator("frame_activation_threshold", mode="before")
    @classmethod
    def _zero_is_unset(cls, value: Any) -> Any:
        return None if value == 0 else value  # proto3's zero value: the default (0.1) applies


class TimedMessage(WireModel):
    duration: Duration = 0.0  # neither is required by the document: proto3's zero values
    message: str = ""
    end_behavior: Literal["END_BEHAVIOR_UNSPECIFIED", "END_BEHAVIOR_HANG_UP_SOFT", "END_BEHAVIOR_HANG_UP_STRICT"] | None = None


class AgentGreeting(WireModel):
    uninterruptible: bool | None = None
    text: str | None = None
    prompt: str | None = None
    delay: Duration | None = None


class UserFallback(WireModel):
    delay: Duration = 0.0  # not required by the document: proto3's zero value
    text: str | None = None
    prompt: str | None = None


class UserFirst(WireModel):
    fallback: UserFallback | None = None


class FirstSpeakerSettings(WireModel):
    agent: AgentGreeting | None = None
    user: UserFirst | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> FirstSpeakerSettings:
        if (self.agent is None) == (self.user is None):
            raise ValueError("set exactly one of agent and user")
        return self


class CallMessage(WireModel):
    """`ultravox.v1.Message`: one entry of a call's history."""

    role: MessageRole = "MESSAGE_ROLE_UNSPECIFIED"
    text: str | None = None
    invocation_id: str | None = None
    tool_name: str | None = None
    error_details: str | None = None
    medium: MessageMedium | None = None
    call_stage_message_index: int | None = None
    call_stage_id: str | None = None
    call_state: dict[str, Any] | None = None
    timespan: dict[str, Any] | None = None
    wall_clock_timespan: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class Callback(WireModel):
    """`ultravox.v1.Callback`: a URL invoked at a call lifecycle event, signed with `secrets`."""

    url: str = Field(min_length=1)
    secrets: list[str] = Field(default_factory=list)


class Callbacks(WireModel):
    """`ultravox.v1.Callbacks`: per-call lifecycle callbacks."""

    joined: Callback | None = None
    ended: Callback | None = None
    billed: Callback | None = None


class StartCallRequest(WireModel):
    """`ultravox.v1.StartCallRequest`, the body of POST /api/calls (every field optional)."""

    system_prompt: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    model: str | None = None
    voice: str | None = None
    external_voice: dict[str, Any] | None = None
    language_hint: str | None = Field(default=None, max_length=16)
    initial_messages: list[CallMessage] | None = None
    join_timeout: Duration | None = None
    max_duration: Duration | None = None
    time_exceeded_message: str | None = None
    inactivity_messages: list[TimedMessage] | None = None
    selected_tools: list[SelectedTool] | None = None
    medium: CallMedium | None = None
    recording_enabled: bool | None = None
    first_speaker: Literal["FIRST_SPEAKER_UNSPECIFIED", "FIRST_SPEAKER_AGENT", "FIRST_SPEAKER_USER"] | None = None
    transcript_optional: bool | None = None
    initial_output_medium: MessageMedium | None = None
    vad_settings: VadSettings | None = None
    first_speaker_settings: FirstSpeakerSettings | None = None
    experimental_settings: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    initial_state: dict[str, Any] | None = None
    data_connection: dict[str, Any] | None = None
    callbacks: Callbacks | None = None
    voice_overrides: dict[str, Any] | None = None
    retention_policy: str | None = None
    shared_secrets: list[str] | None = None

    @field_validator("join_timeout", "max_duration")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        # "0s" is proto3's zero value, i.e. not set: the default applies.
        if value is not None and value < 0:
            raise ValueError("must not be negative: use a duration such as '30s' ('0s' means the default)")
        return value or None

    @field_validator("metadata")
    @classmethod
    def _no_reserved_keys(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value and any(key.startswith("ultravox.") for key in value):
            raise ValueError("metadata keys must not begin with 'ultravox.' (reserved)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> StartCallRequest:
        if self.voice is not None and self.external_voice is not None:
            raise ValueError("set at most one of voice and externalVoice")
        settings = self.first_speaker_settings
        if settings is not None and self.first_speaker in ("FIRST_SPEAKER_AGENT", "FIRST_SPEAKER_USER"):
            wanted = "FIRST_SPEAKER_AGENT" if settings.agent is not None else "FIRST_SPEAKER_USER"
            if wanted != self.first_speaker:
                raise ValueError("firstSpeaker and firstSpeakerSettings disagree")
        names = [name for t in self.selected_tools or [] if (name := t.model_name())]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"tool names must be unique in a call: {', '.join(map(str, duplicates))}")
        return self

    def effective_first_speaker_settings(self) -> FirstSpeakerSettings:
        """firstSpeakerSettings, else the deprecated firstSpeaker, else an agent greeting."""
        if self.first_speaker_settings is not None:
            return self.first_speaker_settings
        if self.first_speaker == "FIRST_SPEAKER_USER":
            return FirstSpeakerSettings(user=UserFirst())
        return FirstSpeakerSettings(agent=AgentGreeting())


# ------------------------------------------------------------ responses


class _Response(BaseModel):
    """Response models use camelCase and keep the document's rules for `null`.

    A field that is None goes out as `null` only if the official document lets it be null
    (`nullable` lists those fields); otherwise it is left out, as the document types it as
    an object, a string, ... Every field in the document's `required` list has a value or is
    nullable, so required keys are always present (PROTOCOL.md 8.9).
    """

    model_config = ConfigDict(alias_generator=lambda s: _camel(s), populate_by_name=True, extra="ignore")
    nullable: ClassVar[frozenset[str]] = frozenset()

    def wire(self) -> dict[str, Any]:
        unset = {name for name in type(self).model_fields if getattr(self, name) is None and name not in self.nullable}
        return self.model_dump(mode="json", by_alias=True, exclude=unset)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class Call(_Response):
    """The `Call` resource (1.6). Nested settings are kept as compact JSON dicts."""

    # `agent` is required and typed AgentBasic without `nullable`, yet the hosted API (a DRF
    # serializer) sends `"agent": null` for a call made without an agent; so does voxcall.
    nullable = frozenset({
        "client_version", "joined", "ended", "end_reason", "billed_duration", "billed_side_input_tokens",
        "billed_side_output_tokens", "join_url", "language_hint", "medium", "retention_policy", "system_prompt",
        "time_exceeded_message", "voice", "vad_settings", "short_summary", "summary", "agent", "agent_id",
        "experimental_settings", "request_context", "sip_details",
    })

    call_id: str
    client_version: str | None = None
    created: datetime
    joined: datetime | None = None
    ended: datetime | None = None
    end_reason: EndReason | None = None
    billed_duration: str | None = None
    billed_side_input_tokens: int | None = None
    billed_side_output_tokens: int | None = None
    billing_status: str = "BILLING_STATUS_PENDING"
    first_speaker: str = "FIRST_SPEAKER_AGENT"
    first_speaker_settings: dict[str, Any] = Field(default_factory=lambda: {"agent": {}})
    inactivity_messages: list[dict[str, Any]] = Field(default_factory=list)
    initial_output_medium: str = "MESSAGE_MEDIUM_VOICE"
    join_timeout: str = "30s"
    join_url: str | None = None
    language_hint: str | None = None
    max_duration: str = "3600s"
    medium: dict[str, Any] | None = None
    model: str = "ultravox-v0.7"
    recording_enabled: bool = False
    retention_policy: str | None = None
    system_prompt: str | None = None
    temperature: float = 0.0
    time_exceeded_message: str | None = None
    voice: str | None = None
    external_voice: dict[str, Any] | None = None
    voice_overrides: dict[str, Any] | None = None
    transcript_optional: bool = True
    vad_settings: dict[str, Any] | None = None
    short_summary: str | None = None
    summary: str | None = None
    agent: dict[str, Any] | None = None
    agent_id: str | None = None
    experimental_settings: Any = None
    metadata: dict[str, str] = Field(default_factory=dict)
    initial_state: dict[str, Any] = Field(default_factory=dict)
    request_context: Any = None
    data_connection_config: dict[str, Any] | None = None
    callbacks: dict[str, Any] | None = None
    sip_details: dict[str, Any] | None = None


class CallTool(_Response):
    nullable = frozenset({"tool_id"})
    call_tool_id: str
    tool_id: str | None = None
    name: str
    definition: dict[str, Any]


class ModelAlias(_Response):
    name: str


class Voice(_Response):
    nullable = frozenset({"description", "primary_language", "language_label", "provider"})
    voice_id: str
    name: str
    description: str | None = None
    primary_language: str | None = None
    language_label: str | None = None
    preview_url: str | None = None
    ownership: str = "public"
    billing_style: str = "VOICE_BILLING_STYLE_INCLUDED"
    provider: str | None = None
    definition: dict[str, Any] = Field(default_factory=dict)


class Account(_Response):
    nullable = frozenset({
        "subscription_tier", "subscription_cadence", "subscription_expiration", "subscription_scheduled_update",
        "subscription_renewal", "allowed_concurrent_calls", "allowed_voices", "allowed_corpora",
    })
    account_id: str
    name: str
    billing_url: str = ""
    free_time_used: str = "0s"
    free_time_remaining: str = "0s"
    has_active_subscription: bool = True
    subscription_tier: str | None = None
    subscription_cadence: str | None = None
    subscription_expiration: str | None = None
    subscription_scheduled_update: str | None = None
    subscription_renewal: str | None = None
    active_calls: int = 0
    allowed_concurrent_calls: int | None = None
    allowed_voices: int | None = None
    allowed_corpora: int | None = None


class Page(BaseModel, Generic[T]):
    """The cursor pagination envelope `{next, previous, results, total}`."""

    next: str | None = None
    previous: str | None = None
    results: list[T]
    total: int

    def wire(self) -> dict[str, Any]:
        return {
            "next": self.next,
            "previous": self.previous,
            "results": [r.wire() if hasattr(r, "wire") else r for r in self.results],
            "total": self.total,
        }


class ErrorBody(BaseModel):
    detail: Any


_STAGES = uuid.UUID("6f1c0d52-7b61-4f4e-9d35-0c7c8e0f4a11")


def first_stage_id(call_id: str) -> str:
    """The id of a call's one (first) stage: a UUID derived from the call id, stable across restarts."""
    return str(uuid.uuid5(_STAGES, str(call_id)))


class CallEvent(_Response):
    """One entry of `GET /api/calls/{id}/events` (warnings, latency reports, ...)."""

    nullable = frozenset({"extras", "wall_clock_timestamp"})

    call_id: str
    call_stage_id: str | None = None
    call_timestamp: str
    severity: Literal["debug", "info", "warning", "error"] = "info"
    type: str
    text: str
    extras: dict[str, Any] | None = None
    wall_clock_timestamp: str | None = None
