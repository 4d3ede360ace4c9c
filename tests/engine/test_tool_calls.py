"""HTTP tools inside a call: a scripted LLM asks, a real loopback HTTP server answers.

Covers call state (initialState, client `updateCallState`, the `X-Ultravox-Update-Call-State`
header, read back through KNOWN_PARAM_CALL_STATE), errorDetails on the tool-result message,
the hang-up and new-stage response types, and precomputable tools starting early.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.engine.test_call import USER_FIRST, Harness
from tests.toolserver import Seen, ToolServer
from voxcall.engine.call import Call
from voxcall.engine.http_tool import HttpToolExecutor
from voxcall.engine.spec import CallSpec, HttpSpec, ToolDef, ToolParam
from voxcall.outbound import OutboundPolicy, safe_client
from voxcall.protocol.realtime import (
    ClientToolInvocation,
    ClientToolResult,
    Debug,
    Transcript,
    UserTextMessage,
)
from voxcall.providers.base import TextDelta, ToolCall, ToolSpec
from voxcall.providers.fake import ScriptedLLM

STATE = ToolParam("state", "body", "automatic", known="KNOWN_PARAM_CALL_STATE")


@pytest.fixture
def backend() -> Iterator[ToolServer]:
    with ToolServer() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with safe_client(OutboundPolicy(["127.0.0.1/32"])) as client:
        yield client


def tool(backend: ToolServer, path: str, name: str = "lookup", **kw: Any) -> ToolDef:
    return ToolDef(ToolSpec(name, "Look up.", {"type": "object", "properties": {}}), kind="http", timeout=2.0,
                   parameters=(STATE,), http=HttpSpec(f"{backend.url}{path}", "POST"), **kw)


class ToolHarness(Harness):
    """test_call's harness, with the HTTP executor injected and the time of every message sent."""

    def __init__(self, spec: CallSpec, llm: ScriptedLLM, http: httpx.AsyncClient) -> None:
        self.sent: list[Any] = []
        self.sent_at: list[float] = []
        self.records: list[Any] = []
        self.call = Call(spec, llm, send=self._send, record=self._record, tool_executors={"http": HttpToolExecutor(http)})
        self.task = None

    async def _send(self, message: Any) -> None:
        self.sent.append(message)
        self.sent_at.append(time.monotonic())


def harness(llm: ScriptedLLM, http: httpx.AsyncClient, *tools: ToolDef, **spec: Any) -> ToolHarness:
    h = ToolHarness(CallSpec(call_id="c1", greeting=USER_FIRST, tools=tools, **spec), llm, http)
    h.start()
    return h


def echo_state(headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    def route(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/json", **(headers or {})}, json.dumps(seen.json()["state"]).encode()

    return route


async def test_call_state_flows_from_initial_state_through_client_and_http_updates(
    backend: ToolServer, http: httpx.AsyncClient
) -> None:
    backend.routes["/a"] = echo_state({"X-Ultravox-Update-Call-State": '{"step": 3, "paid": true}'})
    backend.routes["/b"] = echo_state()
    client = ToolDef(ToolSpec("ask", "Ask the app.", {"type": "object", "properties": {}}), parameters=(STATE,), timeout=2.0)
    llm = ScriptedLLM([[ToolCall("t1", "ask", {})], [ToolCall("t2", "lookup", {})], [ToolCall("t3", "check", {})],
                       [TextDelta("Done.")]])
    h = harness(llm, http, client, tool(backend, "/a"), tool(backend, "/b", "check"), initial_state={"step": 1, "who": "ann"})
    h.call.receive(UserTextMessage(text="go"))
    await h.until(lambda: bool(h.of(ClientToolInvocation)))
    assert h.of(ClientToolInvocation)[0].parameters == {"state": {"step": 1, "who": "ann"}}
    h.call.receive(ClientToolResult(invocation_id="t1", result="ok", update_call_state={"step": 2}))
    await h.until(lambda: bool(h.finals()))
    assert [s.json()["state"] for s in backend.seen] == [{"step": 2, "who": "ann"}, {"step": 3, "paid": True, "who": "ann"}]
    assert h.call.call_state == {"step": 3, "paid": True, "who": "ann"}
    results = [r for r in h.records if r.role == "MESSAGE_ROLE_TOOL_RESULT"]
    assert [r.call_state for r in results] == [{"step": 2, "who": "ann"}, {"step": 3, "paid": True, "who": "ann"}, None]
    assert json.loads(llm.calls[3].messages[-1].content) == {"step": 3, "paid": True, "who": "ann"}
    h.call.end("hangup")
    await h.finish()


async def test_a_failing_backend_gives_the_model_a_failure_text_and_records_error_details(
    backend: ToolServer, http: httpx.AsyncClient
) -> None:
    backend.routes["/down"] = lambda seen: (502, {}, b"bad gateway")
    llm = ScriptedLLM([[ToolCall("t1", "lookup", {})], [TextDelta("Sorry, that failed.")]])
    h = harness(llm, http, tool(backend, "/down"))
    h.call.receive(UserTextMessage(text="go"))
    await h.until(lambda: bool(h.finals()))
    result = next(r for r in h.records if r.role == "MESSAGE_ROLE_TOOL_RESULT")
    assert result.text == "The tool lookup failed." and result.error_details == "HTTP 502: bad gateway"
    assert llm.calls[1].messages[-1].content == "The tool lookup failed."
    h.call.end("hangup")
    await h.finish()


async def test_hang_up_header_ends_the_call_after_the_message(backend: ToolServer, http: httpx.AsyncClient) -> None:
    backend.routes["/bye"] = lambda seen: (200, {"X-Ultravox-Response-Type": "hang-up"}, b'{"message": "Goodbye for now."}')
    h = harness(ScriptedLLM([[ToolCall("t1", "lookup", {})]]), http, tool(backend, "/bye"))
    h.call.receive(UserTextMessage(text="bye"))
    assert await h.finish() == "agent_hangup"
    assert h.finals()[-1].text == "Goodbye for now."


async def test_new_stage_header_moves_the_call_to_the_new_prompt(backend: ToolServer, http: httpx.AsyncClient) -> None:
    backend.routes["/stage"] = lambda seen: (200, {"X-Ultravox-Response-Type": "new-stage"},
                                             b'{"systemPrompt": "Two", "toolResultText": "On to two."}')
    llm = ScriptedLLM([[ToolCall("t1", "lookup", {})], [TextDelta("Next.")]])
    h = harness(llm, http, tool(backend, "/stage"))
    h.call.receive(UserTextMessage(text="go"))
    await h.until(lambda: bool(h.finals()))
    assert llm.calls[1].messages[0].content == "Two" and llm.calls[1].messages[-1].content == "On to two."
    assert any("New call stage" in d.message for d in h.of(Debug))
    h.call.end("hangup")
    await h.finish()


async def test_a_precomputable_tool_starts_while_the_reply_is_still_streaming(
    backend: ToolServer, http: httpx.AsyncClient
) -> None:
    arrived: list[float] = []
    backend.routes["/pre"] = lambda seen: (arrived.append(time.monotonic()), (200, {}, b"42"))[1]
    words = " ".join(f"w{i}" for i in range(12))
    llm = ScriptedLLM([[ToolCall("t1", "lookup", {}), TextDelta(words)], [TextDelta("It is 42.")]], delay=0.05)
    h = harness(llm, http, tool(backend, "/pre", precomputable=True))
    h.call.receive(UserTextMessage(text="go"))
    await h.until(lambda: len(h.finals()) == 2)
    first_final = next(i for i, m in enumerate(h.sent) if isinstance(m, Transcript) and m.final and m.text == words)
    assert len(arrived) == 1 and arrived[0] < h.sent_at[first_final] - 0.2  # asked while the words still streamed
    assert len(backend.seen) == 1  # run once, its early result used
    assert llm.calls[1].messages[-1].content == "42"
    h.call.end("hangup")
    await h.finish()


async def test_an_interrupted_reply_drops_its_early_tool(backend: ToolServer, http: httpx.AsyncClient) -> None:
    backend.routes["/pre"] = lambda seen: backend.hang(5)
    words = " ".join(f"w{i}" for i in range(40))
    llm = ScriptedLLM([[ToolCall("t1", "lookup", {}), TextDelta(words)], [TextDelta("New answer.")]], delay=0.05)
    h = harness(llm, http, tool(backend, "/pre", precomputable=True))
    h.call.receive(UserTextMessage(text="go"))
    async with asyncio.timeout(3):
        while not backend.seen:
            await asyncio.sleep(0.02)
    h.call.receive(UserTextMessage(text="stop", urgency="immediate"))
    await h.until(lambda: any(t.text == "New answer." for t in h.finals()))
    assert not any(r.role == "MESSAGE_ROLE_TOOL_RESULT" for r in h.records)
    h.call.end("hangup")
    await h.finish()
