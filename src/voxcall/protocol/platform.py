"""REST shapes of the platform resources: agents, webhooks, API keys, tombstones, usage.

Shapes, enums and defaults follow ultravox-openapi.yaml (`Agent`,
`ultravox.v1.CallTemplate`, `ultravox.v1.StartAgentCallRequest`,
`ultravox.v1.ToolOverrides`, `Webhook`, `APIKey`, `APIKeyCreate`,
`CallTombstone`, `CallUsage`, `ConcurrencyResponse`). Request models are
`WireModel`s (camelCase or snake_case in, nulls as absent, unknown keys
ignored); responses are `Resource`s, which always carry every key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from voxcall.protocol.rest import (
    Callbacks,
    CallMedium,
    CallMessage,
    FirstSpeakerSettings,
    MessageMedium,
    SelectedTool,
    TimedMessage,
    VadSettings,
)
from voxcall.protocol.wire import Duration, WireModel

__all__ = [
    "EVENTS",
    "Agent",
    "AgentWrite",
    "ApiKey",
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyPatch",
    "CallStatistics",
    "CallTemplate",
    "CallTombstone",
    "CallUsage",
    "ConcurrencyBucket",
    "ConcurrencyResponse",
    "DailyCallStatistics",
    "HourlyCallStatistics",
    "Resource",
    "StartAgentCallRequest",
    "ToolOverrides",
    "Webhook",
    "WebhookFailure",
    "WebhookPatch",
    "WebhookWrite",
]

EVENTS = ("call.started", "call.joined", "call.ended", "call.billed")
"""`EventsEnum`: the webhook events."""
Event = Literal["call.started", "call.joined", "call.ended", "call.billed"]
RetentionPolicy = Literal["CALL_RETENTION_POLICY_UNSPECIFIED", "CALL_RETENTION_POLICY_RETAIN", "CALL_RETENTION_POLICY_AUTO_DELETE"]
AGENT_NAME_LENGTH = 64
WEBHOOK_URL_LENGTH = 200
WEBHOOK_SECRET_LENGTH = 120
API_KEY_NAME_LENGTH = 50


class Resource(BaseModel):
    """A response body: camelCase keys, every key present (`null` when unknown)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


# ------------------------------------------------------------------ agents


class CallTemplate(WireModel):
    """`ultravox.v1.CallTemplate` as accepted in a request (`created`/`updated` are set by the server).

    `languageHint` is not length-checked here: it may hold a `{{variable}}`; the
    rendered value is checked when a call is created.
    """

    name: str | None = None
    medium: CallMedium | None = None
    initial_output_medium: MessageMedium | None = None
    join_timeout: Duration | None = None
    max_duration: Duration | None = None
    vad_settings: VadSettings | None = None
    recording_enabled: bool | None = None
    first_speaker_settings: FirstSpeakerSettings | None = None
    system_prompt: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    model: str | None = None
    voice: str | None = None
    external_voice: dict[str, Any] | None = None
    voice_overrides: dict[str, Any] | None = None
    language_hint: str | None = None
    time_exceeded_message: str | None = None
    inactivity_messages: list[TimedMessage] | None = None
    selected_tools: list[SelectedTool] | None = None
    data_connection: dict[str, Any] | None = None
    context_schema: dict[str, Any] | None = None
    shared_secrets: list[str] | None = None
    retention_policy: RetentionPolicy | None = None

    def call_fields(self) -> dict[str, Any]:
        """The StartCallRequest part of the template (compact wire form)."""
        wire = self.wire()
        wire.pop("name", None)
        wire.pop("contextSchema", None)
        return wire


class AgentWrite(WireModel):
    """The body of POST /api/agents and PATCH /api/agents/{id} (`PatchedAgent`)."""

    name: str | None = Field(default=None, max_length=AGENT_NAME_LENGTH)
    call_template: CallTemplate | None = None


class AgentStatistics(Resource):
    calls: int = 0


class Agent(Resource):
    """The `Agent` resource."""

    agent_id: str
    published_revision_id: str | None = None
    name: str
    created: datetime
    call_template: dict[str, Any] | None = None
    statistics: AgentStatistics = Field(default_factory=AgentStatistics)


class ToolOverrides(WireModel):
    """`ultravox.v1.ToolOverrides`: removals (by model-facing name) are applied before additions."""

    remove: list[str] | None = None
    remove_all: bool | None = None
    add: list[SelectedTool] | None = None

    @model_validator(mode="after")
    def _remove_or_remove_all(self) -> ToolOverrides:
        if self.remove and self.remove_all:
            raise ValueError("set at most one of remove and removeAll")
        return self


class StartAgentCallRequest(WireModel):
    """`ultravox.v1.StartAgentCallRequest`, the body of POST /api/agents/{id}/calls."""

    template_context: dict[str, Any] | None = None
    initial_messages: list[CallMessage] | None = None
    metadata: dict[str, str] | None = None
    medium: CallMedium | None = None
    join_timeout: Duration | None = None
    max_duration: Duration | None = None
    recording_enabled: bool | None = None
    initial_output_medium: MessageMedium | None = None
    first_speaker_settings: FirstSpeakerSettings | None = None
    data_connection: dict[str, Any] | None = None
    experimental_settings: dict[str, Any] | None = None
    callbacks: Callbacks | None = None
    voice: str | None = None
    voice_overrides: dict[str, Any] | None = None
    tool_overrides: ToolOverrides | None = None
    retention_policy: RetentionPolicy | None = None
    shared_secrets: list[str] | None = None
    agent_id: str | None = None

    @model_validator(mode="after")
    def _overrides_need_voice(self) -> StartAgentCallRequest:
        if self.voice_overrides is not None and self.voice is None:
            raise ValueError("voiceOverrides is only valid together with voice in this request")
        return self


# ---------------------------------------------------------------- webhooks


def _check_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("url must be an absolute http:// or https:// URL, e.g. https://example.com/ultravox")
    return value


def _check_secrets(value: list[str] | None) -> list[str] | None:
    if value and any(len(s) > WEBHOOK_SECRET_LENGTH for s in value):
        raise ValueError(f"each secret is at most {WEBHOOK_SECRET_LENGTH} characters")
    return value


class WebhookWrite(WireModel):
    """The body of POST and PUT /api/webhooks[/{id}]: `url` and `events` are required."""

    url: str = Field(max_length=WEBHOOK_URL_LENGTH)
    events: list[Event]
    secrets: list[str] | None = None
    agent_id: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str | None:
        return _check_url(value)

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: list[str] | None) -> list[str] | None:
        return _check_secrets(value)


class WebhookPatch(WireModel):
    """The body of PATCH /api/webhooks/{id} (`PatchedWebhook`): every field optional."""

    url: str | None = Field(default=None, max_length=WEBHOOK_URL_LENGTH)
    events: list[Event] | None = None
    secrets: list[str] | None = None
    agent_id: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_url(value)

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: list[str] | None) -> list[str] | None:
        return _check_secrets(value)


class WebhookFailure(Resource):
    timestamp: datetime
    failure: str


class Webhook(Resource):
    """The `Webhook` resource; `status` is `normal` or `unhealthy`."""

    webhook_id: str
    agent_id: str | None = None
    created: datetime
    url: str
    secrets: list[str] = Field(default_factory=list)
    events: list[str] = Field(default_factory=list)
    status: Literal["normal", "unhealthy"] = "normal"
    last_status_change: datetime | None = None
    recent_failures: list[WebhookFailure] = Field(default_factory=list)


# ---------------------------------------------------------------- API keys


class ApiKeyCreate(WireModel):
    """The body of POST /api/api_keys (`APIKeyCreate`)."""

    name: str = Field(max_length=API_KEY_NAME_LENGTH)
    expiry_date: datetime | None = None

    @field_validator("expiry_date")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give expiryDate with a time zone, e.g. 2030-01-01T00:00:00Z")
        return value


class ApiKeyPatch(WireModel):
    """The body of PATCH/PUT /api/api_keys/{prefix}: only `revoked` is writable."""

    revoked: bool | None = None


class ApiKey(Resource):
    """The `APIKey` resource (never the key itself)."""

    prefix: str
    created: datetime
    creator: str | None = None
    name: str
    expiry_date: datetime | None = None
    revoked: bool = False


class ApiKeyCreated(ApiKey):
    """`APIKeyCreate` as answered once, at creation: the only time `secret` is shown."""

    secret: str


# ------------------------------------------------------- deleted calls, usage


class CallTombstone(Resource):
    """What is left of a deleted call under /api/deleted_calls."""

    call_id: str
    account_id: str
    created: datetime
    deletion_time: datetime
    joined: datetime | None = None
    ended: datetime | None = None
    max_duration: str = "3600s"
    end_reason: str | None = None
    recording_enabled: bool = False
    had_summary: bool = False


class CallStatistics(Resource):
    total_count: int = 0
    error_count: int = 0
    duration: str = "0s"
    joined_count: int = 0
    billed_minutes: float = 0.0


class DailyCallStatistics(CallStatistics):
    date: str


class HourlyCallStatistics(DailyCallStatistics):
    hour: int


class CallUsage(Resource):
    """`CallUsage`: all-time, per-day and per-hour (UTC) call statistics."""

    all_time: CallStatistics
    daily: list[DailyCallStatistics]
    hourly: list[HourlyCallStatistics]


class ConcurrencyBucket(Resource):
    timestamp: datetime
    max_total_calls: int
    max_joined_calls: int
    avg_total_calls: float
    avg_joined_calls: float


class ConcurrencyResponse(Resource):
    time_series: list[ConcurrencyBucket]
