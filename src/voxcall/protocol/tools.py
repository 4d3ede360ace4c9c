"""Tool shapes of the Ultravox API (ultravox-openapi.yaml `ultravox.v1.BaseToolDefinition`,
`SelectedTool`, `Tool`, `ToolHistory`; PROTOCOL.md 1.9).

Enums are checked (an unknown `location` or `knownValue` is a 422 that names it), parameter
names are unique per tool, and each security requirement sets exactly one kind.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from voxcall.protocol.wire import Duration, WireModel

__all__ = [
    "DEFAULT_TOOL_TIMEOUT",
    "KNOWN_PARAMS",
    "MAX_TOOL_TIMEOUT",
    "TOOL_NAME_PATTERN",
    "AutomaticParameter",
    "BaseToolDefinition",
    "DynamicParameter",
    "HttpTool",
    "SecurityOptions",
    "SecurityRequirement",
    "SecurityRequirements",
    "SelectedTool",
    "StaticParameter",
    "StaticResponse",
    "ToolBody",
    "ToolRequirements",
    "ToolResource",
    "ToolTestRequest",
    "is_tool_name",
]

DEFAULT_TOOL_TIMEOUT = 2.5
MAX_TOOL_TIMEOUT = 40.0
TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"
_TOOL_NAME = re.compile(TOOL_NAME_PATTERN)

ParameterLocation = Literal[
    "PARAMETER_LOCATION_UNSPECIFIED",
    "PARAMETER_LOCATION_QUERY",
    "PARAMETER_LOCATION_PATH",
    "PARAMETER_LOCATION_HEADER",
    "PARAMETER_LOCATION_BODY",
]
KnownParam = Literal[
    "KNOWN_PARAM_UNSPECIFIED",
    "KNOWN_PARAM_CALL_ID",
    "KNOWN_PARAM_CONVERSATION_HISTORY",
    "KNOWN_PARAM_OUTPUT_SAMPLE_RATE",
    "KNOWN_PARAM_CALL_STATE",
    "KNOWN_PARAM_CALL_STAGE_ID",
    "KNOWN_PARAM_THREAD_ID",
    "KNOWN_PARAM_THREAD_STATES",
    "KNOWN_PARAM_CALL_METADATA",
]
KNOWN_PARAMS: tuple[str, ...] = KnownParam.__args__  # type: ignore[attr-defined]
AgentReactionEnum = Literal[
    "AGENT_REACTION_UNSPECIFIED", "AGENT_REACTION_SPEAKS", "AGENT_REACTION_LISTENS", "AGENT_REACTION_SPEAKS_ONCE"
]


def is_tool_name(name: str) -> bool:
    """True when `name` may be shown to the model (`^[a-zA-Z0-9_-]{1,64}$`)."""
    return bool(_TOOL_NAME.fullmatch(name))


class DynamicParameter(WireModel):
    name: str = Field(min_length=1)
    location: ParameterLocation = "PARAMETER_LOCATION_BODY"
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    required: bool = False


class StaticParameter(WireModel):
    name: str = Field(min_length=1)
    location: ParameterLocation = "PARAMETER_LOCATION_BODY"
    value: Any = None


class AutomaticParameter(WireModel):
    name: str = Field(min_length=1)
    location: ParameterLocation = "PARAMETER_LOCATION_BODY"
    known_value: KnownParam = Field(default="KNOWN_PARAM_UNSPECIFIED", validate_default=True)

    @field_validator("known_value")
    @classmethod
    def _specified(cls, value: str) -> str:
        if value == "KNOWN_PARAM_UNSPECIFIED":
            raise ValueError("set knownValue to one of " + ", ".join(KNOWN_PARAMS[1:]))
        return value


class HttpTool(WireModel):
    base_url_pattern: str = Field(min_length=1)
    http_method: str = "GET"

    @field_validator("base_url_pattern")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.lower().startswith(("http://", "https://")):
            raise ValueError("baseUrlPattern must be an http:// or https:// URL")
        return value

    @field_validator("http_method")
    @classmethod
    def _method(cls, value: str) -> str:
        method = value.upper()
        if method not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
            raise ValueError(f"httpMethod {value!r} is not an HTTP method (GET, POST, PUT, PATCH, DELETE, ...)")
        return method


class StaticResponse(WireModel):
    response_text: str


class _Named(WireModel):
    name: str = Field(min_length=1)


class SecurityRequirement(WireModel):
    """Exactly one of queryApiKey, headerApiKey and httpAuth."""

    query_api_key: _Named | None = None
    header_api_key: _Named | None = None
    http_auth: dict[str, str] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecurityRequirement:
        given = [k for k in ("query_api_key", "header_api_key", "http_auth") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("set exactly one of queryApiKey, headerApiKey and httpAuth")
        if self.http_auth is not None and not self.http_auth.get("scheme"):
            raise ValueError("httpAuth needs a scheme, e.g. {\"scheme\": \"Bearer\"}")
        return self


class SecurityRequirements(WireModel):
    requirements: dict[str, SecurityRequirement] = Field(default_factory=dict)
    ultravox_call_token_requirement: dict[str, Any] | None = None


class SecurityOptions(WireModel):
    options: list[SecurityRequirements] = Field(default_factory=list)


class ToolRequirements(WireModel):
    http_security_options: SecurityOptions | None = None
    required_parameter_overrides: list[str] = Field(default_factory=list)


class BaseToolDefinition(WireModel):
    model_tool_name: str | None = Field(default=None, pattern=TOOL_NAME_PATTERN)
    description: str = ""
    dynamic_parameters: list[DynamicParameter] = Field(default_factory=list)
    static_parameters: list[StaticParameter] = Field(default_factory=list)
    automatic_parameters: list[AutomaticParameter] = Field(default_factory=list)
    requirements: ToolRequirements | None = None
    timeout: Duration | None = None
    precomputable: bool | None = None
    http: HttpTool | None = None
    client: dict[str, Any] | None = None
    data_connection: dict[str, Any] | None = None
    default_reaction: AgentReactionEnum | None = None
    static_response: StaticResponse | None = None

    @field_validator("timeout")
    @classmethod
    def _timeout_in_range(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value <= MAX_TOOL_TIMEOUT:
            raise ValueError(f"timeout must be above 0s and at most {MAX_TOOL_TIMEOUT:g}s")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> BaseToolDefinition:
        kinds = [k for k in ("http", "client", "data_connection") if getattr(self, k) is not None]
        if len(kinds) > 1:
            raise ValueError("set exactly one of http, client and dataConnection")
        params: list[DynamicParameter | StaticParameter | AutomaticParameter] = [
            *self.dynamic_parameters, *self.static_parameters, *self.automatic_parameters]
        names = [p.name for p in params]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"parameter names must be unique in a tool: {', '.join(duplicates)}")
        if self.http is None:
            bad = [p.name for p in params if p.location not in ("PARAMETER_LOCATION_BODY", "PARAMETER_LOCATION_UNSPECIFIED")]
            if bad:
                raise ValueError(f"client and data-connection tools take body parameters only; not allowed: {', '.join(bad)}")
            return self
        placeholders = set(re.findall(r"\{([^{}]+)\}", self.http.base_url_pattern))
        path = {p.name for p in params if p.location == "PARAMETER_LOCATION_PATH"}
        if placeholders - path:
            raise ValueError("baseUrlPattern placeholders without a PARAMETER_LOCATION_PATH parameter: "
                             + ", ".join(sorted(placeholders - path)))
        if path - placeholders:
            raise ValueError("path parameters without a {placeholder} in baseUrlPattern: " + ", ".join(sorted(path - placeholders)))
        return self

    def implemented(self) -> bool:
        """True when the tool can do something: an implementation or a static response."""
        return any(getattr(self, k) is not None for k in ("http", "client", "data_connection", "static_response"))


class SelectedTool(WireModel):
    tool_id: str | None = None
    tool_name: str | None = None
    temporary_tool: BaseToolDefinition | None = None
    name_override: str | None = Field(default=None, pattern=TOOL_NAME_PATTERN)
    description_override: str | None = None
    auth_tokens: dict[str, str] | None = None
    parameter_overrides: dict[str, Any] | None = None
    transition_id: str | None = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> SelectedTool:
        given = [k for k in ("tool_id", "tool_name", "temporary_tool") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("set exactly one of toolId, toolName and temporaryTool")
        return self

    def model_name(self) -> str | None:
        """The name the model sees, when known without the store: nameOverride, else a temporary
        tool's modelToolName (a durable tool's name comes from its stored definition)."""
        if self.name_override:
            return self.name_override
        return self.temporary_tool.model_tool_name if self.temporary_tool else None


class ToolBody(WireModel):
    """The body of POST and PUT /api/tools: `{name, definition}` (read-only fields are ignored)."""

    name: str = Field(min_length=1, max_length=40)
    definition: BaseToolDefinition

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if value != value.strip() or not value.isprintable():
            raise ValueError("name must be printable, without leading or trailing spaces")
        return value

    @model_validator(mode="after")
    def _usable(self) -> ToolBody:
        if not self.definition.implemented():
            raise ValueError("definition needs one of http, client, dataConnection or staticResponse")
        if self.definition.model_tool_name is None and not is_tool_name(self.name):
            raise ValueError("definition.modelToolName is missing, and the name cannot stand in for it "
                             "(it must match ^[a-zA-Z0-9_-]{1,64}$)")
        return self


class ToolTestRequest(WireModel):
    """The body of POST /api/tools/{id}/test (the official document leaves it open)."""

    parameters: dict[str, Any] = Field(default_factory=dict)
    auth_tokens: dict[str, str] | None = None
    parameter_overrides: dict[str, Any] | None = None
    call_state: dict[str, Any] | None = None


class ToolResource(BaseModel):
    """The `Tool` resource: every required key, camelCase."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    tool_id: str
    name: str
    created: datetime
    definition: dict[str, Any]
    ownership: Literal["private", "public"]

    def wire(self) -> dict[str, Any]:
        body = self.model_dump(mode="json", by_alias=True)
        body["created"] = self.created.isoformat().replace("+00:00", "Z")
        return body
