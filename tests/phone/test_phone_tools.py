"""The phone built-ins: leaveVoicemail (engine) and coldTransfer (Twilio REST, against a fake Twilio on 127.0.0.1)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from pydantic import BaseModel

from tests.engine.test_call import USER_FIRST, Harness
from tests.phone.conftest import TWILIO, Api, answer_json, basic, form
from tests.phone.test_outgoing import TWILIO_CALLS, create, end, outgoing
from voxcall.engine.call import Call
from voxcall.engine.spec import CallSpec, ToolDef
from voxcall.engine.tool_params import ToolContext
from voxcall.engine.tools import HangUp, ToolRunner
from voxcall.protocol.realtime import UserTextMessage
from voxcall.protocol.rest import CallMessage, StartCallRequest
from voxcall.providers.base import TextDelta, ToolCall
from voxcall.providers.fake import ScriptedLLM
from voxcall.server.call_tools import build_call_tools, tool_def
from voxcall.server.tools import tool_executors

MESSAGE = "Hi, this is Ana from the clinic. Please call us back."


def built_in(name: str, **selected: Any) -> ToolDef:
    request = StartCallRequest.model_validate({"selectedTools": [{"toolName": name, **selected}]})
    return tool_def(build_call_tools(request)[0])


async def test_the_phone_built_ins_are_public_tools(api: Api) -> None:
    listed = (await api.call("GET", "/api/tools", params={"ownership": "public"})).json()["results"]
    tools = {t["name"]: t for t in listed}
    assert {"hangUp", "coldTransfer", "leaveVoicemail"} <= set(tools)
    voicemail = tools["leaveVoicemail"]["definition"]
    assert [(p["name"], p["required"]) for p in voicemail["dynamicParameters"]] == [("message", True)]
    assert {p["name"]: p["value"] for p in voicemail["staticParameters"]} == {"strict": True, "result": "[Leaving voicemail...]"}
    assert tools["coldTransfer"]["definition"]["requirements"] == {"requiredParameterOverrides": ["target"]}
    assert tools["coldTransfer"]["ownership"] == "public"


async def test_cold_transfer_needs_a_target_override(api: Api) -> None:
    r = await api.call("POST", "/api/calls", json={"selectedTools": [{"toolName": "coldTransfer"}]})
    assert r.status_code == 422 and "requires parameterOverrides for: target" in r.json()["detail"][0]["msg"]
    ok = await api.call("POST", "/api/calls", json={"selectedTools": [
        {"toolName": "coldTransfer", "parameterOverrides": {"target": "+15550001111"}}, {"toolName": "leaveVoicemail"}]})
    assert ok.status_code == 201, ok.text
    names = [t["name"] for t in (await api.call("GET", f"/api/calls/{ok.json()['callId']}/tools")).json()]
    assert names == ["coldTransfer", "leaveVoicemail"]


def voicemail_call(llm: ScriptedLLM, tool: ToolDef) -> Harness:
    return Harness(CallSpec(call_id="c1", greeting=USER_FIRST, tools=(tool,)), llm).start()


async def test_leave_voicemail_says_the_message_then_ends_the_call() -> None:
    h = voicemail_call(ScriptedLLM([[ToolCall("v1", "leaveVoicemail", {"message": MESSAGE})]]), built_in("leaveVoicemail"))
    h.call.receive(UserTextMessage(text="You have reached the voicemail of Bob. Leave a message after the tone."))
    assert await h.finish() == "agent_hangup"
    assert h.finals()[-1].text == MESSAGE
    results = [r for r in h.records if isinstance(r, CallMessage) and r.role == "MESSAGE_ROLE_TOOL_RESULT"]
    assert [(r.tool_name, r.text) for r in results] == [("leaveVoicemail", "[Leaving voicemail...]")]


async def test_leave_voicemail_result_override_and_a_missing_message() -> None:
    tool = built_in("leaveVoicemail", parameterOverrides={"result": "Voicemail left."})
    outcome = await ToolRunner((tool,), _nowhere).run(ToolCall("v1", "leaveVoicemail", {"message": "Bye."}), _context("c1"))
    assert (outcome.result, outcome.reaction, outcome.control) == ("Voicemail left.", "listens", HangUp("Bye.", strict=True))
    llm = ScriptedLLM([[ToolCall("v1", "leaveVoicemail", {})], [TextDelta("Sorry, what should I say?")]])
    h = voicemail_call(llm, built_in("leaveVoicemail"))
    h.call.receive(UserTextMessage(text="Beep."))
    await h.until(lambda: bool(h.finals()))
    assert h.finals()[-1].text == "Sorry, what should I say?"  # no message, no hang-up: the call goes on
    assert llm.calls[1].messages[-1].content == "The tool leaveVoicemail needs the message to leave."
    h.call.end("hangup")
    assert await h.finish() == "hangup"


async def _nowhere(message: BaseModel) -> None:
    pass


def _context(call_id: str) -> ToolContext:
    return ToolContext(call_id=call_id, call_stage_id=call_id)


# ---------------------------------------------------------------------- coldTransfer with Twilio


class ExecutorHarness(Harness):
    """test_call's harness with the server's tool executors (coldTransfer among them)."""

    def __init__(self, spec: CallSpec, llm: ScriptedLLM, executors: dict[str, Any]) -> None:
        self.sent, self.records, self.task = [], [], None
        self.call = Call(spec, llm, send=self._send, record=self._record, tool_executors=executors)


async def twilio_call(api: Api, sid: str = "CAxfer0001") -> tuple[str, str]:
    await api.configure("twilio")
    api.carrier.routes[TWILIO_CALLS] = lambda seen: answer_json(201, {"sid": sid})
    live = TWILIO_CALLS.replace(".json", f"/{sid}.json")
    api.carrier.routes[live] = lambda seen: answer_json(200, {"sid": sid, "status": "in-progress"})
    return (await create(api, outgoing("twilio")))["callId"], live


async def test_cold_transfer_redirects_the_twilio_call_and_the_agent_hangs_up(api: Api) -> None:
    call_id, live = await twilio_call(api)
    tool = built_in("coldTransfer", parameterOverrides={"target": "+15550001111", "from": "+15559870000"})
    llm = ScriptedLLM([[TextDelta("Let me put you through."), ToolCall("x1", "coldTransfer", {})]])
    engine = ExecutorHarness(CallSpec(call_id=call_id, greeting=USER_FIRST, tools=(tool,)), llm, tool_executors(api.svc)).start()
    engine.call.receive(UserTextMessage(text="Can I talk to a person?"))
    assert await engine.finish() == "agent_hangup"
    [redirect] = api.requests(live)
    assert redirect.method == "POST" and redirect.headers["authorization"] == basic(TWILIO["accountSid"], TWILIO["authToken"])
    assert set(form(redirect)) == {"Twiml"}
    dial = ET.fromstring(form(redirect)["Twiml"][0].split("?>", 1)[1]).find("Dial")
    assert dial is not None and dial.attrib == {"callerId": "+15559870000"}
    assert [(c.tag, c.text) for c in dial] == [("Number", "+15550001111")]
    assert (await api.svc.phone.store.get_call(call_id)).state == "transferred"  # type: ignore[union-attr]
    await end(api, call_id, "agent_hangup")
    assert len(api.requests(live)) == 1  # the transferred call is not hung up
    assert [e["type"] for e in await api.events(call_id) if e["type"].startswith("carrier_transfer")] == ["carrier_transfer"]


async def test_cold_transfer_to_a_sip_uri_with_headers(api: Api) -> None:
    call_id, live = await twilio_call(api)
    tool = built_in("coldTransfer", parameterOverrides={"target": "sip:desk@pbx.example.com", "username": "u",
                                                        "password": "p", "extraHeaders": {"X-Case": "42"}})
    outcome = await ToolRunner((tool,), _nowhere, tool_executors(api.svc)).run(ToolCall("x1", "coldTransfer", {}), _context(call_id))
    assert isinstance(outcome.control, HangUp) and outcome.error is None
    sip = ET.fromstring(form(api.requests(live)[0])["Twiml"][0].split("?>", 1)[1]).find("Dial/Sip")
    assert sip is not None and sip.text == "sip:desk@pbx.example.com?X-Case=42" and sip.attrib == {"username": "u", "password": "p"}


async def test_a_refused_transfer_keeps_the_caller_with_the_agent(api: Api) -> None:
    call_id, live = await twilio_call(api)
    api.carrier.routes[live] = lambda seen: answer_json(400, {"code": 13223, "message": "Dial: Invalid phone number format"})
    tool = built_in("coldTransfer", parameterOverrides={"target": "12"})
    outcome = await ToolRunner((tool,), _nowhere, tool_executors(api.svc)).run(ToolCall("x1", "coldTransfer", {}), _context(call_id))
    assert outcome.control is None and outcome.result == "The transfer did not work; the caller is still with you."
    assert outcome.reaction == "speaks"  # the agent tells the caller
    assert outcome.error == "Twilio answered 400: Dial: Invalid phone number format (code 13223)"
    assert (await api.svc.phone.store.get_call(call_id)).state == "placed"  # type: ignore[union-attr]
    assert any(e["type"] == "carrier_transfer_failed" for e in await api.events(call_id))
    api.carrier.routes[live] = lambda seen: answer_json(200, {})
    await end(api, call_id, "agent_hangup")
    assert form(api.requests(live)[-1]) == {"Status": ["completed"]}  # still ours: hung up at the end


async def test_cold_transfer_outside_twilio_calls_is_a_failure_for_the_model(api: Api) -> None:
    tool = built_in("coldTransfer", parameterOverrides={"target": "+15550001111"})
    plain = (await api.call("POST", "/api/calls", json={})).json()["callId"]
    outcome = await ToolRunner((tool,), _nowhere, tool_executors(api.svc)).run(ToolCall("x1", "coldTransfer", {}), _context(plain))
    assert outcome.result == "This call cannot be transferred." and outcome.control is None
    assert outcome.error is not None and "Twilio call that voxcall placed" in outcome.error
    await api.configure("plivo")
    api.carrier.routes["/v1/Account/MAXXXXXXXXXXXXXXXXXX/Call/"] = lambda seen: answer_json(201, {"request_uuid": "r1"})
    plivo = (await create(api, outgoing("plivo")))["callId"]
    outcome = await ToolRunner((tool,), _nowhere, tool_executors(api.svc)).run(ToolCall("x1", "coldTransfer", {}), _context(plivo))
    assert outcome.error == "cold transfer works with Twilio only; this is a plivo call"
