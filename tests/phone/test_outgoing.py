"""Outgoing calls (`medium.<carrier>.outgoing`) against fake carrier REST APIs on 127.0.0.1, in process.

Checked at the fake carrier: the exact requests voxcall makes (method, path, auth, fields)
to place a call and to hang it up; and in voxcall: how a refusal, an unreachable carrier
and a stream that never connects end the call, and the events they leave.
"""

from __future__ import annotations

import asyncio
import base64
import time
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode, urlsplit

from plivo.utils.signature_v3 import construct_post_url, get_signature_v3

from tests.conftest import free_port
from tests.phone.conftest import (
    PLIVO,
    TELNYX,
    TELNYX_KEY,
    TWILIO,
    Api,
    answer_json,
    basic,
    form,
)
from voxcall.config import Settings
from voxcall.providers.fake import ScriptedLLM
from voxcall.server.app import build_services

TWILIO_CALLS = f"/2010-04-01/Accounts/{TWILIO['accountSid']}/Calls.json"
TELNYX_CALLS = f"/v2/texml/Accounts/{TELNYX['accountSid']}/Calls"
PLIVO_CALLS = f"/v1/Account/{PLIVO['authId']}/Call/"


def outgoing(carrier: str, **extra: Any) -> dict[str, Any]:
    return {"systemPrompt": "You call people.", "firstSpeakerSettings": {"user": {}},
            "medium": {carrier: {"outgoing": {"to": "+15551230000", "from": "+15559870000", **extra}}}}


def twilio_accepts(api: Api, sid: str = "CA0000feed") -> None:
    api.carrier.routes[TWILIO_CALLS] = lambda seen: answer_json(201, {"sid": sid, "status": "queued", "to": "+15551230000"})
    api.carrier.routes[TWILIO_CALLS.replace(".json", f"/{sid}.json")] = lambda seen: answer_json(200, {"sid": sid, "status": "completed"})


async def create(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    r = await api.call("POST", "/api/calls", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def end(api: Api, call_id: str, reason: str) -> None:
    """End a call the way the call host does: store the end, then run the end hooks."""
    from datetime import UTC, datetime

    assert await api.svc.store.mark_ended(call_id, reason=reason, at=datetime.now(UTC))
    await api.svc.notify_ended(call_id, reason)


async def test_twilio_places_the_call_with_inline_twiml_and_the_additional_params(api: Api) -> None:
    await api.configure("twilio")
    twilio_accepts(api)
    call = await create(api, outgoing("twilio", additionalParams={
        "statusCallback": "https://example.com/status", "statusCallbackEvent": ["initiated", "answered"],
        "record": True, "MachineDetection": "Enable"}))
    assert call["ended"] is None and call["medium"]["twilio"]["outgoing"]["to"] == "+15551230000"
    [seen] = api.requests(TWILIO_CALLS)
    assert seen.method == "POST" and seen.headers["authorization"] == basic(TWILIO["accountSid"], TWILIO["authToken"])
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    fields = form(seen)
    assert set(fields) == {"To", "From", "Twiml", "StatusCallback", "StatusCallbackEvent", "Record", "MachineDetection"}
    assert fields["To"] == ["+15551230000"] and fields["From"] == ["+15559870000"]
    assert fields["StatusCallback"] == ["https://example.com/status"] and fields["Record"] == ["true"]
    assert fields["StatusCallbackEvent"] == ["initiated", "answered"] and fields["MachineDetection"] == ["Enable"]
    stream = ET.fromstring(fields["Twiml"][0].split("?>", 1)[1]).find("Connect/Stream")
    assert stream is not None and stream.attrib["url"] == call["joinUrl"]
    placed = [e for e in await api.events(call["callId"]) if e["type"] == "carrier_call_placed"]
    assert len(placed) == 1 and "CA0000feed" in placed[0]["text"]
    assert (await api.svc.phone.store.get_call(call["callId"])).carrier_call_id == "CA0000feed"  # type: ignore[union-attr]


async def test_a_refusal_ends_the_call_and_records_the_carriers_error(api: Api) -> None:
    await api.configure("twilio")
    api.carrier.routes[TWILIO_CALLS] = lambda seen: answer_json(400, {
        "code": 21211, "message": "The 'To' number +15551230000 is not a valid phone number.", "status": 400})
    call = await create(api, outgoing("twilio"))
    assert call["endReason"] == "connection_error" and call["ended"] is not None
    stored = (await api.call("GET", f"/api/calls/{call['callId']}")).json()
    assert stored["endReason"] == "connection_error"
    [event] = [e for e in await api.events(call["callId"]) if e["type"].startswith("carrier_")]
    assert event["type"] == "carrier_refused" and event["severity"] == "error"
    assert event["text"] == "Twilio answered 400: The 'To' number +15551230000 is not a valid phone number. (code 21211)"
    assert event["extras"]["status"] == 400 and event["extras"]["response"]["code"] == 21211
    await asyncio.sleep(0.05)
    assert [s.path for s in api.carrier.seen] == [TWILIO_CALLS]  # nothing to hang up: the carrier never placed it


async def test_an_unreachable_carrier_ends_the_call(tmp_path: Any) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    settings = Settings(data_dir=tmp_path, speech=False, twilio_api_url=closed, carrier_timeout=3)
    svc = await build_services(settings, llm=ScriptedLLM([]), speech=None)
    try:
        import httpx

        from voxcall.server.app import create_app

        key, _ = await svc.store.create_api_key(account_id="acct-a")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services=svc)), base_url="http://test",
                                     headers={"X-API-Key": key}) as client:
            assert (await client.post("/api/telephony_configs/twilio", json=TWILIO)).status_code == 201
            call = (await client.post("/api/calls", json=outgoing("twilio"))).json()
            events = (await client.get(f"/api/calls/{call['callId']}/events")).json()["results"]
    finally:
        await svc.close()
    assert call["endReason"] == "connection_error"
    [event] = [e for e in events if e["type"] == "carrier_unreachable"]
    assert event["text"].startswith(f"could not reach Twilio at {closed}/2010-04-01/Accounts/") and "ConnectError" in event["text"]
    assert event["extras"]["status"] is None


async def test_without_credentials_or_a_number_nothing_is_created(api: Api) -> None:
    r = await api.call("POST", "/api/calls", json=outgoing("plivo"))
    assert r.status_code == 422
    [problem] = r.json()["detail"]
    assert problem["loc"] == ["body", "medium", "plivo", "outgoing"] and "POST /api/telephony_configs/plivo" in problem["msg"]
    await api.configure("twilio")
    no_to = await api.call("POST", "/api/calls", json={"medium": {"twilio": {"outgoing": {"from": "+1555"}}}})
    assert no_to.status_code == 422 and no_to.json()["detail"][0]["loc"] == ["body", "medium", "twilio", "outgoing", "to"]
    assert (await api.call("GET", "/api/calls")).json()["total"] == 0 and api.carrier.seen == []
    other = await api.call("POST", "/api/calls", "b", json=outgoing("twilio"))  # the config is account a's
    assert other.status_code == 422


async def test_voxcall_hangs_up_at_twilio_when_it_ends_the_call_but_not_when_the_caller_did(api: Api) -> None:
    await api.configure("twilio")
    twilio_accepts(api)
    hang_up = TWILIO_CALLS.replace(".json", "/CA0000feed.json")
    first = await create(api, outgoing("twilio"))
    await end(api, first["callId"], "agent_hangup")
    [seen] = api.requests(hang_up)
    assert seen.method == "POST" and form(seen) == {"Status": ["completed"]}
    assert seen.headers["authorization"] == basic(TWILIO["accountSid"], TWILIO["authToken"])
    assert any(e["type"] == "carrier_hang_up" for e in await api.events(first["callId"]))
    await api.svc.notify_ended(first["callId"], "agent_hangup")  # a second end hook run tells the carrier nothing
    second = await create(api, outgoing("twilio"))
    await end(api, second["callId"], "hangup")  # the far end hung up: its call is over already
    assert len(api.requests(hang_up)) == 1


async def test_a_stream_that_never_connects_ends_the_call_unjoined_and_the_carrier_call_too(api: Api) -> None:
    await api.configure("twilio")
    twilio_accepts(api, sid="CA00000late")
    call = await create(api, {**outgoing("twilio"), "joinTimeout": "0.3s"})
    hang_up = TWILIO_CALLS.replace(".json", "/CA00000late.json")
    for _ in range(100):
        if api.requests(hang_up):
            break
        await asyncio.sleep(0.05)
    assert [form(s) for s in api.requests(hang_up)] == [{"Status": ["completed"]}]
    got = (await api.call("GET", f"/api/calls/{call['callId']}")).json()
    assert got["endReason"] == "unjoined"
    kinds = [e["type"] for e in await api.events(call["callId"])]
    assert kinds.index("carrier_no_media") < kinds.index("carrier_hang_up")


async def test_a_failing_hang_up_is_a_warning_event(api: Api) -> None:
    await api.configure("twilio")
    api.carrier.routes[TWILIO_CALLS] = lambda seen: answer_json(201, {"sid": "CAgone"})
    api.carrier.routes[TWILIO_CALLS.replace(".json", "/CAgone.json")] = lambda seen: answer_json(
        400, {"code": 21220, "message": "Call is not in-progress. Cannot redirect."})
    call = await create(api, outgoing("twilio"))
    await end(api, call["callId"], "timeout")
    [event] = [e for e in await api.events(call["callId"]) if e["type"] == "carrier_hang_up_failed"]
    assert event["severity"] == "warning" and "Call is not in-progress" in event["text"]


# ---------------------------------------------------------------------- Telnyx and Plivo fetch the XML


def answer_path(url: str) -> str:
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.netloc == "test"  # the join URL's host, as HTTP
    return parts.path


def telnyx_signed(body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    signature = base64.b64encode(TELNYX_KEY.sign(timestamp.encode() + b"|" + body)).decode()
    return {"telnyx-signature-ed25519": signature, "telnyx-timestamp": timestamp,
            "Content-Type": "application/x-www-form-urlencoded"}


async def test_telnyx_places_a_texml_call_that_fetches_the_stream_from_voxcall(api: Api) -> None:
    await api.configure("telnyx")
    api.carrier.routes[TELNYX_CALLS] = lambda seen: answer_json(200, {"from": "+15559870000", "to": "+15551230000",
                                                                      "status": "queued"})
    call = await create(api, outgoing("telnyx", additionalParams={"statusCallback": "https://example.com/s", "Timeout": 20}))
    [seen] = api.requests(TELNYX_CALLS)
    assert seen.method == "POST" and seen.headers["authorization"] == f"Bearer {TELNYX['apiKey']}"
    body = seen.json()
    assert set(body) == {"ApplicationSid", "To", "From", "Url", "UrlMethod", "StatusCallback", "Timeout"}
    assert (body["ApplicationSid"], body["To"], body["From"], body["UrlMethod"]) == (
        TELNYX["applicationSid"], "+15551230000", "+15559870000", "POST")
    assert body["StatusCallback"] == "https://example.com/s" and body["Timeout"] == 20
    path = answer_path(body["Url"])
    fields = urlencode({"AccountSid": TELNYX["accountSid"], "CallSid": "v3:answered-1", "CallStatus": "in-progress"}).encode()
    xml = await api.client.post(path, content=fields, headers=telnyx_signed(fields))
    assert xml.status_code == 200 and xml.headers["content-type"].startswith("text/xml")
    stream = ET.fromstring(xml.text.split("?>", 1)[1]).find("Connect/Stream")
    assert stream is not None and stream.attrib["url"] == call["joinUrl"] and stream.attrib["codec"] == "L16"
    assert (await api.svc.phone.store.get_call(call["callId"])).carrier_call_id == "v3:answered-1"  # type: ignore[union-attr]
    forged = await api.client.post(path, content=fields + b"&x=1", headers=telnyx_signed(fields))
    assert forged.status_code == 403 and "telnyx-signature-ed25519 does not match" in forged.json()["detail"]
    unsigned = await api.client.post(path, content=fields, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert unsigned.status_code == 403 and "unsigned" in unsigned.json()["detail"]
    wrong_token = await api.client.post(path.rsplit("/", 1)[0] + "/1.bad", content=fields, headers=telnyx_signed(fields))
    assert wrong_token.status_code == 403 and "invalid join token" in wrong_token.json()["detail"]
    api.carrier.routes[f"{TELNYX_CALLS}/v3:answered-1"] = lambda seen: answer_json(200, {"status": "completed"})
    await end(api, call["callId"], "agent_hangup")
    [hang_up] = api.requests(f"{TELNYX_CALLS}/v3:answered-1")
    assert hang_up.method == "POST" and form(hang_up) == {"Status": ["completed"]}
    assert hang_up.headers["authorization"] == f"Bearer {TELNYX['apiKey']}"
    late = await api.client.post(path, content=fields, headers=telnyx_signed(fields))
    assert late.status_code == 200 and "<Hangup/>" in late.text  # the call is over: the carrier is told to hang up


def plivo_signed(url: str, params: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    nonce = "05429567804466091622"
    signature = get_signature_v3(PLIVO["authToken"].encode(), construct_post_url(url, dict(params)).decode(), nonce.encode())
    return urlencode(params).encode(), {"X-Plivo-Signature-V3": signature.decode(), "X-Plivo-Signature-V3-Nonce": nonce,
                                        "Content-Type": "application/x-www-form-urlencoded"}


async def test_plivo_places_a_call_whose_answer_url_returns_the_stream(api: Api) -> None:
    await api.configure("plivo")
    api.carrier.routes[PLIVO_CALLS] = lambda seen: answer_json(201, {"api_id": "97ceeb52", "message": "call fired",
                                                                     "request_uuid": "75cfe1a1-ringing"})
    call = await create(api, outgoing("plivo", additionalParams={"ringTimeout": 30, "hangup_url": "https://example.com/h"}))
    [seen] = api.requests(PLIVO_CALLS)
    assert seen.method == "POST" and seen.headers["authorization"] == basic(PLIVO["authId"], PLIVO["authToken"])
    body = seen.json()
    assert set(body) == {"from", "to", "answer_url", "answer_method", "ring_timeout", "hangup_url"}
    assert (body["from"], body["to"], body["answer_method"], body["ring_timeout"]) == ("+15559870000", "+15551230000", "POST", 30)
    path = answer_path(body["answer_url"])
    content, headers = plivo_signed(body["answer_url"], {"CallUUID": "c-answered", "From": "15559870000", "Direction": "outbound"})
    xml = await api.client.post(path, content=content, headers=headers)
    assert xml.status_code == 200, xml.text
    stream = ET.fromstring(xml.text.split("?>", 1)[1]).find("Stream")
    assert stream is not None and stream.text == call["joinUrl"]
    bad_content, bad_headers = plivo_signed(body["answer_url"], {"CallUUID": "c-answered"})
    forged = await api.client.post(path, content=content, headers=bad_headers)
    assert forged.status_code == 403 and bad_content != content
    api.carrier.routes[f"/v1/Account/{PLIVO['authId']}/Call/c-answered/"] = lambda seen: (204, {}, b"")
    await end(api, call["callId"], "agent_hangup")
    [hang_up] = api.requests(f"/v1/Account/{PLIVO['authId']}/Call/c-answered/")
    assert hang_up.method == "DELETE" and hang_up.headers["authorization"] == basic(PLIVO["authId"], PLIVO["authToken"])


async def test_plivo_cancels_a_call_that_is_still_ringing_by_its_request_id(api: Api) -> None:
    await api.configure("plivo")
    api.carrier.routes[PLIVO_CALLS] = lambda seen: answer_json(201, {"request_uuid": "r-ringing"})
    api.carrier.routes[f"/v1/Account/{PLIVO['authId']}/Request/r-ringing/"] = lambda seen: (204, {}, b"")
    call = await create(api, outgoing("plivo"))
    await end(api, call["callId"], "system_error")
    [cancel] = api.requests(f"/v1/Account/{PLIVO['authId']}/Request/r-ringing/")
    assert cancel.method == "DELETE"


async def test_deleting_a_ringing_call_hangs_it_up_at_the_carrier(api: Api) -> None:
    await api.configure("twilio")
    twilio_accepts(api, sid="CAdeleted")
    call = await create(api, outgoing("twilio"))
    assert (await api.call("DELETE", f"/api/calls/{call['callId']}")).status_code == 204
    assert [form(s) for s in api.requests(TWILIO_CALLS.replace(".json", "/CAdeleted.json"))] == [{"Status": ["completed"]}]
    assert await api.svc.phone.store.get_call(call["callId"]) is None  # gone with the call
