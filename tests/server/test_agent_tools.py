"""Client tool round trip with the embedded default model (Qwen2.5-Coder-1.5B) over a real server."""

from __future__ import annotations

import json

import websockets

from tests.conftest import RunningServer
from tests.server.wire import Wire, create_call, get, wait_for_end

WEATHER_TOOL = {"temporaryTool": {
    "modelToolName": "getWeather", "description": "Get the current weather for a city.", "client": {},
    "dynamicParameters": [{"name": "city", "location": "PARAMETER_LOCATION_BODY",
                           "schema": {"type": "string", "description": "The city name"}, "required": True}]}}
BODY = {"systemPrompt": "You are a helpful voice assistant. Keep answers short.", "selectedTools": [WEATHER_TOOL],
        "firstSpeakerSettings": {"user": {}}}


async def test_weather_question_invokes_the_client_tool_and_uses_its_result(qwen_server: RunningServer) -> None:
    call = create_call(qwen_server, BODY)
    async with websockets.connect(call["joinUrl"]) as ws:
        wire = Wire(ws)
        await wire.until(lambda m: m == {"type": "state", "state": "listening"})
        await wire.send({"type": "user_text_message", "text": "What's the weather in Paris?"})
        invocation = await wire.until(lambda m: m["type"] == "client_tool_invocation", timeout=60)
        assert invocation["toolName"] == "getWeather" and invocation["parameters"]["city"].lower() == "paris"
        await wire.send({"type": "client_tool_result", "invocationId": invocation["invocationId"],
                         "result": json.dumps({"city": "Paris", "temp_c": 21, "condition": "sunny"}), "updateCallState": None})
        answer = await wire.agent_final(timeout=60)
        assert "21" in answer["text"] or "sunny" in answer["text"].lower()
        await wire.send({"type": "hang_up"})
        assert await wire.closed() == 1000
    await wait_for_end(qwen_server, call["callId"])
    roles = [(m["role"], m.get("toolName")) for m in get(qwen_server, f"/calls/{call['callId']}/messages")["results"]]
    assert roles == [("MESSAGE_ROLE_USER", None), ("MESSAGE_ROLE_TOOL_CALL", "getWeather"),
                     ("MESSAGE_ROLE_TOOL_RESULT", "getWeather"), ("MESSAGE_ROLE_AGENT", None)]


async def test_joke_request_calls_no_tool(qwen_server: RunningServer) -> None:
    call = create_call(qwen_server, BODY)
    async with websockets.connect(call["joinUrl"]) as ws:
        wire = Wire(ws)
        await wire.until(lambda m: m == {"type": "state", "state": "listening"})
        await wire.send({"type": "user_text_message", "text": "Tell me a joke."})
        answer = await wire.agent_final(timeout=60)
        assert len(answer["text"].split()) >= 3 and not wire.of("client_tool_invocation")
