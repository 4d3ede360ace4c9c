"""forced_agent_message.toolCalls on a real server: said, then invoked like a model's tool call (PROTOCOL.md 2.5)."""

from __future__ import annotations

import websockets

from tests.conftest import RunningServer
from tests.server.wire import Wire, create_call, get, wait_for_end

LOOKUP_TOOL = {"temporaryTool": {
    "modelToolName": "lookUpOrder", "description": "Look up an order.", "client": {},
    "dynamicParameters": [{"name": "orderId", "location": "PARAMETER_LOCATION_BODY", "schema": {"type": "string"}, "required": True}]}}


async def test_forced_tool_call_reaches_the_client_and_the_history(server: RunningServer) -> None:
    call = create_call(server, {"firstSpeakerSettings": {"user": {}}, "selectedTools": [LOOKUP_TOOL],
                                "initialOutputMedium": "MESSAGE_MEDIUM_TEXT"})
    async with websockets.connect(call["joinUrl"]) as ws:
        wire = Wire(ws)
        await wire.until(lambda m: m == {"type": "state", "state": "listening"})
        await wire.send({"type": "forced_agent_message", "content": "Let me find your order.",
                         "toolCalls": [{"id": "forced-1", "name": "lookUpOrder", "arguments": {"orderId": "A7"}}]})
        invocation = await wire.until(lambda m: m["type"] == "client_tool_invocation")
        assert invocation == {"type": "client_tool_invocation", "toolName": "lookUpOrder", "invocationId": "forced-1",
                              "parameters": {"orderId": "A7"}}
        assert [m["text"] for m in wire.of("transcript") if m["final"]] == ["Let me find your order."]  # said first
        await wire.send({"type": "client_tool_result", "invocationId": "forced-1", "result": '{"status": "shipped"}',
                         "agentReaction": "listens"})
        await wire.until(lambda m: m == {"type": "state", "state": "listening"})
        await wire.send({"type": "hang_up"})
        assert await wire.closed() == 1000
    await wait_for_end(server, call["callId"])
    messages = get(server, f"/calls/{call['callId']}/messages")["results"]
    assert [(m["role"], m.get("invocationId"), m["text"]) for m in messages] == [
        ("MESSAGE_ROLE_AGENT", None, "Let me find your order."), ("MESSAGE_ROLE_TOOL_CALL", "forced-1", '{"orderId": "A7"}'),
        ("MESSAGE_ROLE_TOOL_RESULT", "forced-1", '{"status": "shipped"}')]
