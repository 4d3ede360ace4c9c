"""Carrier credentials (`/api/telephony_configs/{twilio|telnyx|plivo}`): request bodies and the resource shape.

ultravox-openapi.yaml `TwilioConfig`, `TelnyxConfig`, `PlivoConfig` (and their `Patched*`
forms): every config has `callCreationAllowedAgentIds` (at most 100 agent ids; not with
`callCreationAllowAllAgents`), `callCreationAllowAllAgents` (default false) and
`requestContextMapping` (dot-separated request field -> dot-separated templateContext
field), plus the carrier's own fields. Secrets (`authToken`, `apiKey`, `publicKey`) are
write-only: the resource shows only `{"prefix": ...}` of each (`authTokenPrefix`, ...).
Read-only fields sent in a body are ignored, like every unknown field (PROTOCOL.md 1.2).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any, Literal

from pydantic import Field, field_validator

from voxcall.protocol.wire import WireModel

__all__ = [
    "CARRIERS",
    "IDENTITY_FIELDS",
    "REQUIRED_FIELDS",
    "SECRET_FIELDS",
    "Carrier",
    "ConfigBody",
    "OutgoingParams",
    "config_resource",
    "map_context",
    "merged_config",
    "secret_prefix",
]

Carrier = Literal["twilio", "telnyx", "plivo"]
CARRIERS: tuple[Carrier, ...] = ("twilio", "telnyx", "plivo")
SECRET_FIELDS: dict[str, tuple[str, ...]] = {"twilio": ("authToken",), "telnyx": ("apiKey", "publicKey"), "plivo": ("authToken",)}
"""Write-only fields per carrier (wire names); each shows as `<name>Prefix`."""
IDENTITY_FIELDS: dict[str, tuple[str, ...]] = {"twilio": ("accountSid",), "telnyx": ("accountSid", "applicationSid"),
                                               "plivo": ("authId",)}
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {c: IDENTITY_FIELDS[c] + SECRET_FIELDS[c] for c in CARRIERS}
"""What a POST must carry (the OpenAPI `required` list, less the read-only prefixes)."""
SHARED_FIELDS = ("callCreationAllowedAgentIds", "callCreationAllowAllAgents", "requestContextMapping")
MAX_AGENTS = 100
PREFIX_LENGTH = 4


def _path(value: str, what: str) -> str:
    parts = value.split(".")
    if not value or any(not part.strip() for part in parts):
        raise ValueError(f"{what} {value!r} must be a dot-separated path of non-empty names, e.g. 'user.phone_number'")
    return value


class ConfigBody(WireModel):
    """The body of POST or PATCH on one carrier's config; which fields apply depends on the carrier."""

    call_creation_allowed_agent_ids: list[str] | None = Field(default=None, max_length=MAX_AGENTS)
    call_creation_allow_all_agents: bool | None = None
    request_context_mapping: dict[str, str] | None = None
    account_sid: str | None = Field(default=None, min_length=1, max_length=200)
    auth_token: str | None = Field(default=None, min_length=1, max_length=500)
    api_key: str | None = Field(default=None, min_length=1, max_length=500)
    public_key: str | None = Field(default=None, min_length=1, max_length=500)
    application_sid: str | None = Field(default=None, min_length=1, max_length=40)
    auth_id: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("call_creation_allowed_agent_ids")
    @classmethod
    def _agent_ids(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                uuid.UUID(item)
            except (ValueError, AttributeError, TypeError):
                raise ValueError(f"{item!r} is not an agent id (a UUID)") from None
        return list(dict.fromkeys(str(uuid.UUID(item)) for item in value))

    @field_validator("request_context_mapping")
    @classmethod
    def _mapping(cls, value: dict[str, str]) -> dict[str, str]:
        for source, target in value.items():
            _path(source, "request field")
            _path(target, "context field")
        return value

    @field_validator("public_key")
    @classmethod
    def _public_key(cls, value: str) -> str:
        """Telnyx signs with Ed25519: the portal's public key is the 32-byte key in base64."""
        try:
            raw = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ValueError("publicKey must be your Telnyx public key as shown in the portal: "
                             "a base64 Ed25519 key of 32 bytes")
        return value.strip()

    def given(self, carrier: str) -> dict[str, Any]:
        """The fields this body sets that belong to `carrier`'s config, by wire name."""
        allowed = set(SHARED_FIELDS) | set(REQUIRED_FIELDS[carrier])
        return {k: v for k, v in self.wire().items() if k in allowed}


def merged_config(carrier: str, current: dict[str, Any], changes: dict[str, Any], *, create: bool) -> dict[str, Any]:
    """The full config after a POST (`create`) or PATCH: defaults filled in, rules checked.

    Raises:
        ValueError: a required field is missing, or agent ids are listed while all agents are allowed;
            the message names the field (the caller turns it into a 422).
    """
    config = {"callCreationAllowedAgentIds": [], "callCreationAllowAllAgents": False, "requestContextMapping": {},
              **current, **changes}
    if create:
        missing = [name for name in REQUIRED_FIELDS[carrier] if not config.get(name)]
        if missing:
            raise ValueError(f"{', '.join(missing)}: required for a {carrier} config")
    if config["callCreationAllowAllAgents"] and config["callCreationAllowedAgentIds"]:
        raise ValueError("callCreationAllowedAgentIds: may not be set when callCreationAllowAllAgents is true "
                         "(send an empty list, or set callCreationAllowAllAgents to false)")
    return config


def secret_prefix(secret: str) -> dict[str, str]:
    """A write-only secret as the API shows it (`KeyPrefix`): its first few characters only."""
    return {"prefix": secret[:PREFIX_LENGTH]}


def config_resource(carrier: str, config: dict[str, Any]) -> dict[str, Any]:
    """The `TwilioConfig` / `TelnyxConfig` / `PlivoConfig` resource of a stored config: secrets as prefixes."""
    shown: dict[str, Any] = {name: config[name] for name in SHARED_FIELDS}
    for name in IDENTITY_FIELDS[carrier]:
        shown[name] = config.get(name, "")
    for name in SECRET_FIELDS[carrier]:
        shown[f"{name}Prefix"] = secret_prefix(config.get(name, ""))
    return shown


class OutgoingParams(WireModel):
    """`medium.<carrier>.outgoing` (`TwilioMedium_OutgoingRequestParams` and its Telnyx and Plivo twins)."""

    to: str = Field(min_length=1, max_length=500)
    from_: str = Field(alias="from", min_length=1, max_length=200)
    additional_params: dict[str, Any] | None = None


_MISSING = object()


def _lookup(fields: dict[str, Any], path: str) -> Any:
    """A request field by its dot-separated name: the literal key first (form fields are flat), then nested objects."""
    if path in fields:
        return fields[path]
    value: Any = fields
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def map_context(fields: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """`requestContextMapping` applied to a carrier's request: the templateContext of the incoming call.

    `{"From": "user.phone_number"}` turns `From=+15551234567` into
    `{"user": {"phone_number": "+15551234567"}}`. Fields the request lacks are left out.
    """
    context: dict[str, Any] = {}
    for source, target in mapping.items():
        value = _lookup(fields, source)
        if value is _MISSING:
            continue
        *parents, leaf = target.split(".")
        node = context
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[leaf] = value
    return context
