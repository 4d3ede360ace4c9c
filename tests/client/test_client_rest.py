"""`Client` against httpx.MockTransport: paths, headers, query parameters, error mapping."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from voxcall.client.rest import Client
from voxcall.errors import ApiError, InvalidRequest, NotFound, RateLimited, Unauthorized
from voxcall.protocol.rest import StartCallRequest

BASE = "http://127.0.0.1:8000/api"


def make_client(
    handler: Callable[[httpx.Request], httpx.Response], base: str = BASE
) -> tuple[Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    return Client("key.123", base, transport=httpx.MockTransport(record)), seen


async def test_create_call_sends_key_body_and_query() -> None:
    client, seen = make_client(lambda r: httpx.Response(201, json={"callId": "c1", "joinUrl": "ws://x/calls/c1"}))
    async with client:
        call = await client.calls.create(
            StartCallRequest(system_prompt="Be brief", medium={"serverWebSocket": {"inputSampleRate": 16000}}),
            enable_greeting_prompt=False,
            prior_call_id="p1",
        )
    assert call == {"callId": "c1", "joinUrl": "ws://x/calls/c1"}
    request = seen[0]
    assert request.method == "POST"
    assert request.url.path == "/api/calls"
    assert dict(request.url.params) == {"enableGreetingPrompt": "false", "priorCallId": "p1"}
    assert request.headers["x-api-key"] == "key.123"
    assert json.loads(request.content) == {
        "systemPrompt": "Be brief",
        "medium": {"serverWebSocket": {"inputSampleRate": 16000}},
    }


async def test_create_call_with_dict_and_no_query() -> None:
    client, seen = make_client(lambda r: httpx.Response(201, json={"callId": "c1"}))
    async with client:
        await client.calls.create({"systemPrompt": "x"})
    assert seen[0].url.query == b""
    assert json.loads(seen[0].content) == {"systemPrompt": "x"}


@pytest.mark.parametrize("base", [BASE, BASE + "/"])
async def test_paths_of_every_endpoint(base: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE" or request.url.path.endswith("send_data_message"):
            return httpx.Response(204)
        if request.url.path.endswith("/tools"):
            return httpx.Response(200, json=[{"callToolId": "t"}])
        return httpx.Response(200, json={"results": [], "next": None, "previous": None, "total": 0})

    client, seen = make_client(handler, base)
    async with client:
        await client.calls.list(page_size=5, cursor="abc")
        await client.calls.get("c1")
        assert await client.calls.delete("c1") is None
        await client.calls.messages("c1", page_size=2)
        await client.calls.messages("c1", mode="in_call")
        assert await client.calls.tools("c1") == [{"callToolId": "t"}]
        assert await client.calls.send_data_message("c1", {"type": "hang_up"}) is None
        await client.calls.stages("c1", page_size=1, cursor="s2")
        await client.calls.stage("c1", "st1")
        await client.calls.stage_messages("c1", "st1", page_size=3)
        assert await client.calls.stage_tools("c1", "st1") == [{"callToolId": "t"}]
        await client.models.list()
        await client.voices.list()
        await client.accounts.me()
    assert [(r.method, r.url.path, r.url.query.decode()) for r in seen] == [
        ("GET", "/api/calls", "pageSize=5&cursor=abc"),
        ("GET", "/api/calls/c1", ""),
        ("DELETE", "/api/calls/c1", ""),
        ("GET", "/api/calls/c1/messages", "pageSize=2"),
        ("GET", "/api/calls/c1/messages", "mode=in_call"),
        ("GET", "/api/calls/c1/tools", ""),
        ("POST", "/api/calls/c1/send_data_message", ""),
        ("GET", "/api/calls/c1/stages", "pageSize=1&cursor=s2"),
        ("GET", "/api/calls/c1/stages/st1", ""),
        ("GET", "/api/calls/c1/stages/st1/messages", "pageSize=3"),
        ("GET", "/api/calls/c1/stages/st1/tools", ""),
        ("GET", "/api/models", ""),
        ("GET", "/api/voices", ""),
        ("GET", "/api/accounts/me", ""),
    ]
    assert json.loads(seen[6].content) == {"type": "hang_up"}


async def test_all_messages_follows_cursors() -> None:
    pages = {
        None: {"results": [{"text": "a"}], "next": f"{BASE}/calls/c1/messages?cursor=p2&pageSize=1", "total": 3},
        "p2": {"results": [{"text": "b"}], "next": f"{BASE}/calls/c1/messages?cursor=p3", "total": 3},
        "p3": {"results": [{"text": "c"}], "next": None, "total": 3},
    }
    client, seen = make_client(lambda r: httpx.Response(200, json=pages[r.url.params.get("cursor")]))
    async with client:
        messages = await client.calls.all_messages("c1")
    assert [m["text"] for m in messages] == ["a", "b", "c"]
    assert len(seen) == 3


async def test_all_stages_and_all_stage_messages_follow_cursors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        path = request.url.path
        if cursor is None:
            return httpx.Response(200, json={"results": [{"n": 1}], "next": f"{BASE}{path[4:]}?cursor=two", "total": 2})
        return httpx.Response(200, json={"results": [{"n": 2}], "next": None, "total": 2})

    client, seen = make_client(handler)
    async with client:
        stages = await client.calls.all_stages("c1", page_size=1)
        messages = await client.calls.all_stage_messages("c1", "st1")
        in_call = await client.calls.all_messages("c1", mode="in_call")
    assert stages == messages == in_call == [{"n": 1}, {"n": 2}]
    assert [(r.url.path, r.url.query.decode()) for r in seen] == [
        ("/api/calls/c1/stages", "pageSize=1"),
        ("/api/calls/c1/stages", "pageSize=1&cursor=two"),
        ("/api/calls/c1/stages/st1/messages", ""),
        ("/api/calls/c1/stages/st1/messages", "cursor=two"),
        ("/api/calls/c1/messages", "mode=in_call"),
        ("/api/calls/c1/messages", "cursor=two&mode=in_call"),
    ]


async def test_all_messages_stops_on_a_repeated_cursor() -> None:
    page = {"results": [{"text": "a"}], "next": f"{BASE}/calls/c1/messages?cursor=same", "total": 9}
    client, seen = make_client(lambda r: httpx.Response(200, json=page))
    async with client:
        messages = await client.calls.all_messages("c1")
    assert len(seen) == 2 and len(messages) == 2


@pytest.mark.parametrize(
    ("status", "body", "kind", "detail"),
    [
        (401, {"detail": "Invalid API key."}, Unauthorized, "Invalid API key."),
        (403, {"detail": "Forbidden"}, Unauthorized, "Forbidden"),
        (404, {"detail": "Not found."}, NotFound, "Not found."),
        (400, {"systemPrompt": ["bad"]}, InvalidRequest, {"systemPrompt": ["bad"]}),
        (422, {"detail": [{"loc": ["body"], "msg": "x"}]}, InvalidRequest, [{"loc": ["body"], "msg": "x"}]),
        (429, {"detail": "Slow down"}, RateLimited, "Slow down"),
        (500, {"detail": "boom"}, ApiError, "boom"),
    ],
)
async def test_error_statuses(status: int, body: Any, kind: type[ApiError], detail: Any) -> None:
    client, _ = make_client(lambda r: httpx.Response(status, json=body))
    async with client:
        with pytest.raises(kind) as info:
            await client.calls.get("c1")
    assert type(info.value) is kind
    assert info.value.status_code == status
    assert info.value.detail == detail


async def test_error_with_a_text_body() -> None:
    client, _ = make_client(lambda r: httpx.Response(502, text="Bad Gateway from proxy"))
    async with client:
        with pytest.raises(ApiError) as info:
            await client.accounts.me()
    assert info.value.status_code == 502
    assert info.value.detail == "Bad Gateway from proxy"


async def test_transport_error_is_an_api_error_with_status_0() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client, _ = make_client(refuse)
    async with client:
        with pytest.raises(ApiError) as info:
            await client.calls.list()
    assert info.value.status_code == 0
    assert isinstance(info.value.__cause__, httpx.ConnectError)


async def test_non_json_success_body() -> None:
    client, _ = make_client(lambda r: httpx.Response(200, text="<html>"))
    async with client:
        with pytest.raises(ApiError):
            await client.calls.get("c1")


async def test_closing_the_client_closes_httpx() -> None:
    client, _ = make_client(lambda r: httpx.Response(200, json={}))
    async with client:
        pass
    with pytest.raises(RuntimeError):
        await client.calls.get("c1")
