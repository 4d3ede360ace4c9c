"""From an agent's call template and a StartAgentCallRequest to the StartCallRequest of a new call.

The template fields that are filled from `templateContext` (ultravox-openapi.yaml
`ultravox.v1.CallTemplate.contextSchema`): systemPrompt, languageHint,
timeExceededMessage, inactivityMessages.message, and in each tool its
description, its static parameters' values and its auth values (here: the
selected tool's `authTokens` values). With a `contextSchema` the context is
validated against it and variables it leaves out render empty; without one,
every variable the templates use must be given (the documented default schema
is made of exactly those variables).

Then the request's overrides are laid over the template, and `toolOverrides`
applied to the template's tools: `removeAll` or `remove` (by model-facing name:
nameOverride, else modelToolName, else toolName) first, then `add`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonschema_rs

from voxcall.errors import InvalidRequest
from voxcall.protocol.platform import CallTemplate, StartAgentCallRequest, ToolOverrides
from voxcall.protocol.rest import SelectedTool, StartCallRequest
from voxcall.protocol.templates import TemplateError, render, render_value, variables
from voxcall.server.bodies import parse_body

__all__ = ["agent_call_request", "checked_template"]

ToolHook = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
_TEXT_FIELDS = ("systemPrompt", "languageHint", "timeExceededMessage")
_NOT_CALL_FIELDS = ("name", "contextSchema", "created", "updated")
_REQUEST_ONLY = ("templateContext", "toolOverrides", "agentId")


def _no_remote_refs(uri: str) -> Any:
    raise ValueError(f"contextSchema may not refer to other documents ({uri})")


def _schema_validator(schema: dict[str, Any]) -> Any:
    try:
        return jsonschema_rs.validator_for(schema, retriever=_no_remote_refs)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
        raise InvalidRequest([{"loc": ["body", "callTemplate", "contextSchema"], "type": "value_error",
                               "msg": f"not a valid JSON schema: {str(exc).splitlines()[0]}"}]) from exc


def _template_texts(template: dict[str, Any]) -> list[tuple[list[str | int], Any]]:
    """(location, value) of every templated field of a stored template."""
    found: list[tuple[list[str | int], Any]] = [([f], template[f]) for f in _TEXT_FIELDS if f in template]
    for i, message in enumerate(template.get("inactivityMessages") or []):
        found.append((["inactivityMessages", i, "message"], message.get("message", "")))
    for i, tool in enumerate(template.get("selectedTools") or []):
        found += [(["selectedTools", i, "descriptionOverride"], tool["descriptionOverride"])] if "descriptionOverride" in tool else []
        found += [(["selectedTools", i, "authTokens", k], v) for k, v in (tool.get("authTokens") or {}).items()]
        found += [(["selectedTools", i, "parameterOverrides", k], v) for k, v in (tool.get("parameterOverrides") or {}).items()]
        temporary = tool.get("temporaryTool") or {}
        found += [(["selectedTools", i, "temporaryTool", "description"], temporary.get("description", ""))]
        found += [(["selectedTools", i, "temporaryTool", "staticParameters", j, "value"], p.get("value"))
                  for j, p in enumerate(temporary.get("staticParameters") or [])]
    return found


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def checked_template(raw: Any) -> dict[str, Any]:
    """Validate a `callTemplate` from a request body; returns its stored (compact wire) form.

    Raises:
        InvalidRequest: a bad field, a template that cannot be parsed, settings that
            contradict each other, or a contextSchema that is not a JSON schema.
    """
    if not isinstance(raw, dict):
        raise InvalidRequest([{"loc": ["body", "callTemplate"], "type": "dict_type", "msg": "callTemplate must be an object"}])
    template = parse_body(CallTemplate, raw, "body", "callTemplate")
    stored = template.wire()
    for loc, value in _template_texts(stored):
        for text in _strings(value):
            try:
                variables(text)
            except TemplateError as exc:
                raise InvalidRequest([{"loc": ["body", "callTemplate", *loc], "type": "value_error", "msg": str(exc)}]) from exc
    calls = {k: v for k, v in template.call_fields().items() if k != "languageHint"}  # checked once rendered
    parse_body(StartCallRequest, calls, "body", "callTemplate")
    _unique_tool_references(stored.get("selectedTools") or [])
    if template.context_schema is not None:
        _schema_validator(template.context_schema)
    return stored


def _unique_tool_references(tools: list[dict[str, Any]]) -> None:
    """The same durable tool chosen twice (and not renamed) would clash in every call of the agent."""
    seen: set[str] = set()
    for tool in tools:
        key = tool.get("nameOverride") or tool.get("toolName") or tool.get("toolId")
        if key and key in seen and not tool.get("temporaryTool"):
            raise InvalidRequest([{"loc": ["body", "callTemplate"], "type": "value_error",
                                   "msg": f"selectedTools chooses {key!r} twice: tool names must be unique in a call"}])
        if key:
            seen.add(key)


class _Filler:
    """Renders template strings from one context, collecting the variables it lacks."""

    def __init__(self, template: dict[str, Any], context: dict[str, Any]) -> None:
        self.context = context
        self.strict = template.get("contextSchema") is None
        self.missing: list[str] = []
        if not self.strict:
            errors = list(_schema_validator(template["contextSchema"]).iter_errors(context))
            if errors:
                raise InvalidRequest([{"loc": ["body", "templateContext", *e.instance_path], "type": "value_error",
                                       "msg": f"does not match the agent's contextSchema: {e.message}"} for e in errors])

    def text(self, value: str) -> str:
        try:
            return render(value, self.context, self.missing)
        except TemplateError as exc:
            raise InvalidRequest(f"A template of this agent's call cannot be filled: {exc}") from exc

    def value(self, value: Any) -> Any:
        try:
            return render_value(value, self.context, self.missing)
        except TemplateError as exc:
            raise InvalidRequest(f"A template of this agent's call cannot be filled: {exc}") from exc

    def check(self) -> None:
        if self.strict and self.missing:
            raise InvalidRequest([{"loc": ["body", "templateContext"], "type": "missing",
                                   "msg": "templateContext lacks the variable(s) the agent's templates use: " + ", ".join(self.missing)}])

    def tools(self, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The CallTools with their description and static parameter values filled in."""
        filled = []
        for tool in tools:
            definition = dict(tool["definition"])
            if "description" in definition:
                definition["description"] = self.text(definition["description"])
            if definition.get("staticParameters"):
                definition["staticParameters"] = [{**p, "value": self.value(p.get("value"))} for p in definition["staticParameters"]]
            filled.append({**tool, "definition": definition})
        self.check()
        return filled


def _apply_tool_overrides(tools: list[dict[str, Any]], overrides: ToolOverrides | None) -> list[dict[str, Any]]:
    if overrides is None:
        return tools
    if overrides.remove_all:
        tools = []
    elif overrides.remove:
        names = [SelectedTool.model_validate(t).model_name() or t.get("toolName") for t in tools]
        unknown = [n for n in overrides.remove if n not in names]
        if unknown:
            listing = ", ".join(n for n in names if n) or "none"
            raise InvalidRequest([{"loc": ["body", "toolOverrides", "remove"], "type": "value_error",
                                   "msg": f"the agent has no tool named {', '.join(unknown)}; its tools by name: {listing} "
                                          "(a tool chosen by toolId alone can be dropped with removeAll only)"}])
        tools = [t for t, n in zip(tools, names, strict=True) if n not in overrides.remove]
    return tools + [t.wire() for t in overrides.add or []]


def _fill(call: dict[str, Any], filler: _Filler) -> None:
    for name in _TEXT_FIELDS:
        if name in call:
            call[name] = filler.text(call[name])
    call["inactivityMessages"] = [{**m, "message": filler.text(m.get("message", ""))} for m in call.get("inactivityMessages") or []]
    call["selectedTools"] = [
        {**t, "authTokens": {k: filler.text(v) for k, v in t["authTokens"].items()}} if t.get("authTokens") else t
        for t in call.get("selectedTools") or []
    ]


def agent_call_request(template: dict[str, Any] | None, body: StartAgentCallRequest) -> tuple[dict[str, Any], ToolHook]:
    """The StartCallRequest (wire form, before validation) of a call from this agent, and the hook that fills its tools.

    Raises:
        InvalidRequest: a context that does not match the agent's contextSchema, a missing
            variable (when the agent has no schema), or a toolOverrides.remove of an unknown tool.
    """
    template = template or {}
    filler = _Filler(template, body.template_context or {})
    call = {k: v for k, v in template.items() if k not in _NOT_CALL_FIELDS}
    _fill(call, filler)
    filler.check()
    overrides = {k: v for k, v in body.wire().items() if k not in _REQUEST_ONLY}
    if "voice" in overrides:  # the request's voice replaces the template's voice, whatever its kind
        call.pop("externalVoice", None)
        call.pop("voiceOverrides", None)
    call.update(overrides)
    call["selectedTools"] = _apply_tool_overrides(call["selectedTools"], body.tool_overrides)
    for key in ("selectedTools", "inactivityMessages"):
        if not call[key]:
            del call[key]
    return call, filler.tools
