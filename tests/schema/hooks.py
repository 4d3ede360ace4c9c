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
MEDIA = ("webRtc", "twilio", "serverWebSocket", "telnyx", "plivo", "exotel", "sip")
DATA_MESSAGE_TYPES = ("user_text_message", "forced_agent_message", "hang_up")
_DURATION = re.compile(r"^-(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,9})?s$")


@schemathesis.hook
def before_load_schema(context: schemathesis.HookContext, raw_schema: dict[str, Any]) -> None:
    schemas = raw_schema["components"]["schemas"]
    for name, prop in ERRATA:
        schemas[name]["properties"][prop]["nullable"] = True


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    # Path ids name resources that exist (a random UUID gets a 404 the document does not list).
    if case.query:
        # A cursor is an opaque value the server hands out in `next`/`previous`; a made-up one
        # is refused (422 "Invalid cursor", as DRF's CursorPagination refuses it with 404).
        case.query.pop("cursor", None)
    if "call_id" in (case.path_parameters or {}):
        case.path_parameters["call_id"] = _call_for(case)
    if "voice_id" in (case.path_parameters or {}):
        with _api() as api:  # an installed voice (the server fixture has Piper's "joe")
            case.path_parameters["voice_id"] = api.get("/voices").json()["results"][0]["voiceId"]
    label = f"{case.method.upper()} {case.path}"
    if label == "POST /api/calls":
        _start_call(case)
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
    """Temporary tools only, each with exactly one implementation and a valid, unique model name.

    toolId/toolName name durable tools, which would have to exist; SelectedTool has exactly one
    of toolId, toolName and temporaryTool; "Exactly one implementation must be set"; a model tool
    name "Must match ^[a-zA-Z0-9_-]{1,64}$"; client and dataConnection tools take "Only body
    parameters"; the timeout is at most 40 s (docs: tools/async-tools).
    """
    kept: list[dict[str, Any]] = []
    for i, selected in enumerate(tools if isinstance(tools, list) else []):
        tool = selected.get("temporaryTool") if isinstance(selected, dict) else None
        if not isinstance(tool, dict):
            continue
        for key in ("toolId", "toolName", "nameOverride"):
            selected.pop(key, None)
        tool["modelToolName"] = f"tool_{i}"
        kinds = [k for k in ("http", "client", "dataConnection") if k in tool] or ["client"]
        for extra in kinds[1:]:
            tool.pop(extra)
        tool.setdefault(kinds[0], {})
        if isinstance(tool.get("timeout"), str) and float(tool["timeout"][:-1]) > MAX_TOOL_TIMEOUT:
            tool["timeout"] = f"{MAX_TOOL_TIMEOUT}s"
        if kinds[0] == "http" and isinstance(tool["http"], dict):
            tool["http"].setdefault("baseUrlPattern", "https://tools.example/lookup")  # an HTTP tool has a URL
        for kind in ("dynamicParameters", "staticParameters", "automaticParameters"):
            for j, param in enumerate(tool.get(kind) or []):
                param["name"] = f"{kind[0]}{j}"  # a parameter has a name, unique in its tool
                if kinds[0] != "http":
                    param["location"] = "PARAMETER_LOCATION_BODY"
        kept.append(selected)
    return kept


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
