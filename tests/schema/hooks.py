"""schemathesis hooks for the run of the official Ultravox document against voxcall.

Loaded by `schemathesis run` through SCHEMATHESIS_HOOKS (tests/schema/test_official_schema.py sets
it, with the server's URL, an API key and a prepared call in VOXCALL_ST_*). Each hook keeps the
generated data inside what the document allows; where the document states a rule only in prose
(a description), the case is brought within it here, and the comment quotes the rule. Nothing
here touches responses: they are checked exactly as the server sends them.
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
import zlib
from typing import Any

import httpx
import schemathesis
from websockets.sync.client import ClientConnection, connect

URL = os.environ.get("VOXCALL_ST_URL", "")
KEY = os.environ.get("VOXCALL_ST_KEY", "")
CALL = os.environ.get("VOXCALL_ST_CALL", "")
"""An ended call with messages, events and a recording: what the read operations look at."""

# The document's one erratum that matters here: `Call.agent` is required and typed `AgentBasic`
# without `nullable`, but the hosted API (a DRF serializer) sends `"agent": null` for a call that
# was not made from an agent, and so does voxcall. Every other schema is used as published.
ERRATA = [("Call", "agent")]

MAX_TOOL_TIMEOUT = 40
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MEDIA = ("webRtc", "twilio", "serverWebSocket", "telnyx", "plivo", "exotel", "sip")
DATA_MESSAGE_TYPES = ("user_text_message", "forced_agent_message", "hang_up")
_DURATION = re.compile(r"^-(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,9})?s$")


@schemathesis.hook
def before_load_schema(context: schemathesis.HookContext, raw_schema: dict[str, Any]) -> None:
    schemas = raw_schema["components"]["schemas"]
    for name, prop in ERRATA:
        schemas[name]["properties"][prop]["nullable"] = True


@schemathesis.hook
def filter_case(context: schemathesis.HookContext, case: schemathesis.Case) -> bool:
    # POST /api/tools also takes an OpenAPI file (multipart/form-data) to turn into tools; voxcall
    # creates tools from JSON only and answers an upload with 415 (README: what differs).
    return not (case.path == "/api/tools" and "multipart" in (case.media_type or ""))


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    # Path ids name resources that exist (a random UUID gets a 404 the document does not list).
    if case.query:
        # A cursor is an opaque value the server hands out in `next`/`previous`; a made-up one
        # is refused (422 "Invalid cursor", as DRF's CursorPagination refuses it with 404).
        case.query.pop("cursor", None)
    if "call_id" in (case.path_parameters or {}):
        case.path_parameters["call_id"] = _call_for(case)
    if "tool_id" in (case.path_parameters or {}):
        case.path_parameters["tool_id"] = _tool_for(case)
    if "voice_id" in (case.path_parameters or {}):
        with _api() as api:  # an installed voice (the server fixture has Piper's "joe")
            case.path_parameters["voice_id"] = api.get("/voices").json()["results"][0]["voiceId"]
    label = f"{case.method.upper()} {case.path}"
    if label == "POST /api/calls":
        _start_call(case)
    elif label in ("POST /api/tools", "PUT /api/tools/{tool_id}"):
        case.body = _tool_body(case.body)
    elif label == "POST /api/calls/{call_id}/send_data_message":
        case.body = _data_message(case.body)
        if case.body["type"] == "hang_up":
            LIVE.retire()  # this message ends the call: the next case joins a new one


def _api() -> httpx.Client:
    return httpx.Client(base_url=f"{URL}/api", headers={"X-API-Key": KEY}, timeout=30)


def _call_for(case: schemathesis.Case) -> str:
    """A call that exists: a fresh one to delete, a live one for data messages, else the prepared one."""
    if case.method.upper() == "DELETE":
        with _api() as api:
            return str(api.post("/calls", json={}).json()["callId"])
    if case.path.endswith("/send_data_message"):
        return LIVE.call_id()
    return CALL


# ------------------------------------------------------------------ POST /api/calls


def _start_call(case: schemathesis.Case) -> None:
    if case.query and case.query.get("priorCallId") is not None:
        # priorCallId names an existing call; "It's illegal to also set initial_messages in the body."
        case.query["priorCallId"] = CALL
        if isinstance(case.body, dict):
            case.body.pop("initialMessages", None)
    if isinstance(case.body, dict):
        case.body = start_call_request(case.body)


def start_call_request(body: dict[str, Any]) -> dict[str, Any]:
    """A generated StartCallRequest, brought within the rules the document states in prose."""
    body = _positive_durations(body)
    if "voice" in body:
        # externalVoice: "Either this or `voice` may be set, but not both."
        body.pop("externalVoice", None)
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


def _positive_durations(value: Any) -> Any:
    """Durations come from the generic proto Duration pattern, which admits a sign; no duration
    of a call (a timeout, a delay, a turn length) can be negative, so the sign is dropped."""
    if isinstance(value, dict):
        return {k: _positive_durations(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_positive_durations(v) for v in value]
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
    socket = body["medium"].get("serverWebSocket")
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


# ----------------------------------------------------------------- /api/tools


def _tool_for(case: schemathesis.Case) -> str:
    """A tool of the account: a fresh one to change or delete, one with a static response to
    test (it answers without reaching out), else the prepared one."""
    if case.method.upper() in ("DELETE", "PUT"):
        return _new_tool({"client": {}})
    if case.path.endswith("/test"):
        return TOOLS.setdefault("test", _new_tool({"staticResponse": {"responseText": "sunny"}}))
    return TOOLS.setdefault("read", _new_tool({"client": {}}))


def _new_tool(definition: dict[str, Any]) -> str:
    with _api() as api:
        body = {"name": _tool_name("prepared"), "definition": {"modelToolName": "lookup", **definition}}
        response = api.post("/tools", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["toolId"])


def _tool_name(generated: Any) -> str:
    """Tool names are unique in an account (a second tool of a name is refused: 409), so each
    gets a random suffix; names are printable and at most 40 characters ("maxLength: 40")."""
    text = "".join(c for c in str(generated) if c.isprintable()).strip()[:30]
    return f"{text} #{uuid.uuid4().hex[:8]}".strip()


def _tool_body(body: Any) -> dict[str, Any]:
    body = dict(body) if isinstance(body, dict) else {}
    body["name"] = _tool_name(body.get("name", ""))
    definition = _positive_durations(body["definition"]) if isinstance(body.get("definition"), dict) else {}
    body["definition"] = tool_definition(definition, "durable_tool")
    return body


TOOLS: dict[str, str] = {}


# ------------------------------------------------------- POST .../send_data_message


def _data_message(body: Any) -> dict[str, Any]:
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


class LiveCall:
    """One joined call kept open (its socket drained in a thread) for send_data_message cases."""

    def __init__(self) -> None:
        self._id: str | None = None

    def call_id(self) -> str:
        if self._id is None:
            self._join()
        assert self._id is not None
        return self._id

    def retire(self) -> None:
        self._id = None

    def _join(self) -> None:
        body = {"firstSpeakerSettings": {"user": {}}, "initialOutputMedium": "MESSAGE_MEDIUM_TEXT",
                "medium": {"serverWebSocket": {"inputSampleRate": 16000}}, "systemPrompt": "Answer in one word."}
        with _api() as api:
            call = api.post("/calls", json=body).json()
        socket = connect(call["joinUrl"], open_timeout=10)
        json.loads(str(socket.recv(timeout=10)))  # call_started: the call is live from here on
        self._id = call["callId"]
        threading.Thread(target=_drain, args=(socket,), daemon=True).start()


def _drain(socket: ClientConnection) -> None:
    try:
        while True:
            socket.recv()
    except Exception:  # closed: the call ended
        return


LIVE = LiveCall()
