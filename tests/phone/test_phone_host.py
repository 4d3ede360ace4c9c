"""A phone call that voxcall placed, hosted for real (uvicorn on 127.0.0.1, the call host): the agent's hangUp and
leaveVoicemail end the call, and voxcall then hangs up at the fake Twilio.

The scripted LLM answers the agent's greeting with a built-in tool call. The test joins
the call's joinUrl as the carrier would: with Twilio's `connected` and `start` first when
the join URL is a carrier one (`/telephony/`), else plainly (a serverWebSocket join URL).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.phone.conftest import TWILIO, answer_json, basic, form
from tests.server.inprocess import build_services, serving
from tests.toolserver import ToolServer
from voxcall.providers.base import ToolCall
from voxcall.providers.fake import ScriptedLLM

CALLS = f"/2010-04-01/Accounts/{TWILIO['accountSid']}/Calls.json"
START = {"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {
    "streamSid": "MZ1", "accountSid": TWILIO["accountSid"], "callSid": "CAhosted", "tracks": ["inbound"],
    "customParameters": {}, "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}


async def join_as_the_carrier(join_url: str, timeout: float = 15) -> None:
    """Open the join URL like the carrier does and read until the server closes it."""
    async with websockets.connect(join_url) as ws:
        if "/telephony/" in join_url:
            await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            await ws.send(json.dumps(START))
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(timeout):
                while True:
                    await ws.recv()


@pytest.mark.parametrize("tool", ["hangUp", "leaveVoicemail"])
async def test_the_agent_ending_a_placed_call_hangs_up_at_twilio(tmp_path: Path, tool: str) -> None:
    arguments: dict[str, Any] = {"message": "Sorry I missed you, call back anytime."} if tool == "leaveVoicemail" else {}
    llm = ScriptedLLM([[ToolCall("t1", tool, arguments)]])
    with ToolServer() as twilio:
        twilio.routes[CALLS] = lambda seen: answer_json(201, {"sid": "CAhosted"})
        twilio.routes[CALLS.replace(".json", "/CAhosted.json")] = lambda seen: answer_json(200, {"status": "completed"})
        svc = await build_services(tmp_path, llm, twilio_api_url=twilio.url)
        async with serving(svc) as srv:
            async with httpx.AsyncClient(headers={"X-API-Key": srv.key}, timeout=10) as client:
                r = await client.post(f"{srv.api}/telephony_configs/twilio", json=TWILIO)
                assert r.status_code == 201, r.text
            call = await srv.create_call({
                "systemPrompt": "You call people.", "firstSpeakerSettings": {"agent": {}},
                "initialOutputMedium": "MESSAGE_MEDIUM_TEXT", "selectedTools": [{"toolName": tool}],
                "medium": {"twilio": {"outgoing": {"to": "+15551230000", "from": "+15559870000"}}}})
            await join_as_the_carrier(call["joinUrl"])
            for _ in range(100):
                if (await srv.get_call(call["callId"]))["ended"] and [s for s in twilio.seen if s.path != CALLS]:
                    break
                await asyncio.sleep(0.05)
            assert (await srv.get_call(call["callId"]))["endReason"] == "agent_hangup"
        hang_ups = [s for s in twilio.seen if s.path == CALLS.replace(".json", "/CAhosted.json")]
        assert [(s.method, form(s)) for s in hang_ups] == [("POST", {"Status": ["completed"]})]
        assert hang_ups[0].headers["authorization"] == basic(TWILIO["accountSid"], TWILIO["authToken"])
