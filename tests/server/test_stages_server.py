"""Call stages through a real `voxcall serve` process, with a real tool backend on 127.0.0.1.

The server's LLM is `--llm openai` pointed at a scripted OpenAI-compatible endpoint on the
loopback backend (as in test_tools_server.py): it calls `advance` when the user asks for the
next stage, `spell` when asked to spell, and after a tool result it answers with the system
prompt it was given, so the transcript proves which stage's prompt the model saw. `advance` is
an HTTP tool whose backend answers `X-Ultravox-Response-Type: new-stage`; `spell`, which only the
second stage has, is a client tool whose result the test sends with `responseType: "new-stage"`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from tests.conftest import RunningServer
from tests.server.test_tools_server import sse
from tests.server.wire import Wire, create_call, get, wait_for_end
from tests.toolserver import Seen, ToolServer
from voxcall.protocol.rest import first_stage_id

ONE, TWO, THREE = "You are in stage one.", "You are in stage two.", "You are in stage three."
SPELL = {"temporaryTool": {"modelToolName": "spell", "description": "Spell a word.", "client": {},
                           "automaticParameters": [{"name": "stage", "location": "PARAMETER_LOCATION_BODY",
                                                    "knownValue": "KNOWN_PARAM_CALL_STAGE_ID"}]}}


def scripted_llm(seen: Seen) -> tuple[int, dict[str, str], bytes]:
    request = seen.json()
    messages, tools = request["messages"], [t["function"]["name"] for t in request.get("tools") or []]
    last = messages[-1]
    said = str(last.get("content") or "").lower()
    if last["role"] == "tool":
        delta: dict[str, Any] = {"content": f"Now: {messages[0]['content']}"}
    elif "next stage" in said and "advance" in tools:
        delta = {"tool_calls": [{"index": 0, "id": "call_a1", "type": "function",
                                 "function": {"name": "advance", "arguments": "{}"}}]}
    elif "spell" in said and "spell" in tools:
        delta = {"tool_calls": [{"index": 0, "id": "call_s1", "type": "function",
                                 "function": {"name": "spell", "arguments": "{}"}}]}
    else:
        delta = {"content": "Hello."}
    return 200, {"Content-Type": "text/event-stream"}, sse({"choices": [{"index": 0, "delta": delta}]})


def advance(seen: Seen) -> tuple[int, dict[str, str], bytes]:
    body = {"systemPrompt": TWO, "selectedTools": [SPELL], "toolResultText": "Stage two started."}
    return 200, {"Content-Type": "application/json", "X-Ultravox-Response-Type": "new-stage"}, json.dumps(body).encode()


@pytest.fixture(scope="module")
def backend() -> Iterator[ToolServer]:
    with ToolServer() as server:
        server.routes["/v1/chat/completions"] = scripted_llm
        server.routes["/advance"] = advance
        yield server


@pytest.fixture(scope="module")
def stage_server(server_factory: Any, backend: ToolServer) -> RunningServer:
    env = {"VOXCALL_OUTBOUND_ALLOW": "127.0.0.1/32", "VOXCALL_SPEECH": "0", "VOXCALL_LLM_URL": f"{backend.url}/v1"}
    return server_factory("openai", extra_env=env)  # type: ignore[no-any-return]


def call_body(backend: ToolServer) -> dict[str, Any]:
    tool = {"modelToolName": "advance", "description": "Go to the next stage.",
            "http": {"baseUrlPattern": f"{backend.url}/advance", "httpMethod": "POST"},
            "automaticParameters": [{"name": "stage", "location": "PARAMETER_LOCATION_BODY",
                                     "knownValue": "KNOWN_PARAM_CALL_STAGE_ID"}]}
    return {"systemPrompt": ONE, "firstSpeakerSettings": {"user": {}}, "selectedTools": [{"temporaryTool": tool}],
            "initialMessages": [{"role": "MESSAGE_ROLE_USER", "text": "Earlier hello."},
                                {"role": "MESSAGE_ROLE_AGENT", "text": "Earlier answer."}]}


def llm_requests(backend: ToolServer) -> list[dict[str, Any]]:
    return [s.json() for s in backend.seen if s.path == "/v1/chat/completions"]


async def test_an_http_tool_moves_the_call_to_a_new_stage(stage_server: RunningServer, backend: ToolServer) -> None:
    call = create_call(stage_server, call_body(backend))
    call_id = call["callId"]
    async with websockets.connect(call["joinUrl"]) as ws:
        wire = Wire(ws)
        await wire.until(lambda m: m == {"type": "state", "state": "listening"})
        await wire.send({"type": "user_text_message", "text": "Take me to the next stage."})
        answer = await wire.agent_final(timeout=30)
        await wire.send({"type": "hang_up"})
        assert await wire.closed() == 1000
    assert answer["text"] == f"Now: {TWO}"  # the reply after the tool came from the new prompt
    asked = [s for s in backend.seen if s.path == "/advance"][-1]
    assert asked.json()["stage"] == first_stage_id(call_id)  # KNOWN_PARAM_CALL_STAGE_ID, in the first stage
    after = llm_requests(backend)[-1]
    assert [t["function"]["name"] for t in after["tools"]] == ["spell"]
    await wait_for_end(stage_server, call_id)

    stages = get(stage_server, f"/calls/{call_id}/stages")
    assert stages["total"] == 2 and [s["systemPrompt"] for s in stages["results"]] == [ONE, TWO]
    first, second = (s["callStageId"] for s in stages["results"])
    assert first == first_stage_id(call_id) and second != first
    assert get(stage_server, f"/calls/{call_id}/stages/{second}")["systemPrompt"] == TWO
    assert [t["name"] for t in get(stage_server, f"/calls/{call_id}/stages/{first}/tools")] == ["advance"]
    assert [t["name"] for t in get(stage_server, f"/calls/{call_id}/stages/{second}/tools")] == ["spell"]

    def texts(path: str) -> list[tuple[str, str | None, str]]:
        return [(m["role"], m.get("text"), m["callStageId"]) for m in get(stage_server, path)["results"]]

    earlier = [("MESSAGE_ROLE_USER", "Earlier hello."), ("MESSAGE_ROLE_AGENT", "Earlier answer.")]
    stage_one = [("MESSAGE_ROLE_USER", "Take me to the next stage."), ("MESSAGE_ROLE_TOOL_CALL", "{}"),
                 ("MESSAGE_ROLE_TOOL_RESULT", "Stage two started.")]
    reply = [("MESSAGE_ROLE_AGENT", f"Now: {TWO}")]
    last_stage = get(stage_server, f"/calls/{call_id}/messages")["results"]
    assert [(r, t) for r, t, _ in texts(f"/calls/{call_id}/messages")] == earlier + stage_one + reply
    assert {m["callStageId"] for m in last_stage} == {second}
    assert [m["callStageMessageIndex"] for m in last_stage] == list(range(len(last_stage)))
    in_call = texts(f"/calls/{call_id}/messages?mode=in_call")
    assert in_call == [(r, t, first) for r, t in stage_one] + [(r, t, second) for r, t in reply]
    assert [(r, t) for r, t, _ in texts(f"/calls/{call_id}/stages/{first}/messages")] == earlier + stage_one
    events = get(stage_server, f"/calls/{call_id}/events")["results"]
    assert [e["callStageId"] for e in events if e["type"] == "call_stage"] == [second]


async def test_a_client_tool_result_with_response_type_new_stage(stage_server: RunningServer, backend: ToolServer) -> None:
    call = create_call(stage_server, {"systemPrompt": TWO, "firstSpeakerSettings": {"user": {}}, "selectedTools": [SPELL]})
    call_id = call["callId"]
    async with websockets.connect(call["joinUrl"]) as ws:
        wire = Wire(ws)
        await wire.until(lambda m: m == {"type": "state", "state": "listening"})
        await wire.send({"type": "user_text_message", "text": "Please spell it."})
        invocation = await wire.until(lambda m: m["type"] == "client_tool_invocation")
        assert invocation["parameters"] == {"stage": first_stage_id(call_id)}
        result = {"systemPrompt": THREE, "temperature": 0.3, "toolResultText": "Spelled; stage three."}
        await wire.send({"type": "client_tool_result", "invocationId": invocation["invocationId"],
                         "result": json.dumps(result), "responseType": "new-stage"})
        answer = await wire.agent_final(timeout=30)
        await wire.send({"type": "user_text_message", "text": "Thanks."})
        again = await wire.agent_final(timeout=30)
        await wire.send({"type": "hang_up"})
        assert await wire.closed() == 1000
    assert answer["text"] == f"Now: {THREE}" and again["text"] == "Hello."
    last = llm_requests(backend)[-1]
    assert last["messages"][0]["content"] == THREE and last["temperature"] == 0.3
    assert [t["function"]["name"] for t in last["tools"]] == ["spell"]  # stage three inherited the tools
    await wait_for_end(stage_server, call_id)
    stages = get(stage_server, f"/calls/{call_id}/stages")["results"]
    assert [(s["systemPrompt"], s["temperature"]) for s in stages] == [(TWO, 0.0), (THREE, 0.3)]
    assert [t["name"] for t in get(stage_server, f"/calls/{call_id}/stages/{stages[1]['callStageId']}/tools")] == ["spell"]


async def test_a_forbidden_field_leaves_the_call_in_its_stage(stage_server: RunningServer, backend: ToolServer) -> None:
    call = create_call(stage_server, {"systemPrompt": TWO, "firstSpeakerSettings": {"user": {}}, "selectedTools": [SPELL]})
    async with websockets.connect(call["joinUrl"]) as ws:
        wire = Wire(ws)
        await wire.until(lambda m: m == {"type": "state", "state": "listening"})
        await wire.send({"type": "user_text_message", "text": "Please spell it."})
        invocation = await wire.until(lambda m: m["type"] == "client_tool_invocation")
        await wire.send({"type": "client_tool_result", "invocationId": invocation["invocationId"],
                         "result": json.dumps({"systemPrompt": THREE, "medium": {"webRtc": {}}}), "responseType": "new-stage"})
        answer = await wire.agent_final(timeout=30)
        await wire.send({"type": "hang_up"})
        assert await wire.closed() == 1000
    assert answer["text"] == f"Now: {TWO}"  # still the first stage's prompt
    await wait_for_end(stage_server, call["callId"])
    assert get(stage_server, f"/calls/{call['callId']}/stages")["total"] == 1
    failed = [m for m in get(stage_server, f"/calls/{call['callId']}/messages")["results"]
              if m["role"] == "MESSAGE_ROLE_TOOL_RESULT"]
    assert "medium cannot change in a new stage" in failed[0]["text"] and failed[0]["errorDetails"].startswith("new-stage")
