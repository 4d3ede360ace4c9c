"""Generated request data, brought within the rules the official document states only in prose.

Pure functions (no I/O) used by tests/schema/hooks.py. Each rule quotes the sentence of the
document (or of the Ultravox docs) it comes from; where voxcall has a limit of its own, the
comment says so.
"""

from __future__ import annotations

import base64
import re
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["api_key_body", "concurrency_query", "data_message", "positive_durations", "start_call_request", "telephony_body",
           "tool_body", "tool_definition", "webhook_body"]

MAX_TOOL_TIMEOUT = 40
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MEDIA = ("webRtc", "twilio", "serverWebSocket", "telnyx", "plivo", "exotel", "sip")
DATA_MESSAGE_TYPES = ("user_text_message", "forced_agent_message", "hang_up")
_DURATION = re.compile(r"^-(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,9})?s$")


def start_call_request(body: dict[str, Any], sink: str) -> dict[str, Any]:
    """A generated StartCallRequest (or CallTemplate, StartAgentCallRequest), brought within the
    rules the document states in prose. `sink` is a URL the server may deliver callbacks to."""
    body = positive_durations(body)
    callbacks = body.get("callbacks")
    for callback in callbacks.values() if isinstance(callbacks, dict) else ():
        if isinstance(callback, dict):
            callback["url"] = sink  # Callback.url: "The URL to invoke." (a target the server may reach)
    overrides = body.get("toolOverrides")
    if isinstance(overrides, dict):
        # remove: the model-facing names of the agent's tools to drop; the test's agent has none.
        overrides.pop("remove", None)
        if "add" in overrides:
            overrides["add"] = _tools(overrides["add"])
    if "voice" in body:
        # externalVoice: "Either this or `voice` may be set, but not both."
        body.pop("externalVoice", None)
    else:
        # voiceOverrides: "Only valid when `voice` is set (not `external_voice`)."
        body.pop("voiceOverrides", None)
    if isinstance(body.get("temperature"), (int, float)):
        # "The model temperature, between 0 and 1."
        body["temperature"] = min(1.0, max(0.0, float(body["temperature"])))
    if isinstance(body.get("languageHint"), str):
        body["languageHint"] = body["languageHint"][:16]  # Call.languageHint: maxLength 16
    if isinstance(body.get("metadata"), dict):
        # 'Keys may not start with "ultravox.", which is reserved for system-provided metadata.'
        body["metadata"] = {k: v for k, v in body["metadata"].items() if not k.startswith("ultravox.")}
    vad = body.get("vadSettings")
    if isinstance(vad, dict) and isinstance(vad.get("frameActivationThreshold"), (int, float)) and vad["frameActivationThreshold"]:
        # "This is a value between 0.1 and 1." (0, proto3's zero value, means the default.)
        vad["frameActivationThreshold"] = min(1.0, max(0.1, float(vad["frameActivationThreshold"])))
    _one_medium(body)
    _first_speaker(body)
    if "selectedTools" in body:
        body["selectedTools"] = _tools(body["selectedTools"])
    return body


def positive_durations(value: Any) -> Any:
    """Durations come from the generic proto Duration pattern, which admits a sign; no duration
    of a call (a timeout, a delay, a turn length) can be negative, so the sign is dropped."""
    if isinstance(value, dict):
        return {k: positive_durations(v) for k, v in value.items()}
    if isinstance(value, list):
        return [positive_durations(v) for v in value]
    if isinstance(value, str) and _DURATION.match(value):
        return value[1:]
    return value


def _one_medium(body: dict[str, Any]) -> None:
    medium = body.get("medium")
    if not isinstance(medium, dict):
        return
    # CallMedium: "At most one call medium may be set."
    first = next((key for key in medium if key in MEDIA), None)
    body["medium"] = {first: medium[first]} if first else {}
    if first in ("twilio", "telnyx", "plivo", "sip") and isinstance(medium[first], dict):
        # outgoing: "If set, Ultravox will directly create a call with <carrier>. <Carrier> must be
        # configured for the requesting account": a real phone call, which a test cannot place.
        medium[first].pop("outgoing", None)
    socket = body["medium"].get("serverWebSocket")
    if isinstance(socket, dict) and isinstance(socket.get("clientBufferSizeMs"), int):
        socket["clientBufferSizeMs"] = abs(socket["clientBufferSizeMs"])  # "The size of the client-side audio buffer"
    if isinstance(socket, dict):
        # inputSampleRate: "The sample rate for input (user) audio. Required." Audio rates are 8-48 kHz.
        for key in ("inputSampleRate", "outputSampleRate"):
            if key in socket or key == "inputSampleRate":
                socket[key] = _audio_rate(socket.get(key))


def _audio_rate(rate: Any) -> int:
    rates = (8000, 16000, 22050, 24000, 44100, 48000)
    return rate if rate in rates else rates[zlib.crc32(repr(rate).encode()) % len(rates)]


def _first_speaker(body: dict[str, Any]) -> None:
    settings = body.get("firstSpeakerSettings")
    if not isinstance(settings, dict):
        return
    # FirstSpeakerSettings: "Exactly one of user or agent should be set."
    first = next((key for key in settings if key in ("user", "agent")), None)
    if first is None:
        body.pop("firstSpeakerSettings")
        return
    body["firstSpeakerSettings"] = {first: settings[first]}
    # firstSpeaker: "Prefer `firstSpeakerSettings`. If both are set, they must match."
    body.pop("firstSpeaker", None)


def _tools(tools: Any) -> list[dict[str, Any]]:
    """Temporary tools only, each made valid (see tool_definition) with its requirements met.

    toolId/toolName name durable tools, which would have to exist, and SelectedTool has exactly
    one of toolId, toolName and temporaryTool. A tool's requirements "must be fulfilled when
    creating a call for the tool to be used": the overrides and auth tokens it asks for are given.
    """
    kept: list[dict[str, Any]] = []
    for i, selected in enumerate(tools if isinstance(tools, list) else []):
        tool = selected.get("temporaryTool") if isinstance(selected, dict) else None
        if not isinstance(tool, dict):
            continue
        for key in ("toolId", "toolName", "nameOverride"):
            selected.pop(key, None)
        tool_definition(tool, f"tool_{i}")
        requirements = tool.get("requirements") or {}
        overrides = selected.get("parameterOverrides") if isinstance(selected.get("parameterOverrides"), dict) else {}
        selected["parameterOverrides"] = {**{k: "x" for k in requirements.get("requiredParameterOverrides") or []}, **overrides}
        options = (requirements.get("httpSecurityOptions") or {}).get("options") or []
        tokens = selected.get("authTokens") if isinstance(selected.get("authTokens"), dict) else {}
        wanted = (options[0].get("requirements") or {}) if options else {}
        selected["authTokens"] = {**{key: "token" for key in wanted}, **tokens}
        kept.append(selected)
    return kept


def tool_definition(tool: dict[str, Any], name: str) -> dict[str, Any]:
    """A generated BaseToolDefinition, brought within the rules its descriptions state.

    "Exactly one implementation must be set" (http, client, dataConnection; a staticResponse
    alone also answers); modelToolName "Must match ^[a-zA-Z0-9_-]{1,64}$"; client and
    dataConnection tools take "Only body parameters"; an HTTP tool has an http(s) URL whose
    {placeholders} are its path parameters and an HTTP method; an automatic parameter says
    which value it carries; the timeout is at most 40 s (docs: tools/async-tools); each
    security requirement is exactly one of queryApiKey, headerApiKey and httpAuth (with a
    scheme). Parameter names are made unique in the tool.
    """
    tool["modelToolName"] = name
    kinds = [k for k in ("http", "client", "dataConnection") if isinstance(tool.get(k), dict)] or ["client"]
    for kind in ("http", "client", "dataConnection"):
        if kind != kinds[0]:
            tool.pop(kind, None)
    tool.setdefault(kinds[0], {})
    if isinstance(tool.get("timeout"), str) and float(tool["timeout"].lstrip("-")[:-1]) > MAX_TOOL_TIMEOUT:
        tool["timeout"] = f"{MAX_TOOL_TIMEOUT}s"
    path = []
    for kind in ("dynamicParameters", "staticParameters", "automaticParameters"):
        tool[kind] = [p for p in tool.get(kind) or [] if isinstance(p, dict)]
        for j, param in enumerate(tool[kind]):
            param["name"] = f"{kind[0]}{j}"
            if kinds[0] != "http":
                param["location"] = "PARAMETER_LOCATION_BODY"
            elif param.get("location") == "PARAMETER_LOCATION_PATH":
                path.append(param["name"])
            if kind == "automaticParameters" and param.get("knownValue") in (None, "KNOWN_PARAM_UNSPECIFIED"):
                param["knownValue"] = "KNOWN_PARAM_CALL_ID"
    if kinds[0] == "http":
        http = tool["http"]
        http["baseUrlPattern"] = "https://tools.example/lookup" + "".join(f"/{{{p}}}" for p in path)
        if str(http.get("httpMethod", "GET")).upper() not in HTTP_METHODS:
            http["httpMethod"] = "POST"
    _security(tool)
    return tool


def _security(tool: dict[str, Any]) -> None:
    requirements = tool.get("requirements")
    options = (requirements.get("httpSecurityOptions") or {}).get("options") if isinstance(requirements, dict) else None
    for option in options or []:
        for i, (key, requirement) in enumerate(list((option.get("requirements") or {}).items())):
            if isinstance(requirement.get("httpAuth"), dict):
                option["requirements"][key] = {"httpAuth": {"scheme": requirement["httpAuth"].get("scheme") or "Bearer"}}
            elif kind := next((k for k in ("queryApiKey", "headerApiKey") if isinstance(requirement.get(k), dict)), None):
                option["requirements"][key] = {kind: {"name": requirement[kind].get("name") or f"X-Key-{i}"}}
            else:
                option["requirements"].pop(key)


def _tool_name(generated: Any) -> str:
    """Tool names are unique in an account (a second tool of a name is refused: 409), so each
    gets a random suffix; names are printable and at most 40 characters ("maxLength: 40")."""
    text = "".join(c for c in str(generated) if c.isprintable()).strip()[:30]
    return f"{text} #{uuid.uuid4().hex[:8]}".strip()


def tool_body(body: Any) -> dict[str, Any]:
    body = dict(body) if isinstance(body, dict) else {}
    body["name"] = _tool_name(body.get("name", ""))
    definition = positive_durations(body["definition"]) if isinstance(body.get("definition"), dict) else {}
    body["definition"] = tool_definition(definition, "durable_tool")
    return body


def data_message(body: Any) -> dict[str, Any]:
    """A data message of a supported type (docs: datamessages): the generated `type` when it is
    one, else one chosen from it; the generated fields are kept."""
    body = dict(body) if isinstance(body, dict) else {}
    kind = body.get("type")
    if kind not in DATA_MESSAGE_TYPES:
        kind = DATA_MESSAGE_TYPES[zlib.crc32(repr(kind).encode()) % len(DATA_MESSAGE_TYPES)]
    body["type"] = kind
    if kind == "user_text_message" and not isinstance(body.get("text"), str):
        body["text"] = "Hello."
    if kind == "forced_agent_message" and not isinstance(body.get("content"), str):
        body["content"] = "Hello."
    return body


# ------------------------------------------------------------- webhooks, API keys, usage


def webhook_body(body: Any, sink: str, agent_id: str) -> dict[str, Any]:
    """Webhook.url ("format: uri") names a target the server may reach (voxcall delivers only to
    public addresses or to VOXCALL_OUTBOUND_ALLOW); agentId names an existing agent."""
    body = dict(body) if isinstance(body, dict) else {}
    if "url" in body:
        body["url"] = sink
    if body.get("agentId") is not None:
        body["agentId"] = agent_id
    return body


def api_key_body(body: Any) -> dict[str, Any]:
    """expiryDate: "Once API key expires, clients cannot use it anymore." A key created already
    expired is refused (422), so a past date moves a year ahead."""
    body = dict(body) if isinstance(body, dict) else {}
    expiry = body.get("expiryDate")
    if isinstance(expiry, str):
        try:
            when = datetime.fromisoformat(expiry.replace("Z", "+00:00"))
        except ValueError:
            return body
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        if when <= datetime.now(UTC) + timedelta(minutes=1):
            body["expiryDate"] = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    return body


def concurrency_query(query: dict[str, Any]) -> dict[str, Any]:
    """GET /api/accounts/me/usage/concurrency: `start` before `end`, and a range of at most 10000
    buckets (voxcall's own limit: beyond it, a 422 says to pick a larger bucket or a shorter range).
    A `start` that would break either is left out: "Defaults to 24 hours before end"."""
    bucket_seconds = {"minute": 60, "5min": 300, "hour": 3600, "day": 86400}.get(query.get("bucket", "minute"), 60)
    age = datetime.now(UTC).timestamp() - _timestamp(query.get("start"))
    if "start" in query and ("end" in query or not 60 < age < 9000 * bucket_seconds):
        query.pop("start")
    return query


def _timestamp(value: Any) -> float:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


# ------------------------------------------------------------------ carrier credentials

CREDENTIALS = {"accountSid": 200, "authToken": 500, "apiKey": 500, "authId": 200, "applicationSid": 40}
TELNYX_PUBLIC_KEY = base64.b64encode(b"voxcall-schemathesis-test-key-32").decode()
"""32 bytes in base64: the form of the Ed25519 public key the Telnyx portal shows."""


def telephony_body(body: Any, agent_id: str) -> dict[str, Any]:
    """A carrier config: each credential ("Your Twilio Auth Token", ...) is a non-empty string of
    the carrier's size (applicationSid "maxLength: 40"); Telnyx's publicKey is its Ed25519 key;
    requestContextMapping "Maps (dot separated) request fields to (dot separated) context fields";
    callCreationAllowedAgentIds names existing agents, and only when not all agents are allowed."""
    body = dict(body) if isinstance(body, dict) else {}
    for key, limit in CREDENTIALS.items():
        if key in body:
            body[key] = (str(body[key]) or key)[:limit]
    if "publicKey" in body:
        body["publicKey"] = TELNYX_PUBLIC_KEY
    mapping = body.get("requestContextMapping")
    if isinstance(mapping, dict):
        body["requestContextMapping"] = {_dotted(k, "from"): _dotted(v, "to") for k, v in mapping.items()}
    if body.get("callCreationAllowedAgentIds"):
        body["callCreationAllowedAgentIds"] = [] if body.get("callCreationAllowAllAgents") else [agent_id]
    return body


def _dotted(value: Any, fallback: str) -> str:
    parts = [part for part in str(value).split(".") if part.strip()]
    return ".".join(parts) or fallback
