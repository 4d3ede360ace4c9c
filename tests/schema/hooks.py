"""schemathesis hooks for the run of the official Ultravox document against voxcall.

Loaded by `schemathesis run` (tests/schema/schemathesis.toml names this module; the test passes
the server's URL, an API key and a prepared call in VOXCALL_ST_*). The hooks keep each generated
request inside what the document allows: path ids name resources that exist (a random UUID gets
a 404 the document does not list), and bodies follow the rules the document states only in prose
(tests/schema/repairs.py). Nothing here touches responses: they are checked as the server sends them.
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from typing import Any

import httpx
import schemathesis
from websockets.sync.client import ClientConnection, connect

from tests.schema.repairs import (
    api_key_body,
    concurrency_query,
    data_message,
    start_call_request,
    telephony_body,
    tool_body,
    webhook_body,
)
from voxcall.protocol.rest import first_stage_id

URL = os.environ.get("VOXCALL_ST_URL", "")
KEY = os.environ.get("VOXCALL_ST_KEY", "")
CALL = os.environ.get("VOXCALL_ST_CALL", "")
"""An ended call with messages, events and a recording: what the read operations look at."""
SINK = f"{URL}/webhook-sink"
"""Where webhooks and callbacks go: the server itself (VOXCALL_OUTBOUND_ALLOW=127.0.0.1), which answers 404."""

# The document's one erratum that matters here: `Call.agent` is required and typed `AgentBasic`
# without `nullable`, but the hosted API (a DRF serializer) sends `"agent": null` for a call that
# was not made from an agent, and so does voxcall. Every other schema is used as published.
ERRATA = [("Call", "agent")]
MUTATING = ("DELETE", "PUT", "PATCH")
DURATION = re.compile(r"^(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,9})?s$")


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
    if case.query:
        # A cursor is an opaque value the server hands out in `next`/`previous`; a made-up one
        # is refused (422 "Invalid cursor", as DRF's CursorPagination refuses it with 404).
        case.query.pop("cursor", None)
        if case.path == "/api/agents" and "sort" in case.query:
            # sort: "Which field to use when ordering the results": a field the agents have.
            case.query["sort"] = ("name", "-name", "created", "-created")[len(str(case.query["sort"])) % 4]
        if case.path == "/api/accounts/me/usage/concurrency":
            concurrency_query(case.query)
        for name in ("durationMin", "durationMax"):
            # "Minimum/Maximum duration of calls": a duration, written as every duration of the API ("30s").
            if name in case.query and not DURATION.match(str(case.query[name])):
                case.query.pop(name)
    for name, pick in PATH_IDS.items():
        if name in (case.path_parameters or {}):
            case.path_parameters[name] = pick(case)
    label = f"{case.method.upper()} {case.path}"
    if case.path.startswith("/api/telephony_configs/"):
        _carrier_config(case)
    fix = BODIES.get(label)
    if fix is not None:
        fix(case)
    if label == "POST /api/calls/{call_id}/send_data_message" and case.body["type"] == "hang_up":
        LIVE.retire()  # this message ends the call: the next case joins a new one


def _api() -> httpx.Client:
    return httpx.Client(base_url=f"{URL}/api", headers={"X-API-Key": KEY}, timeout=30)


def _create(path: str, body: dict[str, Any], key: str) -> str:
    with _api() as api:
        response = api.post(path, json=body)
        assert response.status_code == 201, f"POST {path}: {response.status_code} {response.text}"
        return str(response.json()[key])


# --------------------------------------------------------------- path ids: existing resources


def _call_id(case: schemathesis.Case) -> str:
    """A fresh call to delete, a live one for data messages, a deleted one for the tombstones, else the prepared one."""
    if case.path.startswith("/api/deleted_calls"):
        return PREPARED.setdefault("deleted", _deleted_call())
    if case.method.upper() == "DELETE":
        return _create("/calls", {}, "callId")
    if case.path.endswith("/send_data_message"):
        return LIVE.call_id()
    return CALL


def _deleted_call() -> str:
    call_id = _create("/calls", {}, "callId")
    with _api() as api:
        assert api.delete(f"/calls/{call_id}").status_code == 204
    return call_id


def _tool_id(case: schemathesis.Case) -> str:
    """A fresh tool to change or delete, one with a static response to test (it answers without
    reaching out), else the prepared one."""
    if case.method.upper() in MUTATING:
        return _new_tool({"client": {}})
    if case.path.endswith("/test"):
        return PREPARED.setdefault("test tool", _new_tool({"staticResponse": {"responseText": "sunny"}}))
    return PREPARED.setdefault("tool", _new_tool({"client": {}}))


def _new_tool(definition: dict[str, Any]) -> str:
    body = {"name": f"prepared {uuid.uuid4().hex[:8]}", "definition": {"modelToolName": "lookup", **definition}}
    return _create("/tools", body, "toolId")


def _agent_id(case: schemathesis.Case) -> str:
    if case.method.upper() in MUTATING:
        return _new_agent()
    return PREPARED.setdefault("agent", _new_agent())


def _new_agent() -> str:
    body = {"name": f"agent {uuid.uuid4().hex[:8]}", "callTemplate": {"systemPrompt": "Answer in one word."}}
    return _create("/agents", body, "agentId")


def _webhook_id(case: schemathesis.Case) -> str:
    if case.method.upper() in MUTATING:
        return _new_webhook()
    return PREPARED.setdefault("webhook", _new_webhook())


def _new_webhook() -> str:
    return _create("/webhooks", {"url": SINK, "events": ["call.ended"]}, "webhookId")


def _key_prefix(case: schemathesis.Case) -> str:
    """A fresh key to change or revoke (never the run's own key), else the run's own key."""
    if case.method.upper() in MUTATING:
        return _create("/api_keys", {"name": "schemathesis"}, "prefix")
    return KEY.split(".")[0]


def _call_stage_id(case: schemathesis.Case) -> str:
    """The prepared call's one stage (its id is derived from the call's)."""
    return first_stage_id(CALL)


def _message_index(case: schemathesis.Case) -> int:
    """The prepared call's spoken user message: the one message of its stage that has audio."""
    if "spoken" not in PREPARED:
        with _api() as api:
            messages = api.get(f"/calls/{CALL}/stages/{first_stage_id(CALL)}/messages").json()["results"]
        PREPARED["spoken"] = str(next(m["callStageMessageIndex"] for m in messages if m.get("medium") == "MESSAGE_MEDIUM_VOICE"))
    return int(PREPARED["spoken"])


def _voice_id(case: schemathesis.Case) -> str:
    with _api() as api:  # an installed voice (the test server has Piper's "joe")
        return str(api.get("/voices").json()["results"][0]["voiceId"])


PATH_IDS = {"call_id": _call_id, "tool_id": _tool_id, "agent_id": _agent_id, "webhook_id": _webhook_id,
            "api_key_prefix": _key_prefix, "voice_id": _voice_id, "call_stage_id": _call_stage_id,
            "call_stage_message_index": _message_index}
PREPARED: dict[str, str] = {}


VALID_CONFIGS = {
    "twilio": {"accountSid": "AC0123", "authToken": "token"},
    "telnyx": {"accountSid": "acct", "apiKey": "key", "publicKey": "", "applicationSid": "app"},
    "plivo": {"authId": "MA0123", "authToken": "token"},
}


def _carrier_config(case: schemathesis.Case) -> None:
    """A carrier's config exists for GET, PATCH and DELETE, and does not yet for POST (which creates it)."""
    carrier = case.path.rsplit("/", 1)[1]
    with _api() as api:
        if case.method.upper() == "POST":
            api.delete(case.path.removeprefix("/api"))
        elif api.get(case.path.removeprefix("/api")).status_code == 404:
            body = telephony_body(VALID_CONFIGS[carrier], "")
            response = api.post(case.path.removeprefix("/api"), json=body)
            assert response.status_code == 201, response.text


def _telephony(case: schemathesis.Case) -> None:
    agent = PREPARED.setdefault("agent", _new_agent())
    if case.path.endswith("/telephony_config") and isinstance(case.body, dict):
        case.body = {k: telephony_body(v, agent) if isinstance(v, dict) else v for k, v in case.body.items()}
    else:
        case.body = telephony_body(case.body, agent)


# ------------------------------------------------------------------------------- bodies


def _start_call(case: schemathesis.Case) -> None:
    if case.query and case.query.get("priorCallId") is not None:
        # priorCallId names an existing call; "It's illegal to also set initial_messages in the body."
        case.query["priorCallId"] = CALL
        if isinstance(case.body, dict):
            case.body.pop("initialMessages", None)
    if isinstance(case.body, dict):
        case.body = start_call_request(case.body, SINK)


def _agent(case: schemathesis.Case) -> None:
    if isinstance(case.body, dict) and isinstance(case.body.get("callTemplate"), dict):
        case.body["callTemplate"] = start_call_request(case.body["callTemplate"], SINK)


def _agent_call(case: schemathesis.Case) -> None:
    if isinstance(case.body, dict):
        case.body = start_call_request(case.body, SINK)
        case.body.pop("agentId", None)  # the path names the agent


def _body(repair: Any) -> Any:
    def fix(case: schemathesis.Case) -> None:
        case.body = repair(case.body)

    return fix


BODIES = {
    "POST /api/calls": _start_call,
    "POST /api/tools": _body(tool_body),
    "PUT /api/tools/{tool_id}": _body(tool_body),
    "POST /api/agents": _agent,
    "PATCH /api/agents/{agent_id}": _agent,
    "POST /api/agents/{agent_id}/calls": _agent_call,
    "POST /api/webhooks": _body(lambda body: webhook_body(body, SINK, PREPARED.setdefault("agent", _new_agent()))),
    "PUT /api/webhooks/{webhook_id}": _body(lambda body: webhook_body(body, SINK, PREPARED.setdefault("agent", _new_agent()))),
    "PATCH /api/webhooks/{webhook_id}": _body(lambda body: webhook_body(body, SINK, PREPARED.setdefault("agent", _new_agent()))),
    "POST /api/api_keys": _body(api_key_body),
    "PUT /api/api_keys/{api_key_prefix}": _body(api_key_body),
    "PATCH /api/api_keys/{api_key_prefix}": _body(api_key_body),
    "POST /api/calls/{call_id}/send_data_message": _body(data_message),
    "PATCH /api/accounts/me/telephony_config": _telephony,
    **{f"{method} /api/telephony_configs/{carrier}": _telephony for method in ("POST", "PATCH") for carrier in VALID_CONFIGS},
}


# ----------------------------------------------------------------- a live call for data messages


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
