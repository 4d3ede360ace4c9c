"""/api/agents and /api/agents/{id}/calls, in process (create_app(services=...) over ASGITransport)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.platform.conftest import Api

TEMPLATE: dict[str, Any] = {
    "systemPrompt": "You help {{customer.name}} with their {{plan}} plan.",
    "languageHint": "{{lang}}",
    "timeExceededMessage": "Sorry {{customer.name}}, time is up.",
    "inactivityMessages": [{"duration": "8s", "message": "Still there, {{customer.name}}?"}],
    "temperature": 0.4,
    "maxDuration": "600s",
    "joinTimeout": "45s",
    "firstSpeakerSettings": {"user": {}},
    "medium": {"serverWebSocket": {"inputSampleRate": 16000}},
    "sharedSecrets": ["a-shared-secret-of-16+"],
    "selectedTools": [
        {"temporaryTool": {"modelToolName": "lookup", "description": "Look up {{customer.name}}'s orders", "client": {},
                           "staticParameters": [{"name": "account", "location": "PARAMETER_LOCATION_BODY", "value": {"id": "{{customer.id}}"}}]}},
        {"toolName": "hangUp"},
        {"temporaryTool": {"modelToolName": "weather", "description": "Weather", "client": {}}, "nameOverride": "forecast"},
    ],
}
CONTEXT = {"customer": {"name": "Ada", "id": 7}, "plan": "gold", "lang": "en-GB"}


async def create_agent(api: Api, **body: Any) -> dict[str, Any]:
    r = await api.client.post("/agents", json={"name": "support", "callTemplate": TEMPLATE, **body})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_agent_crud_round_trip(api: Api) -> None:
    agent = await create_agent(api)
    assert set(agent) == {"agentId", "publishedRevisionId", "name", "created", "callTemplate", "statistics"}
    assert agent["name"] == "support" and agent["publishedRevisionId"] is None and agent["statistics"] == {"calls": 0}
    template = agent["callTemplate"]
    assert "sharedSecrets" not in template  # write-only
    assert template["systemPrompt"] == TEMPLATE["systemPrompt"] and template["maxDuration"] == "600s"
    assert template["name"] == "support" and template["created"] and template["updated"]
    got = await api.client.get(f"/agents/{agent['agentId']}")
    assert got.json() == agent

    patched = (await api.client.patch(f"/agents/{agent['agentId']}", json={"name": "renamed"})).json()
    assert patched["name"] == "renamed" and patched["callTemplate"]["systemPrompt"] == TEMPLATE["systemPrompt"]
    replaced = (await api.client.patch(f"/agents/{agent['agentId']}", json={"callTemplate": {"systemPrompt": "New."}})).json()
    assert replaced["callTemplate"]["systemPrompt"] == "New." and "maxDuration" not in replaced["callTemplate"]
    cleared = (await api.client.patch(f"/agents/{agent['agentId']}", json={"callTemplate": None})).json()
    assert cleared["callTemplate"] is None and cleared["name"] == "renamed"

    assert (await api.client.delete(f"/agents/{agent['agentId']}")).status_code == 204
    assert (await api.client.get(f"/agents/{agent['agentId']}")).status_code == 404
    assert (await api.client.delete(f"/agents/{agent['agentId']}")).status_code == 404


async def test_list_search_sort_and_pages(api: Api) -> None:
    for name in ["bravo", "alpha", "charlie", "alphabet"]:
        assert (await api.client.post("/agents", json={"name": name})).status_code == 201
    newest_first = (await api.client.get("/agents")).json()
    assert [a["name"] for a in newest_first["results"]] == ["alphabet", "charlie", "alpha", "bravo"]
    assert newest_first["total"] == 4 and newest_first["next"] is None
    by_name = (await api.client.get("/agents", params={"sort": "name"})).json()["results"]
    assert [a["name"] for a in by_name] == ["alpha", "alphabet", "bravo", "charlie"]
    assert [a["name"] for a in (await api.client.get("/agents", params={"sort": "-name"})).json()["results"]][0] == "charlie"
    found = (await api.client.get("/agents", params={"search": "ALPHA", "sort": "created"})).json()
    assert [a["name"] for a in found["results"]] == ["alpha", "alphabet"] and found["total"] == 2
    first = (await api.client.get("/agents", params={"pageSize": 3, "sort": "name"})).json()
    assert len(first["results"]) == 3 and "cursor=" in first["next"]
    second = (await api.client.get(first["next"].replace("http://voxcall.test/api", ""))).json()
    assert [a["name"] for a in second["results"]] == ["charlie"] and second["previous"]
    bad = await api.client.get("/agents", params={"sort": "color"})
    assert bad.status_code == 422 and "-created" in bad.json()["detail"]


async def test_agent_call_fills_the_template(api: Api) -> None:
    agent = await create_agent(api)
    r = await api.client.post(f"/agents/{agent['agentId']}/calls", json={"templateContext": CONTEXT, "metadata": {"source": "test"}})
    assert r.status_code == 201, r.text
    call = r.json()
    assert call["agentId"] == agent["agentId"] and call["agent"] == {"agentId": agent["agentId"], "name": "support"}
    assert call["systemPrompt"] == "You help Ada with their gold plan."
    assert call["languageHint"] == "en-GB" and call["timeExceededMessage"] == "Sorry Ada, time is up."
    assert call["inactivityMessages"] == [{"duration": "8s", "message": "Still there, Ada?"}]
    assert call["maxDuration"] == "600s" and call["joinTimeout"] == "45s" and call["temperature"] == 0.4
    assert call["firstSpeakerSettings"] == {"user": {}} and call["metadata"] == {"source": "test"}
    assert call["medium"] == {"serverWebSocket": {"inputSampleRate": 16000}} and call["joinUrl"]
    tools = (await api.client.get(f"/calls/{call['callId']}/tools")).json()
    assert [t["name"] for t in tools] == ["lookup", "hangUp", "forecast"]
    assert tools[0]["definition"]["description"] == "Look up Ada's orders"
    assert tools[0]["definition"]["staticParameters"][0]["value"] == {"id": "7"}
    assert (await api.client.get(f"/agents/{agent['agentId']}")).json()["statistics"] == {"calls": 1}
    listed = (await api.client.get(f"/agents/{agent['agentId']}/calls")).json()
    assert [c["callId"] for c in listed["results"]] == [call["callId"]] and listed["total"] == 1
    other = (await api.client.post("/calls", json={"systemPrompt": "plain"})).json()
    assert other["agentId"] is None and other["agent"] is None
    assert (await api.client.get(f"/agents/{agent['agentId']}/calls")).json()["total"] == 1


async def test_request_overrides_and_tool_overrides(api: Api) -> None:
    agent = await create_agent(api)
    body = {
        "templateContext": CONTEXT, "maxDuration": "60s", "recordingEnabled": True, "initialOutputMedium": "MESSAGE_MEDIUM_TEXT",
        "firstSpeakerSettings": {"agent": {"text": "Hello!"}}, "initialMessages": [{"role": "MESSAGE_ROLE_USER", "text": "earlier"}],
        "callbacks": {"ended": {"url": "https://example.com/ended", "secrets": ["s"]}},
        "toolOverrides": {"remove": ["forecast", "hangUp"], "add": [{"temporaryTool": {"modelToolName": "forecast", "client": {},
                                                                                        "description": "New forecast"}}]},
    }
    call = (await api.client.post(f"/agents/{agent['agentId']}/calls", json=body)).json()
    assert call["maxDuration"] == "60s" and call["recordingEnabled"] is True and call["initialOutputMedium"] == "MESSAGE_MEDIUM_TEXT"
    assert call["firstSpeakerSettings"] == {"agent": {"text": "Hello!"}} and call["joinTimeout"] == "45s"
    assert call["callbacks"] == {"ended": {"url": "https://example.com/ended", "secrets": ["s"]}}
    tools = (await api.client.get(f"/calls/{call['callId']}/tools")).json()
    assert [(t["name"], t["definition"]["description"]) for t in tools] == [("lookup", "Look up Ada's orders"), ("forecast", "New forecast")]
    messages = (await api.client.get(f"/calls/{call['callId']}/messages")).json()["results"]
    assert [(m["role"], m["text"]) for m in messages] == [("MESSAGE_ROLE_USER", "earlier")]
    none = (await api.client.post(f"/agents/{agent['agentId']}/calls", json={"templateContext": CONTEXT, "toolOverrides": {"removeAll": True}})).json()
    assert (await api.client.get(f"/calls/{none['callId']}/tools")).json() == []


async def test_agent_without_template_and_voice_override(api: Api) -> None:
    bare = (await api.client.post("/agents", json={})).json()
    assert bare["name"] == "" and bare["callTemplate"] is None
    call = (await api.client.post(f"/agents/{bare['agentId']}/calls")).json()
    assert call["agentId"] == bare["agentId"] and call["maxDuration"] == "3600s" and call["systemPrompt"] is None
    voiced = (await api.client.post("/agents", json={"name": "v", "callTemplate": {"externalVoice": {"generic": {"voice": "x"}}}})).json()
    r = await api.client.post(f"/agents/{voiced['agentId']}/calls", json={"voice": "nope"})
    # The request's voice replaced the external one; not installed, it is spoken with the default voice (a warning event).
    assert r.status_code == 201 and r.json()["voice"] == "nope" and "externalVoice" not in r.json(), r.text
    events = (await api.client.get(f"/calls/{r.json()['callId']}/events")).json()["results"]
    assert [(e["type"], e["extras"]["requested"]) for e in events] == [("voice_substituted", "nope")]


async def test_context_schema(api: Api) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name"]}
    agent = (await api.client.post("/agents", json={"name": "s", "callTemplate": {"systemPrompt": "{{name}} ({{age}})", "contextSchema": schema}})).json()
    assert agent["callTemplate"]["contextSchema"] == schema
    call = (await api.client.post(f"/agents/{agent['agentId']}/calls", json={"templateContext": {"name": "Bo"}})).json()
    assert call["systemPrompt"] == "Bo ()"  # the schema does not require age: it renders empty
    wrong = await api.client.post(f"/agents/{agent['agentId']}/calls", json={"templateContext": {"name": "Bo", "age": "old"}})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "templateContext", "age"]
    missing = await api.client.post(f"/agents/{agent['agentId']}/calls", json={"templateContext": {}})
    assert missing.status_code == 422 and "name" in missing.json()["detail"][0]["msg"]
    bad_schema = await api.client.post("/agents", json={"callTemplate": {"contextSchema": {"type": "colour"}}})
    assert bad_schema.status_code == 422 and bad_schema.json()["detail"][0]["loc"] == ["body", "callTemplate", "contextSchema"]
    remote = await api.client.post("/agents", json={"callTemplate": {"contextSchema": {"$ref": "http://127.0.0.1:9/s.json"}}})
    assert remote.status_code == 422 and "other documents" in remote.text


async def test_missing_variables_are_named(api: Api) -> None:
    agent = await create_agent(api)
    r = await api.client.post(f"/agents/{agent['agentId']}/calls", json={"templateContext": {"customer": {"name": "Ada"}}})
    assert r.status_code == 422
    detail = r.json()["detail"][0]
    assert detail["loc"] == ["body", "templateContext"] and "plan" in detail["msg"] and "lang" in detail["msg"]
    tool_only = (await api.client.post("/agents", json={"callTemplate": {"selectedTools": [
        {"temporaryTool": {"modelToolName": "t", "client": {}, "description": "for {{who}}"}}]}})).json()
    r = await api.client.post(f"/agents/{tool_only['agentId']}/calls", json={})
    assert r.status_code == 422 and "who" in r.text
    assert (await api.client.get("/calls")).json()["total"] == 0  # nothing half-made was stored


@pytest.mark.parametrize(("body", "where"), [
    ({"name": 5}, ["body", "name"]),
    ({"name": "x" * 65}, ["body", "name"]),
    ({"callTemplate": "prompt"}, ["body", "callTemplate"]),
    ({"callTemplate": {"temperature": 3}}, ["body", "callTemplate", "temperature"]),
    ({"callTemplate": {"initialOutputMedium": "MESSAGE_MEDIUM_SMOKE"}}, ["body", "callTemplate", "initialOutputMedium"]),
    ({"callTemplate": {"retentionPolicy": "forever"}}, ["body", "callTemplate", "retentionPolicy"]),
    ({"callTemplate": {"maxDuration": "1h"}}, ["body", "callTemplate", "maxDuration"]),
    ({"callTemplate": {"systemPrompt": "Hi {{#user}}x{{/user}}"}}, ["body", "callTemplate", "systemPrompt"]),
    ({"callTemplate": {"inactivityMessages": [{"duration": "5s", "message": "{{oops"}]}}, ["body", "callTemplate", "inactivityMessages", 0, "message"]),
    ({"callTemplate": {"voice": "a", "externalVoice": {"generic": {}}}}, ["body", "callTemplate"]),
    ({"callTemplate": {"selectedTools": [{"toolName": "a"}, {"toolName": "a"}]}}, ["body", "callTemplate"]),
])
async def test_bad_agents_are_refused(api: Api, body: dict[str, Any], where: list[Any]) -> None:
    r = await api.client.post("/agents", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == where
    assert (await api.client.get("/agents")).json()["total"] == 0


async def test_bad_agent_calls_are_refused(api: Api) -> None:
    agent = await create_agent(api)
    url = f"/agents/{agent['agentId']}/calls"
    cases = [
        ({"templateContext": CONTEXT, "voiceOverrides": {"generic": {}}}, "voiceOverrides"),
        ({"templateContext": CONTEXT, "toolOverrides": {"remove": ["lookup"], "removeAll": True}}, "at most one"),
        ({"templateContext": CONTEXT, "toolOverrides": {"remove": ["nothere"]}}, "no tool named nothere"),
        ({"templateContext": CONTEXT, "metadata": {"ultravox.x": "y"}}, "reserved"),
        ({"templateContext": CONTEXT, "joinTimeout": "soon"}, "invalid duration"),
        ({"templateContext": "Ada"}, "templateContext"),
        ({"templateContext": {**CONTEXT, "lang": "a-very-long-language-tag"}}, "languageHint"),
        ({"templateContext": CONTEXT, "callbacks": {"joined": {"secrets": []}}}, "url"),
    ]
    for body, expected in cases:
        r = await api.client.post(url, json=body)
        assert r.status_code == 422 and expected in r.text, (body, r.text)
    malformed = await api.client.post(url, content=b"{nope", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 422
    assert (await api.client.get(f"/agents/{agent['agentId']}")).json()["statistics"] == {"calls": 0}


async def test_unknown_and_other_accounts_agents_are_not_found(api: Api) -> None:
    agent = await create_agent(api)
    other = await api.other_account()
    async with other:
        for method, path in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/calls"), ("POST", "/calls")]:
            r = await other.request(method, f"/agents/{agent['agentId']}{path}", json={} if method in ("PATCH", "POST") else None)
            assert r.status_code == 404, (method, path, r.text)
            assert "GET /api/agents" in r.json()["detail"]
        assert (await other.get("/agents")).json()["total"] == 0
    for agent_id in [str(uuid.uuid4()), "not-a-uuid"]:
        assert (await api.client.get(f"/agents/{agent_id}")).status_code == 404
        assert (await api.client.post(f"/agents/{agent_id}/calls", json={})).status_code == 404
    assert (await api.client.get("/agents", headers={"X-API-Key": "bad.key"})).status_code == 401
