"""HTTP tools against a real HTTP server on 127.0.0.1: parameters, auth, headers, failures, SSRF.

Tools are built the way a call builds them (selectedTools → CallTool entries → ToolDef) and
run by the engine's HTTP executor over `voxcall.outbound.safe_client`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx
import pytest

from tests.toolserver import Seen, ToolServer
from voxcall.engine.http_tool import HttpToolExecutor
from voxcall.engine.spec import ToolDef
from voxcall.engine.tool_params import ToolContext
from voxcall.engine.tools import HangUp, NewStage, ToolOutcome, ToolRunner
from voxcall.errors import InvalidRequest
from voxcall.outbound import OutboundPolicy, safe_client, system_resolver
from voxcall.protocol.rest import StartCallRequest
from voxcall.providers.base import ChatMessage, ToolCall
from voxcall.server.call_tools import build_call_tools, public_call_tool, tool_def

LOOPBACK = OutboundPolicy(["127.0.0.0/8"])
CONTEXT = ToolContext(call_id="call-1", call_stage_id="stage-1", call_state={"step": 2}, metadata={"customer": "42"},
                      output_sample_rate=24000, history=(ChatMessage("user", "Hi"), ChatMessage("assistant", "Hello!")))


def ok(seen: Seen) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps({"ok": True}).encode()


@pytest.fixture
def backend() -> Iterator[ToolServer]:
    with ToolServer() as server:
        server.routes["/ok"] = ok
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with safe_client(LOOPBACK) as c:
        yield c


def http_tool(url: str, *, selected: dict[str, Any] | None = None, **definition: Any) -> ToolDef:
    body = {"modelToolName": "lookup", "description": "Look something up.", "http": {"baseUrlPattern": url, "httpMethod": "POST"},
            **definition}
    entries = build_call_tools(StartCallRequest.model_validate({"selectedTools": [{"temporaryTool": body, **(selected or {})}]}))
    return tool_def(entries[0])


async def run(client: httpx.AsyncClient, tool: ToolDef, arguments: dict[str, Any] | None = None,
              context: ToolContext = CONTEXT) -> ToolOutcome:
    return await HttpToolExecutor(client).execute(tool, ToolCall("inv-1", tool.spec.name, arguments or {}), context)


async def test_parameters_reach_every_location(backend: ToolServer, client: httpx.AsyncClient) -> None:
    tool = http_tool(
        f"{backend.url}/items/{{item}}/parts/{{part}}",
        dynamicParameters=[
            {"name": "item", "location": "PARAMETER_LOCATION_PATH", "schema": {"type": "string"}, "required": True},
            {"name": "q", "location": "PARAMETER_LOCATION_QUERY", "schema": {"type": "string"}},
            {"name": "X-Dyn", "location": "PARAMETER_LOCATION_HEADER", "schema": {"type": "string"}},
            {"name": "city", "location": "PARAMETER_LOCATION_BODY", "schema": {"type": "string"}, "required": True},
            {"name": "days", "location": "PARAMETER_LOCATION_BODY", "schema": {"type": "integer"}},
        ],
        staticParameters=[
            {"name": "part", "location": "PARAMETER_LOCATION_PATH", "value": "a b/c"},
            {"name": "units", "location": "PARAMETER_LOCATION_QUERY", "value": "metric"},
            {"name": "X-Static", "location": "PARAMETER_LOCATION_HEADER", "value": {"v": 1}},
            {"name": "source", "location": "PARAMETER_LOCATION_BODY", "value": ["x", 2]},
        ],
    )
    backend.routes["/items/42/parts/a%20b%2Fc"] = ok
    outcome = await run(client, tool, {"item": 42, "q": "sun", "X-Dyn": "d", "city": "Oslo", "days": 3, "invented": 1})
    assert outcome.error is None and json.loads(outcome.result) == {"ok": True}
    seen = backend.seen[-1]
    assert (seen.method, seen.path) == ("POST", "/items/42/parts/a%20b%2Fc")
    assert seen.query == {"q": ["sun"], "units": ["metric"]}
    assert seen.headers["x-dyn"] == "d" and seen.headers["x-static"] == '{"v":1}'
    assert seen.json() == {"city": "Oslo", "days": 3, "source": ["x", 2]}  # "invented" was never offered


async def test_every_known_parameter(backend: ToolServer, client: httpx.AsyncClient) -> None:
    known = ["CALL_ID", "CONVERSATION_HISTORY", "CALL_STATE", "CALL_METADATA", "OUTPUT_SAMPLE_RATE", "CALL_STAGE_ID"]
    tool = http_tool(f"{backend.url}/ok", automaticParameters=[
        *({"name": k.lower(), "location": "PARAMETER_LOCATION_BODY", "knownValue": f"KNOWN_PARAM_{k}"} for k in known),
        {"name": "cid", "location": "PARAMETER_LOCATION_QUERY", "knownValue": "KNOWN_PARAM_CALL_ID"},
        {"name": "X-Stage", "location": "PARAMETER_LOCATION_HEADER", "knownValue": "KNOWN_PARAM_CALL_STAGE_ID"},
    ])
    assert (await run(client, tool)).error is None
    seen = backend.seen[-1]
    assert seen.json() == {
        "call_id": "call-1", "call_stage_id": "stage-1", "call_state": {"step": 2}, "call_metadata": {"customer": "42"},
        "output_sample_rate": 24000,
        "conversation_history": [{"role": "MESSAGE_ROLE_USER", "text": "Hi"}, {"role": "MESSAGE_ROLE_AGENT", "text": "Hello!"}],
    }
    assert seen.query == {"cid": ["call-1"]} and seen.headers["x-stage"] == "stage-1"


SECURITY = {"httpSecurityOptions": {"options": [
    {"requirements": {"key": {"headerApiKey": {"name": "X-Api-Key"}}}},
    {"requirements": {"q": {"queryApiKey": {"name": "api_key"}}}},
    {"requirements": {"bearer": {"httpAuth": {"scheme": "Bearer"}}}},
    {"requirements": {}},
]}}


@pytest.mark.parametrize(("tokens", "header", "query"), [
    ({"key": "k1"}, ("x-api-key", "k1"), {}),
    ({"q": "k2"}, None, {"api_key": ["k2"]}),
    ({"bearer": "k3"}, ("authorization", "Bearer k3"), {}),
    ({"q": "k2", "key": "k1"}, ("x-api-key", "k1"), {}),  # the first option that can be met
    ({}, None, {}),  # only the empty option can be met
])
async def test_auth_tokens_satisfy_the_security_options(
    backend: ToolServer, client: httpx.AsyncClient, tokens: dict[str, str], header: tuple[str, str] | None,
    query: dict[str, list[str]],
) -> None:
    tool = http_tool(f"{backend.url}/ok", requirements=SECURITY, selected={"authTokens": tokens})
    assert (await run(client, tool)).error is None
    seen = backend.seen[-1]
    if header:
        assert seen.headers[header[0]] == header[1]
    assert "authorization" not in seen.headers or (header and header[0] == "authorization")
    assert seen.query == query


def test_unsatisfiable_security_is_a_422_naming_what_is_needed() -> None:
    needs_key = {"httpSecurityOptions": {"options": [{"requirements": {"key": {"headerApiKey": {"name": "X-Key"}}}}]}}
    with pytest.raises(InvalidRequest) as info:
        http_tool("https://example.com/x", requirements=needs_key, selected={"authTokens": {"other": "v"}})
    assert "needs authTokens for [key]" in str(info.value.detail) and "selectedTools" in str(info.value.detail)


def test_call_tool_resource_names_the_credentials_but_never_holds_them() -> None:
    entries = build_call_tools(StartCallRequest.model_validate({"selectedTools": [{"temporaryTool": {
        "modelToolName": "lookup", "http": {"baseUrlPattern": "https://example.com/x", "httpMethod": "get"},
        "requirements": SECURITY}, "authTokens": {"key": "secret-value"}}]}))
    public = public_call_tool(entries[0])
    assert "secret-value" not in json.dumps(public) and "secret-value" in json.dumps(entries[0])
    assert public["definition"]["http"] == {"baseUrlPattern": "https://example.com/x", "httpMethod": "GET",
                                            "authHeaders": ["X-Api-Key"], "authQueryParams": [], "callTokenScopes": []}


def answer(status: int = 200, body: bytes = b"done", **headers: str):  # type: ignore[no-untyped-def]
    return lambda seen: (status, {"Content-Type": "text/plain", **headers}, body)


async def test_response_headers_steer_the_call(backend: ToolServer, client: httpx.AsyncClient) -> None:
    backend.routes["/bye"] = answer(body=b'{"message": "Goodbye!"}', **{"X-Ultravox-Response-Type": "hang-up"})
    backend.routes["/stage"] = answer(body=b'{"systemPrompt": "Stage two"}', **{"X-Ultravox-Response-Type": "new-stage"})
    backend.routes["/react"] = answer(**{"X-Ultravox-Agent-Reaction": "listens",
                                         "X-Ultravox-Update-Call-State": '{"step": 3, "paid": true}'})
    backend.routes["/odd"] = answer(**{"X-Ultravox-Agent-Reaction": "dances", "X-Ultravox-Update-Call-State": "[1]"})
    bye = await run(client, http_tool(f"{backend.url}/bye"))
    assert bye.control == HangUp(message="Goodbye!")
    stage = await run(client, http_tool(f"{backend.url}/stage"))
    assert isinstance(stage.control, NewStage) and stage.control.request is not None
    assert stage.control.request.system_prompt == "Stage two" and stage.result == '{"systemPrompt": "Stage two"}'
    react = await run(client, http_tool(f"{backend.url}/react"))
    assert (react.control, react.reaction, react.update_call_state) == (None, "listens", {"step": 3, "paid": True})
    odd = await run(client, http_tool(f"{backend.url}/odd", defaultReaction="AGENT_REACTION_SPEAKS_ONCE"))
    assert odd.error is None and odd.reaction == "speaks-once" and odd.update_call_state is None
    assert any("dances" in n for n in odd.notes) and any("Update-Call-State" in n for n in odd.notes)


async def test_a_backend_that_never_answers_costs_only_the_timeout(backend: ToolServer, client: httpx.AsyncClient) -> None:
    backend.routes["/slow"] = lambda seen: backend.hang()
    started = time.monotonic()
    outcome = await run(client, http_tool(f"{backend.url}/slow", timeout="0.5s"))
    assert 0.4 < time.monotonic() - started < 2.0
    assert outcome.result == "The tool lookup did not answer in time." and outcome.error == "timed out after 0.5s"


@pytest.mark.parametrize(("route", "text", "error"), [
    (answer(503, b"maintenance"), "The tool lookup failed.", "HTTP 503: maintenance"),
    (answer(404, b"no"), "The tool lookup failed.", "HTTP 404: no"),
    (answer(200, b"\x89PNG\r\n\x1a\n\x00\x00", **{"Content-Type": "image/png"}),
     "The tool lookup answered with something that is not text.", "response body is not text (image/png, 10 bytes)"),
    (answer(200, "caf\u00e9".encode("latin-1")), "The tool lookup answered with something that is not text.", "not text"),
])
async def test_failures_become_a_text_for_the_model_and_error_details(
    backend: ToolServer, client: httpx.AsyncClient, route: Any, text: str, error: str,
) -> None:
    backend.routes["/x"] = route
    outcome = await run(client, http_tool(f"{backend.url}/x"))
    assert outcome.result == text and error in (outcome.error or "")


async def test_a_huge_body_is_cut_off(backend: ToolServer, client: httpx.AsyncClient) -> None:
    backend.routes["/huge"] = lambda seen: (200, {"Content-Type": "text/plain"}, backend.stream(b"x" * 65536, 2000))
    started = time.monotonic()
    outcome = await HttpToolExecutor(client, max_bytes=200_000).execute(
        http_tool(f"{backend.url}/huge", timeout="10s"), ToolCall("i", "lookup", {}), CONTEXT)
    assert time.monotonic() - started < 5  # stopped reading long before 131 MB
    assert outcome.result == "The tool lookup answered with too much data." and "200000 bytes" in (outcome.error or "")


async def test_garbage_instead_of_http_is_a_failure(client: httpx.AsyncClient) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"\x00\x01 this is not HTTP at all\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        outcome = await run(client, http_tool(f"http://127.0.0.1:{port}/x"))
    assert outcome.result == "The tool lookup is unavailable." and "RemoteProtocolError" in (outcome.error or "")


async def test_missing_required_argument_sends_nothing(backend: ToolServer, client: httpx.AsyncClient) -> None:
    tool = http_tool(f"{backend.url}/ok", dynamicParameters=[
        {"name": "city", "location": "PARAMETER_LOCATION_BODY", "schema": {"type": "string"}, "required": True}])
    outcome = await run(client, tool, {"city": None})
    assert outcome.result == "The tool lookup needs city." and backend.seen == []


async def test_values_http_cannot_carry_are_a_failure_not_a_crash(backend: ToolServer, client: httpx.AsyncClient) -> None:
    tool = http_tool(f"{backend.url}/ok", dynamicParameters=[
        {"name": "X-Name", "location": "PARAMETER_LOCATION_HEADER", "schema": {"type": "string"}}])
    outcome = await run(client, tool, {"X-Name": "Zo\u00eb \u2603"})
    assert outcome.result == "The tool lookup could not be called with these values." and backend.seen == []


def _resolver(table: dict[str, Sequence[str]]):  # type: ignore[no-untyped-def]
    """Names from `table`, anything else (e.g. localhost) from the system resolver."""
    async def resolve(host: str, port: int) -> Sequence[str]:
        return table[host] if host in table else await system_resolver(host, port)

    return resolve


async def test_ssrf_targets_are_refused_and_never_reached(backend: ToolServer) -> None:
    backend.routes["/hop"] = lambda seen: (302, {"Location": f"http://127.0.0.1:{backend.port}/ok"}, b"")
    backend.routes["/meta"] = lambda seen: (307, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"")
    resolver = _resolver({"tools.example.test": ["127.0.0.1"], "hooks.test": ["127.0.0.1"]})
    async with safe_client(OutboundPolicy(["hooks.test"]), resolver=resolver) as guarded:
        for url in (f"{backend.url}/ok", f"http://localhost:{backend.port}/ok", f"http://tools.example.test:{backend.port}/ok"):
            outcome = await run(guarded, http_tool(url))
            assert outcome.result == "The tool lookup is unavailable." and "refused" in (outcome.error or ""), url
        assert backend.seen == []
        hop = await run(guarded, http_tool(f"http://hooks.test:{backend.port}/hop"))
        meta = await run(guarded, http_tool(f"http://hooks.test:{backend.port}/meta"))
    assert "127.0.0.1" in (hop.error or "") and "refused" in (hop.error or "")
    assert "169.254.169.254" in (meta.error or "")
    assert [s.path for s in backend.seen] == ["/hop", "/meta"]  # the allowed host was asked; the targets never


# ------------------------------------------------------------------ runner


async def test_static_response_answers_at_once_and_the_request_still_goes_out(backend: ToolServer,
                                                                              client: httpx.AsyncClient) -> None:
    backend.routes["/slow"] = lambda seen: (time.sleep(0.3), ok(seen))[1]
    tool = http_tool(f"{backend.url}/slow", staticResponse={"responseText": "Noted."})
    runner = ToolRunner((tool,), _nowhere, {"http": HttpToolExecutor(client)})
    started = time.monotonic()
    outcome = await runner.run(ToolCall("i", "lookup", {}), CONTEXT)
    assert outcome.result == "Noted." and time.monotonic() - started < 0.2
    async with asyncio.timeout(3):
        while not backend.seen:
            await asyncio.sleep(0.02)
    await runner.close()


async def test_without_an_http_executor_the_model_hears_a_failure(backend: ToolServer) -> None:
    runner = ToolRunner((http_tool(f"{backend.url}/ok"),), _nowhere)
    outcome = await runner.run(ToolCall("i", "lookup", {}), CONTEXT)
    assert outcome.result == "The tool lookup is unavailable." and "outbound" in (outcome.error or "")
    await runner.close()


async def _nowhere(message: Any) -> None:
    pass
