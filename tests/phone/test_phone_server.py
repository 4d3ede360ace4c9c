"""Phone calls through a real `voxcall serve` process, with a fake Twilio REST API on 127.0.0.1.

The server runs text only, its LLM pointed at a scripted OpenAI-compatible endpoint on the
same loopback server, and VOXCALL_TWILIO_API_URL at the fake Twilio. Checked over real
sockets: a signed voice webhook answered with TwiML; an outgoing call placed with the
exact request Twilio expects, ended as `unjoined` when no media stream comes, and then
hung up at Twilio.
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.conftest import RunningServer
from tests.phone.conftest import TWILIO, basic
from tests.toolserver import Seen, ToolServer

CALLS = f"/2010-04-01/Accounts/{TWILIO['accountSid']}/Calls.json"
SID = "CAserver000001"


def chat(seen: Seen) -> tuple[int, dict[str, str], bytes]:
    chunk = {"choices": [{"index": 0, "delta": {"content": "Hello."}}]}
    return 200, {"Content-Type": "text/event-stream"}, b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"


def twilio_json(status: int, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


@pytest.fixture(scope="module")
def fake() -> Iterator[ToolServer]:
    with ToolServer() as server:
        server.routes["/v1/chat/completions"] = chat
        server.routes[CALLS] = lambda seen: twilio_json(201, {"sid": SID, "status": "queued"})
        server.routes[CALLS.replace(".json", f"/{SID}.json")] = lambda seen: twilio_json(200, {"sid": SID, "status": "completed"})
        yield server


@pytest.fixture(scope="module")
def phone_server(server_factory: Any, fake: ToolServer) -> RunningServer:
    env = {"VOXCALL_SPEECH": "0", "VOXCALL_LLM_URL": f"{fake.url}/v1", "VOXCALL_TWILIO_API_URL": fake.url}
    return server_factory("openai", extra_env=env)  # type: ignore[no-any-return]


def api(server: RunningServer, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, f"{server.api}{path}", json=body, headers=server.headers(), timeout=30)


def test_a_twilio_number_reaches_an_agent_and_an_outgoing_call_is_placed_and_hung_up(
    phone_server: RunningServer, fake: ToolServer
) -> None:
    agent = api(phone_server, "POST", "/agents", {"name": "Desk", "callTemplate": {
        "systemPrompt": "Greet {{user.phone_number}}.", "firstSpeakerSettings": {"agent": {}}}}).json()
    config = api(phone_server, "POST", "/telephony_configs/twilio", {**TWILIO, "callCreationAllowedAgentIds": [agent["agentId"]],
                                                                      "requestContextMapping": {"From": "user.phone_number"}})
    assert config.status_code == 201, config.text

    url = f"{phone_server.api}/agents/{agent['agentId']}/telephony_xml"
    fields = {"CallSid": "CAinbound", "AccountSid": TWILIO["accountSid"], "From": "+15551234567", "To": "+15557654321"}
    signature = RequestValidator(TWILIO["authToken"]).compute_signature(url, fields)
    answered = httpx.post(url, content=urlencode(fields), timeout=30,
                          headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"})
    assert answered.status_code == 200, answered.text
    [incoming] = api(phone_server, "GET", f"/agents/{agent['agentId']}/calls").json()["results"]
    stream = ET.fromstring(answered.text.split("?>", 1)[1]).find("Connect/Stream")
    assert stream is not None and stream.attrib["url"] == incoming["joinUrl"]
    assert incoming["systemPrompt"] == "Greet +15551234567."
    forged = httpx.post(url, content=urlencode({**fields, "From": "+1999"}), timeout=30,
                        headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"})
    assert forged.status_code == 403

    created = api(phone_server, "POST", "/calls", {"joinTimeout": "1s", "medium": {"twilio": {"outgoing": {
        "to": "+15551230000", "from": "+15559870000", "additionalParams": {"timeout": 25}}}}})
    assert created.status_code == 201 and created.json()["ended"] is None, created.text
    call = created.json()
    [placed] = [s for s in fake.seen if s.path == CALLS]
    assert placed.method == "POST" and placed.headers["authorization"] == basic(TWILIO["accountSid"], TWILIO["authToken"])
    sent = parse_qs(placed.body.decode())
    assert (sent["To"], sent["From"], sent["Timeout"]) == (["+15551230000"], ["+15559870000"], ["25"])
    assert f'url="{call["joinUrl"]}"' in sent["Twiml"][0]

    hang_up = CALLS.replace(".json", f"/{SID}.json")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not [s for s in fake.seen if s.path == hang_up]:
        time.sleep(0.1)
    [ended] = [s for s in fake.seen if s.path == hang_up]
    assert ended.method == "POST" and parse_qs(ended.body.decode()) == {"Status": ["completed"]}
    assert api(phone_server, "GET", f"/calls/{call['callId']}").json()["endReason"] == "unjoined"
    events = api(phone_server, "GET", f"/calls/{call['callId']}/events").json()["results"]
    assert [e["type"] for e in events if e["type"].startswith("carrier_")] == [
        "carrier_call_placed", "carrier_no_media", "carrier_hang_up"]
