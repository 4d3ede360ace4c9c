"""/api/tools in process (create_app over httpx.ASGITransport): CRUD, listing, bad input, selection in calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.toolserver import ToolServer
from voxcall.config import Settings
from voxcall.protocol.rest import CallMessage
from voxcall.providers.fake import ScriptedLLM
from voxcall.server.app import build_services, create_app
from voxcall.server.services import Services

WEATHER = {"modelToolName": "getWeather", "description": "Weather for a city.",
           "http": {"baseUrlPattern": "https://weather.example.com/v1", "httpMethod": "GET"},
           "dynamicParameters": [{"name": "city", "location": "PARAMETER_LOCATION_QUERY", "schema": {"type": "string"},
                                  "required": True}]}


class Api:
    def __init__(self, svc: Services, keys: dict[str, str]) -> None:
        self.svc = svc
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services=svc)), base_url="http://test/api")
        self.keys = keys

    async def call(self, method: str, path: str, who: str = "a", **kw: Any) -> httpx.Response:
        return await self.client.request(method, path, headers={"X-API-Key": self.keys[who], **kw.pop("headers", {})}, **kw)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(data_dir=tmp_path, speech=False, outbound_allow="127.0.0.0/8")
    svc = await build_services(settings, llm=ScriptedLLM([]), speech=None)
    keys = {who: (await svc.store.create_api_key(account_id=f"acct-{who}"))[0] for who in ("a", "b")}
    api = Api(svc, keys)
    yield api
    await api.client.aclose()
    await svc.close()


@pytest.fixture
def backend() -> Iterator[ToolServer]:
    with ToolServer() as server:
        yield server


async def create(api: Api, name: str = "weather", definition: dict[str, Any] | None = None, who: str = "a") -> dict[str, Any]:
    r = await api.call("POST", "/tools", who, json={"name": name, "definition": definition or WEATHER})
    assert r.status_code == 201, r.text
    return r.json()


async def test_crud_round_trip(api: Api) -> None:
    tool = await create(api)
    assert set(tool) == {"toolId", "name", "created", "definition", "ownership"}
    assert tool["ownership"] == "private" and tool["created"].endswith("Z")
    assert tool["definition"]["http"] == {"baseUrlPattern": "https://weather.example.com/v1", "httpMethod": "GET"}
    assert (await api.call("GET", f"/tools/{tool['toolId']}")).json() == tool
    changed = {**WEATHER, "description": "Forecast."}
    put = await api.call("PUT", f"/tools/{tool['toolId']}", json={"name": "forecast", "definition": changed})
    assert put.status_code == 200 and put.json()["name"] == "forecast" and put.json()["definition"]["description"] == "Forecast."
    assert put.json()["toolId"] == tool["toolId"] and put.json()["created"] == tool["created"]
    assert (await api.call("DELETE", f"/tools/{tool['toolId']}")).status_code == 204
    gone = await api.call("GET", f"/tools/{tool['toolId']}")
    assert gone.status_code == 404 and gone.json() == {"detail": "Not found."}


async def test_list_paginates_filters_and_sorts(api: Api) -> None:
    for name in ("beta", "alpha", "gamma"):
        await create(api, name)
    await create(api, "other-account", who="b")
    page = (await api.call("GET", "/tools", params={"pageSize": 2})).json()
    assert page["total"] == 7 and [t["name"] for t in page["results"]] == ["gamma", "alpha"]  # newest first, private first
    assert page["previous"] is None and "cursor=" in page["next"]
    rest = (await api.client.get(page["next"], headers={"X-API-Key": api.keys["a"]})).json()
    assert [t["name"] for t in rest["results"]] == ["beta", "hangUp"] and rest["next"] and rest["previous"]
    third = (await api.client.get(rest["next"], headers={"X-API-Key": api.keys["a"]})).json()
    assert [t["name"] for t in third["results"]] == ["coldTransfer", "playDtmfSounds"] and third["next"]
    last = (await api.client.get(third["next"], headers={"X-API-Key": api.keys["a"]})).json()
    assert [t["name"] for t in last["results"]] == ["leaveVoicemail"] and last["next"] is None
    public = (await api.call("GET", "/tools", params={"ownership": "public"})).json()
    assert [(t["name"], t["ownership"]) for t in public["results"]] == [
        ("hangUp", "public"), ("coldTransfer", "public"), ("playDtmfSounds", "public"), ("leaveVoicemail", "public")]
    alphabetic = (await api.call("GET", "/tools", params={"sortOrder": "alphabetic"})).json()
    assert [t["name"] for t in alphabetic["results"]] == [
        "alpha", "beta", "coldTransfer", "gamma", "hangUp", "leaveVoicemail", "playDtmfSounds"]
    display = (await api.call("GET", "/tools", params={"sortOrder": "display"})).json()
    assert [t["name"] for t in display["results"]] == [
        "coldTransfer", "hangUp", "leaveVoicemail", "playDtmfSounds", "gamma", "alpha", "beta"]
    found = (await api.call("GET", "/tools", params={"search": "AL", "ownership": "private"})).json()
    assert [t["name"] for t in found["results"]] == ["alpha"] and found["total"] == 1
    cursor = page["next"].split("cursor=")[1]
    wrong = await api.call("GET", "/tools", params={"cursor": cursor, "sortOrder": "alphabetic"})
    assert wrong.status_code == 422 and "sortOrder=default" in wrong.json()["detail"]


@pytest.mark.parametrize(("kwargs", "status", "needle"), [
    ({"content": b'{"name": "x", "definition": ', "headers": {"Content-Type": "application/json"}}, 422, "not valid JSON"),
    ({"json": {"name": 5, "definition": WEATHER}}, 422, "name"),
    ({"json": {"name": "x" * 41, "definition": WEATHER}}, 422, "40"),
    ({"json": {"name": "x"}}, 422, "definition"),
    ({"json": {"name": "x", "definition": {**WEATHER, "dynamicParameters": [
        {"name": "city", "location": "PARAMETER_LOCATION_NOWHERE"}]}}}, 422, "PARAMETER_LOCATION_QUERY"),
    ({"json": {"name": "x", "definition": {**WEATHER, "automaticParameters": [
        {"name": "c", "knownValue": "KNOWN_PARAM_SHOE_SIZE"}]}}}, 422, "KNOWN_PARAM_CALL_ID"),
    ({"json": {"name": "x", "definition": {**WEATHER, "automaticParameters": [{"name": "c"}]}}}, 422, "set knownValue"),
    ({"json": {"name": "x", "definition": {**WEATHER, "timeout": "41s"}}}, 422, "at most 40s"),
    ({"json": {"name": "x", "definition": {**WEATHER, "http": {"baseUrlPattern": "ftp://x/", "httpMethod": "GET"}}}}, 422,
     "http:// or https://"),
    ({"json": {"name": "x", "definition": {**WEATHER, "http": {"baseUrlPattern": "https://x/{id}", "httpMethod": "GET"}}}},
     422, "placeholders without a PARAMETER_LOCATION_PATH parameter: id"),
    ({"json": {"name": "x", "definition": {"modelToolName": "t", "description": "nothing"}}}, 422, "needs one of http"),
    ({"json": {"name": "x", "definition": {**WEATHER, "requirements": {"httpSecurityOptions": {"options": [
        {"requirements": {"k": {"headerApiKey": {"name": "X"}, "httpAuth": {"scheme": "Bearer"}}}}]}}}}}, 422,
     "exactly one of queryApiKey"),
    ({"files": {"file": ("openapi.yaml", b"openapi: 3.0.0")}}, 415, "application/json"),
])
async def test_bad_bodies_are_refused_with_an_actionable_message(api: Api, kwargs: dict[str, Any], status: int,
                                                                 needle: str) -> None:
    r = await api.call("POST", "/tools", **kwargs)
    assert r.status_code == status, r.text
    assert needle in r.text
    assert (await api.call("GET", "/tools", params={"ownership": "private"})).json()["total"] == 0


async def test_names_ids_and_ownership_rules(api: Api) -> None:
    tool = await create(api)
    dup = await api.call("POST", "/tools", json={"name": "weather", "definition": WEATHER})
    assert dup.status_code == 409 and "already have a tool named 'weather'" in dup.json()["detail"]
    await create(api, "weather", who="b")  # names are per account
    other = tool["toolId"]
    for method, path in [("GET", f"/tools/{other}"), ("DELETE", f"/tools/{other}"), ("GET", f"/tools/{other}/history"),
                         ("POST", f"/tools/{other}/test")]:
        assert (await api.call(method, path, "b")).status_code == 404, (method, path)
    assert (await api.call("PUT", f"/tools/{other}", "b", json={"name": "n", "definition": WEATHER})).status_code == 404
    assert (await api.call("GET", "/tools/not-a-uuid")).status_code == 404
    hang_up = (await api.call("GET", "/tools", params={"ownership": "public"})).json()["results"][0]
    assert (await api.call("GET", f"/tools/{hang_up['toolId']}", "b")).status_code == 200
    for method in ("PUT", "DELETE"):
        r = await api.call(method, f"/tools/{hang_up['toolId']}", json={"name": "hangUp", "definition": WEATHER})
        assert r.status_code == 403 and "built-in" in r.json()["detail"]
    assert (await api.call("GET", "/tools", params={"sortOrder": "sideways"})).status_code == 422
    assert (await api.call("GET", "/tools", params={"ownership": "shared"})).status_code == 422
    assert (await api.call("GET", "/tools", params={"cursor": "garbage"})).json() == {"detail": "Invalid cursor"}
    assert (await api.client.get("/tools")).status_code == 401


async def test_calls_select_tools_by_id_name_and_built_in(api: Api) -> None:
    tool = await create(api)
    shadow = await create(api, "hangUp", {**WEATHER, "modelToolName": "myHangUp"})
    body = {"selectedTools": [
        {"toolId": tool["toolId"], "nameOverride": "weatherOslo", "parameterOverrides": {"city": "Oslo"},
         "descriptionOverride": "Weather in Oslo."},
        {"toolName": "weather"},
        {"toolName": "hangUp"},  # the account's own tool shadows the built-in
        {"temporaryTool": {"modelToolName": "note", "client": {}}},
    ]}
    call = (await api.call("POST", "/calls", json=body)).json()
    tools = (await api.call("GET", f"/calls/{call['callId']}/tools")).json()
    assert [(t["name"], t["toolId"]) for t in tools] == [
        ("weatherOslo", tool["toolId"]), ("getWeather", tool["toolId"]), ("myHangUp", shadow["toolId"]), ("note", None)]
    oslo = tools[0]["definition"]
    assert oslo["description"] == "Weather in Oslo." and oslo["dynamicParameters"] == []
    assert oslo["staticParameters"] == [{"name": "city", "location": "PARAMETER_LOCATION_QUERY", "value": "Oslo"}]
    builtin = (await api.call("POST", "/calls", "b", json={"selectedTools": [{"toolName": "hangUp"}]})).json()
    public = (await api.call("GET", f"/calls/{builtin['callId']}/tools", "b")).json()
    assert [t["name"] for t in public] == ["hangUp"] and "builtIn" not in public[0]["definition"]
    history = (await api.call("GET", f"/tools/{tool['toolId']}/history")).json()
    assert history["total"] == 1 and history["results"][0]["call"]["callId"] == call["callId"]
    assert history["results"][0]["errorCount"] == 0
    await api.svc.store.add_message(call["callId"], CallMessage(role="MESSAGE_ROLE_TOOL_RESULT", tool_name="weatherOslo",
                                                                 text="failed", error_details="HTTP 500"))
    await api.svc.store.add_message(call["callId"], CallMessage(role="MESSAGE_ROLE_TOOL_RESULT", tool_name="note",
                                                                 text="failed", error_details="other tool"))
    assert (await api.call("GET", f"/tools/{tool['toolId']}/history")).json()["results"][0]["errorCount"] == 1
    hang_up_history = (await api.call("GET", f"/tools/{public[0]['toolId']}/history")).json()
    assert [h["call"]["callId"] for h in hang_up_history["results"]] == []  # account a selected its own hangUp


@pytest.mark.parametrize(("selected", "needle"), [
    ([{"toolName": "nope"}], "no tool of yours and no built-in tool has toolName 'nope'"),
    ([{"toolId": "00000000-0000-0000-0000-000000000000"}], "toolId"),
    ([{"toolName": "weather"}, {"toolName": "weather"}], "'getWeather' is already used by selectedTools[0]"),
    ([{"toolName": "weather", "nameOverride": "bad name"}], "nameOverride"),
    ([{"toolName": "weather"}, {"temporaryTool": {"modelToolName": "getWeather", "client": {}}}], "selectedTools[0]"),
    ([{"toolName": "needsKey"}], "needs authTokens for [k]"),
    ([{"toolName": "needsOverride"}], "requires parameterOverrides for: city"),
    ([{"toolId": "x", "toolName": "y"}], "exactly one of toolId, toolName and temporaryTool"),
])
async def test_bad_selections_are_422s_naming_the_entry(api: Api, selected: list[dict[str, Any]], needle: str) -> None:
    await create(api)
    await create(api, "needsKey", {**WEATHER, "modelToolName": "k", "requirements": {"httpSecurityOptions": {"options": [
        {"requirements": {"k": {"headerApiKey": {"name": "X-Key"}}}}]}}})
    await create(api, "needsOverride", {**WEATHER, "modelToolName": "o", "requirements": {"requiredParameterOverrides": ["city"]}})
    r = await api.call("POST", "/calls", json={"selectedTools": selected})
    assert r.status_code == 422 and needle in r.text, r.text
    assert (await api.call("GET", "/calls")).json()["total"] == 0


async def test_test_endpoint_runs_the_tool(api: Api, backend: ToolServer) -> None:
    backend.routes["/weather"] = lambda seen: (200, {"Content-Type": "text/plain", "X-Ultravox-Agent-Reaction": "listens"},
                                               f"{seen.query['city'][0]} {seen.headers.get('x-key')}".encode())
    definition = {**WEATHER, "http": {"baseUrlPattern": f"{backend.url}/weather", "httpMethod": "GET"},
                  "requirements": {"httpSecurityOptions": {"options": [{"requirements": {"k": {"headerApiKey": {"name": "X-Key"}}}}]}}}
    tool = await create(api, "local", definition)
    r = await api.call("POST", f"/tools/{tool['toolId']}/test", json={"parameters": {"city": "Oslo"}, "authTokens": {"k": "s3"}})
    assert r.status_code == 200 and r.json() == {"success": True, "result": "Oslo s3", "responseType": "tool-response",
                                                 "agentReaction": "listens", "updateCallState": None, "errorDetails": None,
                                                 "notes": []}
    missing = await api.call("POST", f"/tools/{tool['toolId']}/test", json={"authTokens": {"k": "s3"}})
    assert missing.json()["success"] is False and missing.json()["result"] == "The tool getWeather needs city."
    no_auth = await api.call("POST", f"/tools/{tool['toolId']}/test", json={"parameters": {"city": "Oslo"}})
    assert no_auth.status_code == 422 and "authTokens" in no_auth.text
    bad = await api.call("POST", f"/tools/{tool['toolId']}/test", json={"parameters": "Oslo"})
    assert bad.status_code == 422 and "parameters" in bad.text
    client_tool = await create(api, "clientSide", {"modelToolName": "c", "client": {}})
    assert (await api.call("POST", f"/tools/{client_tool['toolId']}/test")).status_code == 422


async def test_test_endpoint_refuses_private_targets_without_the_exception(tmp_path: Path, backend: ToolServer) -> None:
    svc = await build_services(Settings(data_dir=tmp_path, speech=False), llm=ScriptedLLM([]), speech=None)
    api = Api(svc, {"a": (await svc.store.create_api_key())[0]})
    try:
        tool = await create(api, "local", {**WEATHER, "http": {"baseUrlPattern": f"{backend.url}/x", "httpMethod": "GET"}})
        r = await api.call("POST", f"/tools/{tool['toolId']}/test", json={"parameters": {"city": "Oslo"}})
        assert r.json()["success"] is False and "loopback" in r.json()["errorDetails"] and backend.seen == []
    finally:
        await api.client.aclose()
        await svc.close()
