"""Durable HTTP tools through a real `voxcall serve` process, with a real tool backend on 127.0.0.1.

The server runs with VOXCALL_OUTBOUND_ALLOW=127.0.0.1/32 (the operator's exception for the
test's loopback backend) and text only. Its LLM is `--llm openai` pointed at a scripted
OpenAI-compatible endpoint on the same loopback server: it asks for `getWeather` when the
user mentions the weather, and repeats a tool result when it gets one; so the call really
streams a tool call, the server really runs the HTTP tool, and the answer really goes back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import RunningServer
from tests.server.wire import Wire, create_call, get, wait_for_end
from tests.toolserver import Seen, ToolServer

AUTH = {"httpSecurityOptions": {"options": [{"requirements": {"k": {"headerApiKey": {"name": "X-Weather-Key"}}}}]}}


def sse(*chunks: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def scripted_llm(seen: Seen) -> tuple[int, dict[str, str], bytes]:
    """An OpenAI-compatible chat endpoint with a fixed script (see the module docstring)."""
    messages = seen.json()["messages"]
    last = messages[-1]
    if last["role"] == "tool":
        reply = {"choices": [{"index": 0, "delta": {"content": f"The tool says: {last['content']}"}}]}
    elif seen.json().get("tools") and "weather" in str(last.get("content", "")).lower():
        call = {"index": 0, "id": "call_w1", "type": "function",
                "function": {"name": "getWeather", "arguments": json.dumps({"city": "Oslo"})}}
        reply = {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}
    else:
        reply = {"choices": [{"index": 0, "delta": {"content": "Hello."}}]}
    return 200, {"Content-Type": "text/event-stream"}, sse(reply)


def weather(seen: Seen) -> tuple[int, dict[str, str], bytes]:
    if seen.headers.get("x-weather-key") != "s3cret":
        return 401, {}, b"wrong key"
    body = json.dumps({"city": seen.query["city"][0], "sky": "clear", "callId": seen.headers.get("x-call")})
    return 200, {"Content-Type": "application/json", "X-Ultravox-Update-Call-State": '{"asked": true}'}, body.encode()


@pytest.fixture(scope="module")
def backend() -> Iterator[ToolServer]:
    with ToolServer() as server:
        server.routes["/v1/chat/completions"] = scripted_llm
        server.routes["/weather"] = weather
        yield server


@pytest.fixture(scope="module")
def tool_server(server_factory: Any, backend: ToolServer) -> RunningServer:
    env = {"VOXCALL_OUTBOUND_ALLOW": "127.0.0.1/32", "VOXCALL_SPEECH": "0", "VOXCALL_LLM_URL": f"{backend.url}/v1"}
    return server_factory("openai", extra_env=env)  # type: ignore[no-any-return]


def weather_tool(backend: ToolServer) -> dict[str, Any]:
    return {"name": "weather", "definition": {
        "modelToolName": "getWeather", "description": "Current weather for a city.",
        "http": {"baseUrlPattern": f"{backend.url}/weather", "httpMethod": "GET"},
        "dynamicParameters": [{"name": "city", "location": "PARAMETER_LOCATION_QUERY", "schema": {"type": "string"},
                               "required": True}],
        "automaticParameters": [{"name": "X-Call", "location": "PARAMETER_LOCATION_HEADER", "knownValue": "KNOWN_PARAM_CALL_ID"}],
        "requirements": AUTH}}


def post(server: RunningServer, path: str, body: Any) -> httpx.Response:
    return httpx.post(f"{server.api}{path}", json=body, headers=server.headers(), timeout=30)


async def test_a_call_runs_a_durable_http_tool_end_to_end(tool_server: RunningServer, backend: ToolServer) -> None:
    created = post(tool_server, "/tools", weather_tool(backend))
    assert created.status_code == 201, created.text
    tool_id = created.json()["toolId"]
    body = {"systemPrompt": "You help with the weather.", "firstSpeakerSettings": {"user": {}},
            "initialState": {"lang": "en"}, "selectedTools": [{"toolId": tool_id, "authTokens": {"k": "s3cret"}}]}
    call = create_call(tool_server, body)
    assert "s3cret" not in json.dumps(get(tool_server, f"/calls/{call['callId']}/tools"))
    async with websockets.connect(call["joinUrl"]) as ws:
        wire = Wire(ws)
        await wire.until(lambda m: m == {"type": "state", "state": "listening"})
        await wire.send({"type": "user_text_message", "text": "What's the weather in Oslo?"})
        answer = await wire.agent_final(timeout=30)
        await wire.send({"type": "hang_up"})
        assert await wire.closed() == 1000
    asked = [s for s in backend.seen if s.path == "/weather"][-1]
    assert asked.query == {"city": ["Oslo"]} and asked.headers["x-call"] == call["callId"]
    assert answer["text"] == f'The tool says: {{"city": "Oslo", "sky": "clear", "callId": "{call["callId"]}"}}'
    await wait_for_end(tool_server, call["callId"])
    messages = get(tool_server, f"/calls/{call['callId']}/messages")["results"]
    result = next(m for m in messages if m["role"] == "MESSAGE_ROLE_TOOL_RESULT")
    assert result["toolName"] == "getWeather" and result["callState"] == {"lang": "en", "asked": True}
    history = get(tool_server, f"/tools/{tool_id}/history")
    assert [(h["call"]["callId"], h["errorCount"]) for h in history["results"]] == [(call["callId"], 0)]


def test_tool_test_endpoint_through_the_server(tool_server: RunningServer, backend: ToolServer) -> None:
    tool = post(tool_server, "/tools", {**weather_tool(backend), "name": "weather-test"}).json()
    good = post(tool_server, f"/tools/{tool['toolId']}/test", {"parameters": {"city": "Bergen"}, "authTokens": {"k": "s3cret"}})
    assert good.status_code == 200 and good.json()["success"] is True and '"city": "Bergen"' in good.json()["result"]
    assert good.json()["updateCallState"] == {"asked": True}
    wrong = post(tool_server, f"/tools/{tool['toolId']}/test", {"parameters": {"city": "Bergen"}, "authTokens": {"k": "nope"}})
    assert wrong.json()["success"] is False and wrong.json()["errorDetails"] == "HTTP 401: wrong key"


def test_without_the_exception_the_server_refuses_loopback_targets(server_factory: Any, backend: ToolServer) -> None:
    server = server_factory("openai", extra_env={"VOXCALL_SPEECH": "0", "VOXCALL_LLM_URL": f"{backend.url}/v1"})
    before = len(backend.seen)
    tool = post(server, "/tools", {**weather_tool(backend), "name": "weather-ssrf"}).json()
    refused = post(server, f"/tools/{tool['toolId']}/test", {"parameters": {"city": "Oslo"}, "authTokens": {"k": "s3cret"}})
    assert refused.status_code == 200 and refused.json()["success"] is False
    assert "refused" in refused.json()["errorDetails"] and "loopback" in refused.json()["errorDetails"]
    assert len(backend.seen) == before
