"""A call's tools: `selectedTools` → stored `CallTool` entries → the engine's `ToolDef`s.

PROTOCOL.md 1.9.3: each entry names a durable tool (`toolId`, or `toolName`, where an
account's own tool shadows a built-in) or carries a `temporaryTool`. `nameOverride` and
`descriptionOverride` change what the model sees; `parameterOverrides` turn parameters
into static ones the model no longer sees; `authTokens` satisfy the tool's
`requirements.httpSecurityOptions`. Model-facing names must match `^[a-zA-Z0-9_-]{1,64}$`
and be unique in the call; any problem is a 422 that names the entry.

A stored entry keeps the credentials apart, under `internal` (never shown by the API:
`public_call_tool`), as the hosted API leaves secrets out of `CallTool`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from voxcall.engine.spec import HttpSpec, ToolDef, ToolKind, ToolParam
from voxcall.errors import InvalidRequest, NotFound
from voxcall.protocol.rest import StartCallRequest
from voxcall.protocol.tools import (
    DEFAULT_TOOL_TIMEOUT,
    BaseToolDefinition,
    SecurityRequirements,
    SelectedTool,
    is_tool_name,
)
from voxcall.protocol.wire import format_duration
from voxcall.providers.base import ToolSpec
from voxcall.store.tools import PublicTool, ToolRecord, ToolStore

__all__ = [
    "PUBLIC_TOOLS",
    "build_call_tools",
    "durable_uses",
    "public_call_tool",
    "resolve_call_tools",
    "tool_def",
]

PUBLIC_TOOLS = (
    PublicTool(
        tool_id=str(uuid.uuid5(uuid.NAMESPACE_URL, "voxcall:tool:hangUp")),
        name="hangUp",
        definition={"modelToolName": "hangUp", "description": "End the call when the conversation is over.",
                    "timeout": "2.5s", "defaultReaction": "AGENT_REACTION_LISTENS"},
    ),
    PublicTool(  # out-of-band DTMF where the call's medium has it (Plivo); elsewhere it says it cannot
        tool_id=str(uuid.uuid5(uuid.NAMESPACE_URL, "voxcall:tool:playDtmfSounds")),
        name="playDtmfSounds",
        definition={"modelToolName": "playDtmfSounds", "timeout": "2.5s",
                    "description": "Press keys on the phone keypad (DTMF tones), for example to navigate a phone menu.",
                    "dynamicParameters": [{"name": "digits", "location": "PARAMETER_LOCATION_BODY", "required": True,
                                           "schema": {"type": "string",
                                                      "description": "The keys to press, in order: 0-9, *, # or A-D."}}]},
    ),
)
BUILT_INS = frozenset(t.name for t in PUBLIC_TOOLS)
_REACTIONS = {"AGENT_REACTION_LISTENS": "listens", "AGENT_REACTION_SPEAKS_ONCE": "speaks-once"}
_LOCATIONS = {"PARAMETER_LOCATION_QUERY": "query", "PARAMETER_LOCATION_PATH": "path", "PARAMETER_LOCATION_HEADER": "header"}


def _invalid(index: int, message: str) -> InvalidRequest:
    return InvalidRequest([{"loc": ["body", "selectedTools", index], "msg": message, "type": "value_error"}])


async def resolve_call_tools(request: StartCallRequest, tools: ToolStore, account_id: str) -> list[dict[str, Any]]:
    """The call's tools, with durable ones looked up among the account's and the public tools."""
    durable: dict[int, ToolRecord] = {}
    for index, selected in enumerate(request.selected_tools or []):
        try:
            if selected.tool_id is not None:
                durable[index] = await tools.get(selected.tool_id, account_id)
            elif selected.tool_name is not None:
                durable[index] = await tools.by_name(selected.tool_name, account_id)
        except NotFound:
            ref = f"toolId {selected.tool_id!r}" if selected.tool_id is not None else f"toolName {selected.tool_name!r}"
            raise _invalid(index, f"unknown tool: no tool of yours and no built-in tool has {ref} "
                                  "(GET /api/tools lists them)") from None
    return build_call_tools(request, durable)


def build_call_tools(request: StartCallRequest, durable: Mapping[int, ToolRecord] | None = None) -> list[dict[str, Any]]:
    """`CallTool` entries (wire form, plus `internal`) for `selectedTools`.

    `durable` holds the looked-up tool of each entry that names one, by its index; without
    it only temporary tools and the built-ins (by toolName) can be resolved.
    """
    durable = dict(durable or {})
    for index, selected in enumerate(request.selected_tools or []):
        if index not in durable and selected.temporary_tool is None:
            durable[index] = _builtin(index, selected)
    entries = [_entry(index, selected, durable.get(index)) for index, selected in enumerate(request.selected_tools or [])]
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if entry["name"] in seen:
            raise _invalid(index, f"tool name {entry['name']!r} is already used by selectedTools[{seen[entry['name']]}]; "
                                  "model-facing names must be unique in a call (use nameOverride)")
        seen[entry["name"]] = index
    return entries


def durable_uses(entries: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """Durable tool id → the model-facing names it has in the call (for the tool history)."""
    uses: dict[str, list[str]] = {}
    for entry in entries:
        if entry.get("toolId"):
            uses.setdefault(entry["toolId"], []).append(entry["name"])
    return uses


def public_call_tool(entry: dict[str, Any]) -> dict[str, Any]:
    """The `CallTool` resource of a stored entry: credentials and internal markers left out."""
    definition = {k: v for k, v in entry["definition"].items() if k != "builtIn"}
    return {"callToolId": entry["callToolId"], "toolId": entry.get("toolId"), "name": entry["name"], "definition": definition}


def _builtin(index: int, selected: SelectedTool) -> ToolRecord:
    for tool in PUBLIC_TOOLS:
        if selected.tool_name == tool.name or selected.tool_id == tool.tool_id:
            return ToolRecord(tool.tool_id, tool.name, datetime(2024, 1, 1, tzinfo=UTC), tool.definition, "public")
    ref = selected.tool_name or selected.tool_id
    raise _invalid(index, f"unknown tool {ref!r}")


def _entry(index: int, selected: SelectedTool, record: ToolRecord | None) -> dict[str, Any]:
    if record is not None:
        definition = BaseToolDefinition.model_validate(record.definition)
    else:
        assert selected.temporary_tool is not None
        definition = selected.temporary_tool
    name = selected.name_override or definition.model_tool_name or (record.name if record else None)
    if not name:
        raise _invalid(index, "a tool needs a modelToolName (or a nameOverride)")
    if not is_tool_name(name):
        raise _invalid(index, f"tool name {name!r} must match ^[a-zA-Z0-9_-]{{1,64}}$ (set nameOverride)")
    overrides = selected.parameter_overrides or {}
    required = definition.requirements.required_parameter_overrides if definition.requirements else []
    missing = [p for p in required if p not in overrides]
    if missing:
        raise _invalid(index, f"tool {name!r} requires parameterOverrides for: {', '.join(missing)}")
    auth = _auth(index, name, definition, selected.auth_tokens or {})
    body = _call_tool_definition(definition, selected, auth)
    entry: dict[str, Any] = {"callToolId": str(uuid.uuid4()), "toolId": record.tool_id if record else None,
                             "name": name, "definition": body}
    internal: dict[str, Any] = {}
    if record is not None and record.ownership == "public" and record.name in BUILT_INS:
        internal["builtIn"] = record.name
    if auth["headers"] or auth["query"]:
        internal["auth"] = auth
    if internal:
        entry["internal"] = internal
    return entry


def _call_tool_definition(definition: BaseToolDefinition, selected: SelectedTool, auth: dict[str, Any]) -> dict[str, Any]:
    """The `ultravox.v1.CallTool` definition: overrides applied, requirements resolved, no secrets."""
    body = definition.wire()
    body.pop("modelToolName", None)
    body.pop("requirements", None)
    if selected.description_override:
        body["description"] = selected.description_override
    overrides = dict(selected.parameter_overrides or {})
    dynamic, statics = [], []
    for param in body.get("dynamicParameters", []):
        if param["name"] in overrides:
            statics.append({"name": param["name"], "location": param.get("location", "PARAMETER_LOCATION_BODY"),
                            "value": overrides.pop(param["name"])})
        else:
            dynamic.append(param)
    for param in body.get("staticParameters", []):
        statics.append({**param, "value": overrides.pop(param["name"])} if param["name"] in overrides else param)
    statics += [{"name": k, "location": "PARAMETER_LOCATION_BODY", "value": v} for k, v in overrides.items()]
    body["dynamicParameters"], body["staticParameters"] = dynamic, statics
    body.setdefault("automaticParameters", [])
    body.setdefault("timeout", format_duration(definition.timeout or DEFAULT_TOOL_TIMEOUT))
    if "http" in body:
        body["http"] = {**body["http"], "authHeaders": sorted(auth["headers"]), "authQueryParams": sorted(auth["query"]),
                        "callTokenScopes": []}
    return body


def _auth(index: int, name: str, definition: BaseToolDefinition, tokens: Mapping[str, str]) -> dict[str, Any]:
    """Headers and query parameters that satisfy the tool's httpSecurityOptions with `tokens`.

    The first option all of whose requirements have a token wins, except that a non-empty
    option beats an empty one (PROTOCOL.md 1.9.2).
    """
    auth: dict[str, Any] = {"headers": {}, "query": {}}
    options = definition.requirements.http_security_options if definition.requirements else None
    if options is None or not options.options:
        return auth
    usable = [o for o in options.options if all(key in tokens for key in o.requirements)]
    chosen = next((o for o in usable if o.requirements), usable[0] if usable else None)
    if chosen is None:
        wanted = " or ".join("[" + ", ".join(sorted(o.requirements)) + "]" for o in options.options)
        raise _invalid(index, f"tool {name!r} needs authTokens for {wanted}")
    _apply(chosen, tokens, auth)
    return auth


def _apply(option: SecurityRequirements, tokens: Mapping[str, str], auth: dict[str, Any]) -> None:
    for key, requirement in option.requirements.items():
        token = tokens[key]
        if requirement.header_api_key is not None:
            auth["headers"][requirement.header_api_key.name] = token
        elif requirement.query_api_key is not None:
            auth["query"][requirement.query_api_key.name] = token
        elif requirement.http_auth is not None:
            auth["headers"]["Authorization"] = f"{requirement.http_auth['scheme']} {token}"


def tool_def(entry: dict[str, Any]) -> ToolDef:
    """The engine's view of a stored `CallTool` entry."""
    body = entry["definition"]
    internal = entry.get("internal") or {}
    definition = BaseToolDefinition.model_validate({k: v for k, v in body.items() if k != "builtIn"})
    params = [ToolParam(p.name, _LOCATIONS.get(p.location, "body"), "dynamic", required=p.required)  # type: ignore[arg-type]
              for p in definition.dynamic_parameters]
    params += [ToolParam(p.name, _LOCATIONS.get(p.location, "body"), "static", value=p.value)  # type: ignore[arg-type]
               for p in definition.static_parameters]
    params += [ToolParam(p.name, _LOCATIONS.get(p.location, "body"), "automatic", known=p.known_value)  # type: ignore[arg-type]
               for p in definition.automatic_parameters]
    auth = internal.get("auth") or {}
    http = definition.http
    return ToolDef(
        spec=ToolSpec(entry["name"], definition.description, _model_schema(definition)),
        kind=_kind(definition, internal.get("builtIn") or body.get("builtIn")),
        timeout=definition.timeout or DEFAULT_TOOL_TIMEOUT,
        parameters=tuple(params),
        default_reaction=_REACTIONS.get(definition.default_reaction or "", "speaks"),  # type: ignore[arg-type]
        static_response=definition.static_response.response_text if definition.static_response else None,
        http=HttpSpec(http.base_url_pattern, http.http_method, tuple((auth.get("headers") or {}).items()),
                      tuple((auth.get("query") or {}).items())) if http else None,
        precomputable=bool(definition.precomputable),
    )


def _kind(definition: BaseToolDefinition, built_in: str | None) -> ToolKind:
    if built_in == "hangUp":
        return "hang_up"
    if built_in == "playDtmfSounds":
        return "play_dtmf"
    if definition.http is not None:
        return "http"
    if definition.data_connection is not None:
        return "data_connection"
    if definition.client is None and definition.static_response is not None:
        return "static"
    return "client"


def _model_schema(definition: BaseToolDefinition) -> dict[str, Any]:
    """The JSON Schema of the arguments the model fills in (dynamic parameters only)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in definition.dynamic_parameters:
        properties[param.name] = {k: v for k, v in param.schema_.items() if k != "title"} or {"type": "string"}
        if param.required:
            required.append(param.name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema
