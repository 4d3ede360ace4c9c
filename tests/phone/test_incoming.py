"""Incoming calls: a carrier's voice webhook at /api/agents/{id}/telephony_xml, signed as each carrier signs it.

Twilio posts are signed with twilio's own RequestValidator, Plivo's with plivo's own
signature_v3 code, Telnyx's with an Ed25519 key whose public half is the stored publicKey.
"""

from __future__ import annotations

import base64
import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from plivo.utils.signature_v3 import construct_post_url, get_signature_v3
from twilio.request_validator import RequestValidator

from tests.phone.conftest import (
    PLIVO,
    TELNYX,
    TELNYX_KEY,
    TWILIO,
    Api,
    open_services,
    serving,
)
from tests.phone.test_outgoing import TWILIO_CALLS, end
from tests.platform.conftest import Receiver
from tests.toolserver import ToolServer
from voxcall.protocol.telephony_configs import map_context

FORM = "application/x-www-form-urlencoded"
CALLER = {"CallSid": "CAincoming0001", "AccountSid": TWILIO["accountSid"], "From": "+15551234567", "To": "+15557654321",
          "CallStatus": "ringing", "Direction": "inbound"}
TEMPLATE = {"systemPrompt": "You answer the phone. The caller's number is {{user.phone_number}}.",
            "firstSpeakerSettings": {"agent": {"text": "Hello!"}}}


async def agent(api: Api, template: dict[str, Any] | None = None, who: str = "a") -> str:
    r = await api.call("POST", "/api/agents", who, json={"name": "Reception", "callTemplate": template or TEMPLATE})
    assert r.status_code == 201, r.text
    return r.json()["agentId"]  # type: ignore[no-any-return]


def twilio_post(url: str, fields: dict[str, str], token: str = TWILIO["authToken"]) -> dict[str, Any]:
    signature = RequestValidator(token).compute_signature(url, fields)
    return {"content": urlencode(fields).encode(), "headers": {"X-Twilio-Signature": signature, "Content-Type": FORM}}


def stream_url(xml: str, path: str) -> str:
    element = ET.fromstring(xml.split("?>", 1)[1]).find(path)
    assert element is not None
    return element.attrib.get("url") or element.text or ""


async def test_a_signed_twilio_webhook_creates_the_agents_call_and_returns_twiml(api: Api) -> None:
    agent_id = await agent(api)
    await api.configure("twilio", callCreationAllowedAgentIds=[agent_id], requestContextMapping={"From": "user.phone_number"})
    hook = await api.call("POST", "/api/webhooks", json={"url": "https://hooks.example.com/v", "events": ["call.started"]})
    assert hook.status_code == 201, hook.text
    url = f"http://test/api/agents/{agent_id}/telephony_xml"
    r = await api.client.post(url, **twilio_post(url, CALLER))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/xml")
    [call] = (await api.call("GET", f"/api/agents/{agent_id}/calls")).json()["results"]
    assert stream_url(r.text, "Connect/Stream") == call["joinUrl"]
    assert call["systemPrompt"] == "You answer the phone. The caller's number is +15551234567."
    assert call["medium"] == {"twilio": {}} and call["agentId"] == agent_id
    carrier_call = await api.svc.phone.store.get_call(call["callId"])
    assert carrier_call is not None and (carrier_call.direction, carrier_call.carrier_call_id) == ("incoming", "CAincoming0001")
    await api.svc.platform.deliveries.run_once()
    assert [(e, json.loads(b.content)["call"]["callId"]) for (_, e), b in zip(api.webhooks.events(), api.webhooks.requests)] == [
        ("call.started", call["callId"])]
    api.carrier.routes[TWILIO_CALLS.replace(".json", "/CAincoming0001.json")] = lambda seen: (200, {}, b"{}")
    await end(api, call["callId"], "agent_hangup")  # the agent hung up: voxcall ends the Twilio call too
    assert [s.body for s in api.requests(TWILIO_CALLS.replace(".json", "/CAincoming0001.json"))] == [b"Status=completed"]


async def test_bad_unsigned_and_misconfigured_requests_are_refused_with_the_reason(api: Api) -> None:
    agent_id = await agent(api)
    url = f"http://test/api/agents/{agent_id}/telephony_xml"
    unsigned = await api.client.post(url, content=urlencode(CALLER).encode(), headers={"Content-Type": FORM})
    assert unsigned.status_code == 403 and unsigned.json()["detail"].startswith("Unsigned request")
    no_config = await api.client.post(url, **twilio_post(url, CALLER))
    assert no_config.status_code == 403 and "POST /api/telephony_configs/twilio first" in no_config.json()["detail"]
    await api.configure("twilio", requestContextMapping={"From": "user.phone_number"})
    not_allowed = await api.client.post(url, **twilio_post(url, CALLER))
    assert not_allowed.status_code == 403 and "callCreationAllowedAgentIds" in not_allowed.json()["detail"]
    await api.call("PATCH", "/api/telephony_configs/twilio", json={"callCreationAllowAllAgents": True})
    wrong_token = await api.client.post(url, **twilio_post(url, CALLER, token="not-the-auth-token"))
    assert wrong_token.status_code == 403 and "X-Twilio-Signature does not match" in wrong_token.json()["detail"]
    signed = twilio_post(url, CALLER)
    tampered = await api.client.post(url, content=signed["content"] + b"&From=%2B19990000000", headers=signed["headers"])
    assert tampered.status_code == 403
    elsewhere = f"http://test/api/agents/{await agent(api, who='b')}/telephony_xml"  # account b has no Twilio config
    assert (await api.client.post(elsewhere, **twilio_post(elsewhere, CALLER))).status_code == 403
    unknown = "http://test/api/agents/7c1e3c4e-0000-4000-8000-000000000000/telephony_xml"
    assert (await api.client.post(unknown, **twilio_post(unknown, CALLER))).status_code == 404
    assert (await api.call("GET", "/api/calls")).json()["total"] == 0  # none of these created a call
    ok = await api.client.post(url, **signed)
    assert ok.status_code == 200 and (await api.call("GET", "/api/calls")).json()["total"] == 1


async def test_a_missing_template_variable_is_a_clear_422(api: Api) -> None:
    agent_id = await agent(api)
    await api.configure("twilio", callCreationAllowAllAgents=True)  # no requestContextMapping: user.phone_number is absent
    url = f"http://test/api/agents/{agent_id}/telephony_xml"
    r = await api.client.post(url, **twilio_post(url, CALLER))
    assert r.status_code == 422 and "user.phone_number" in json.dumps(r.json())


async def test_telnyx_webhooks_are_checked_with_the_public_key(api: Api) -> None:
    agent_id = await agent(api, {**TEMPLATE, "medium": {"telnyx": {"dtmfHandling": {"ignore": True}}}})
    await api.configure("telnyx", callCreationAllowAllAgents=True, requestContextMapping={"From": "user.phone_number"})
    url = f"/api/agents/{agent_id}/telephony_xml"
    body = urlencode({"AccountSid": TELNYX["accountSid"], "CallSid": "v3:incoming-telnyx", "From": "+35319605860",
                      "To": "+13129457420", "CallStatus": "ringing"}).encode()
    timestamp = str(int(time.time()))
    signature = base64.b64encode(TELNYX_KEY.sign(timestamp.encode() + b"|" + body)).decode()
    headers = {"telnyx-signature-ed25519": signature, "telnyx-timestamp": timestamp, "Content-Type": FORM}
    r = await api.client.post(url, content=body, headers=headers)
    assert r.status_code == 200, r.text
    [call] = (await api.call("GET", "/api/calls")).json()["results"]
    assert stream_url(r.text, "Connect/Stream") == call["joinUrl"]
    assert call["medium"] == {"telnyx": {"dtmfHandling": {"ignore": True}}}  # the template's carrier settings are kept
    assert (await api.svc.phone.store.get_call(call["callId"])).carrier_call_id == "v3:incoming-telnyx"  # type: ignore[union-attr]
    stale = str(int(time.time()) - 600)
    old = base64.b64encode(TELNYX_KEY.sign(stale.encode() + b"|" + body)).decode()
    replayed = await api.client.post(url, content=body, headers={**headers, "telnyx-signature-ed25519": old,
                                                                  "telnyx-timestamp": stale})
    assert replayed.status_code == 403 and "away from now" in replayed.json()["detail"]


async def test_plivo_webhooks_are_checked_with_the_v3_signature(api: Api) -> None:
    agent_id = await agent(api)
    await api.configure("plivo", callCreationAllowedAgentIds=[agent_id], requestContextMapping={"From": "user.phone_number"})
    url = f"http://test/api/agents/{agent_id}/telephony_xml?tenant=blue"
    fields = {"CallUUID": "plivo-in-1", "From": "14155551234", "To": "14155550000", "Direction": "inbound"}
    nonce = "12345678901234567890"
    signature = get_signature_v3(PLIVO["authToken"].encode(), construct_post_url(url, dict(fields)).decode(), nonce.encode())
    headers = {"X-Plivo-Signature-V3": signature.decode(), "X-Plivo-Signature-V3-Nonce": nonce, "Content-Type": FORM}
    r = await api.client.post(url, content=urlencode(fields).encode(), headers=headers)
    assert r.status_code == 200, r.text
    [call] = (await api.call("GET", "/api/calls")).json()["results"]
    assert stream_url(r.text, "Stream") == call["joinUrl"] and call["systemPrompt"].endswith("is 14155551234.")
    other_nonce = await api.client.post(url, content=urlencode(fields).encode(),
                                        headers={**headers, "X-Plivo-Signature-V3-Nonce": "1"})
    assert other_nonce.status_code == 403


async def test_behind_a_proxy_the_signature_covers_the_public_url(tmp_path: Path, carriers: ToolServer) -> None:
    receiver = Receiver()
    svc = await open_services(tmp_path, carriers, receiver, public_url="https://voice.example.com")
    async with serving(svc, carriers, receiver) as api:
        agent_id = await agent(api)
        await api.configure("twilio", callCreationAllowAllAgents=True, requestContextMapping={"From": "user.phone_number"})
        path = f"/api/agents/{agent_id}/telephony_xml"
        internal = await api.client.post(path, **twilio_post(f"http://test{path}", CALLER))
        assert internal.status_code == 403
        public = await api.client.post(path, **twilio_post(f"https://voice.example.com{path}", CALLER))
        assert public.status_code == 200, public.text
        assert stream_url(public.text, "Connect/Stream").startswith("wss://voice.example.com/calls/")


@pytest.mark.parametrize(("fields", "mapping", "context"), [
    ({"From": "+1555", "To": "+1666"}, {"From": "user.phone_number", "To": "agent.line"},
     {"user": {"phone_number": "+1555"}, "agent": {"line": "+1666"}}),
    ({"From": "+1555"}, {"From": "caller", "Missing": "x.y"}, {"caller": "+1555"}),
    ({"data": {"payload": {"from": "+1777"}}}, {"data.payload.from": "user.phone"}, {"user": {"phone": "+1777"}}),
    ({"a.b": "flat", "a": {"b": "nested"}}, {"a.b": "v"}, {"v": "flat"}),
    ({"From": "+1", "City": "Oslo"}, {"From": "user", "City": "user.city"}, {"user": {"city": "Oslo"}}),
])
def test_request_context_mapping(fields: dict[str, Any], mapping: dict[str, str], context: dict[str, Any]) -> None:
    assert map_context(fields, mapping) == context
