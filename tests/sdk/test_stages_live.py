"""The SDK's stage methods against a real `voxcall serve` process, with a call that moves through three stages.

The server's LLM is `--llm openai` pointed at the scripted OpenAI-compatible endpoint of
tests/server/test_stages_server.py, here also answering `stream_options.include_usage` with a
usage chunk whose `prompt_tokens` is the length of the prompt in characters, so the stages'
token counts can be checked against the requests the endpoint saw. The call moves to stage two
through the HTTP tool `advance` (`X-Ultravox-Response-Type: new-stage`) and to stage three through
the client tool `spell`, which the `UltravoxSession` answers with a `(result, "new-stage")` tuple.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.conftest import RunningServer
from tests.server.test_stages_server import ONE, THREE, TWO, advance, call_body, scripted_llm
from tests.toolserver import Answer, Seen, ToolServer
from voxcall.client import Client, UltravoxSession, UltravoxSessionStatus
from voxcall.protocol.rest import first_stage_id


def prompt_length(request: dict[str, Any]) -> int:
    return sum(len(str(m.get("content") or "")) for m in request["messages"])


def counting_llm(seen: Seen) -> Answer:
    """The scripted LLM, with a usage chunk before `[DONE]` when the request asks for one."""
    status, headers, body = scripted_llm(seen)
    request = seen.json()
    if (request.get("stream_options") or {}).get("include_usage"):
        usage = {"choices": [], "usage": {"prompt_tokens": prompt_length(request), "completion_tokens": 1,
                                          "total_tokens": prompt_length(request) + 1}}
        body = body.replace(b"data: [DONE]", b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]")
    return status, headers, body


@pytest.fixture(scope="module")
def backend() -> Iterator[ToolServer]:
    with ToolServer() as server:
        server.routes["/v1/chat/completions"] = counting_llm
        server.routes["/advance"] = advance
        yield server


@pytest.fixture(scope="module")
def stage_server(server_factory: Any, backend: ToolServer) -> RunningServer:
    env = {"VOXCALL_OUTBOUND_ALLOW": "127.0.0.1/32", "VOXCALL_SPEECH": "0", "VOXCALL_LLM_URL": f"{backend.url}/v1"}
    return server_factory("openai", extra_env=env)  # type: ignore[no-any-return]


@pytest.fixture
async def session() -> AsyncIterator[UltravoxSession]:
    s = UltravoxSession()
    yield s
    await s.leave_call()


async def test_stage_methods_after_an_http_tool_and_a_client_tool_moved_the_call(
    stage_server: RunningServer, backend: ToolServer, session: UltravoxSession
) -> None:
    body = {**call_body(backend), "initialOutputMedium": "MESSAGE_MEDIUM_TEXT"}
    async with Client(stage_server.api_key, stage_server.api) as client:
        call = await client.calls.create(body)
        call_id = call["callId"]
        spelled: list[dict[str, Any]] = []

        def spell(parameters: dict[str, Any]) -> tuple[str, str]:
            spelled.append(parameters)
            return json.dumps({"systemPrompt": THREE, "temperature": 0.3, "toolResultText": "Spelled."}), "new-stage"

        session.register_tool_implementation("spell", spell)
        await session.join_call(call["joinUrl"])
        await session.wait_for_status(UltravoxSessionStatus.LISTENING, timeout=30)
        await session.send_text("Take me to the next stage.")
        assert (await session.wait_for_transcript("agent", timeout=30)).text == f"Now: {TWO}"
        await session.send_text("Please spell it.")
        assert (await session.wait_for_transcript("agent", timeout=30)).text == f"Now: {THREE}"
        await session.leave_call()
        async with asyncio.timeout(10):  # the server marks the end once the call's records are written
            while not (ended := await client.calls.get(call_id))["endReason"]:
                await asyncio.sleep(0.1)
        assert ended["endReason"] == "hangup"

        stages = await client.calls.all_stages(call_id, page_size=1)  # one stage a page: the cursors are followed
        first_page = await client.calls.stages(call_id, page_size=2)
        assert first_page["total"] == 3 and len(first_page["results"]) == 2 and first_page["next"]
        assert [(s["systemPrompt"], s["temperature"]) for s in stages] == [(ONE, 0.0), (TWO, 0.0), (THREE, 0.3)]
        one, two, three = (s["callStageId"] for s in stages)
        assert one == first_stage_id(call_id) and spelled == [{"stage": two}]  # KNOWN_PARAM_CALL_STAGE_ID
        assert await client.calls.stage(call_id, three) == stages[2]
        assert [t["name"] for t in await client.calls.stage_tools(call_id, one)] == ["advance"]
        assert [t["name"] for t in await client.calls.stage_tools(call_id, two)] == ["spell"]
        assert [t["name"] for t in await client.calls.stage_tools(call_id, three)] == ["spell"]  # inherited

        # GET /calls/{id} and /tools follow the last stage, as "most call fields" do in the hosted API.
        assert (ended["systemPrompt"], ended["temperature"]) == (THREE, 0.3)
        assert [t["name"] for t in await client.calls.tools(call_id)] == ["spell"]

        def texts(messages: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
            return [(m["role"], m.get("text")) for m in messages]

        earlier = [("MESSAGE_ROLE_USER", "Earlier hello."), ("MESSAGE_ROLE_AGENT", "Earlier answer.")]
        in_one = [("MESSAGE_ROLE_USER", "Take me to the next stage."), ("MESSAGE_ROLE_TOOL_CALL", "{}"),
                  ("MESSAGE_ROLE_TOOL_RESULT", "Stage two started.")]
        in_two = [("MESSAGE_ROLE_AGENT", f"Now: {TWO}"), ("MESSAGE_ROLE_USER", "Please spell it."),
                  ("MESSAGE_ROLE_TOOL_CALL", "{}"), ("MESSAGE_ROLE_TOOL_RESULT", "Spelled.")]
        in_three = [("MESSAGE_ROLE_AGENT", f"Now: {THREE}")]
        assert texts(await client.calls.all_stage_messages(call_id, one, page_size=2)) == earlier + in_one
        assert texts(await client.calls.all_stage_messages(call_id, two)) == earlier + in_one + in_two
        last = await client.calls.all_messages(call_id, page_size=3)
        assert texts(last) == earlier + in_one + in_two + in_three and {m["callStageId"] for m in last} == {three}
        in_call = await client.calls.all_messages(call_id, page_size=3, mode="in_call")
        assert texts(in_call) == in_one + in_two + in_three
        assert [m["callStageId"] for m in in_call] == [one] * 3 + [two] * 4 + [three]
        page = await client.calls.messages(call_id, page_size=2, mode="in_call")
        assert page["total"] == 8 and texts(page["results"]) == in_one[:2]

        # A call continued with priorCallId starts where the last stage left off: its prompt and its history.
        follow = await client.calls.create({}, prior_call_id=call_id)
        assert (follow["systemPrompt"], follow["temperature"]) == (THREE, 0.3)
        assert texts(await client.calls.all_messages(follow["callId"])) == texts(last)

    # The usage the endpoint reported, per stage: the first request's count and the latest.
    asked = [r for r in (s.json() for s in backend.seen if s.path == "/v1/chat/completions")
             if r["messages"][0]["content"] in (ONE, TWO, THREE)]  # not the server's warm-up request
    assert [r["messages"][0]["content"] for r in asked] == [ONE, TWO, TWO, THREE]
    assert all(r["stream_options"] == {"include_usage": True} for r in asked)
    counts = [prompt_length(r) for r in asked]
    assert [(s["initialTokenCount"], s["latestTokenCount"]) for s in stages] == [
        (counts[0], counts[0]), (counts[1], counts[2]), (counts[3], counts[3])]
    assert counts[1] < counts[2]  # stage two's prompt grew between its two requests
