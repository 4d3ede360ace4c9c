"""REST API against a real `voxcall serve` process on loopback (SmolLM2 model)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.conftest import RunningServer

REQUIRED = ["agent", "agentId", "billedDuration", "billedSideInputTokens", "billedSideOutputTokens", "billingStatus",
            "callId", "clientVersion", "created", "endReason", "ended", "experimentalSettings", "firstSpeaker",
            "firstSpeakerSettings", "initialOutputMedium", "initialState", "joinUrl", "joined", "metadata",
            "requestContext", "shortSummary", "sipDetails", "summary"]


@pytest.fixture()
def api(server: RunningServer) -> httpx.Client:
    with httpx.Client(base_url=server.api, headers=server.headers(), timeout=30) as client:
        yield client


def test_create_with_only_a_system_prompt_returns_201_and_every_required_field(api: httpx.Client) -> None:
    r = api.post("/calls", json={"systemPrompt": "You are terse."})
    assert r.status_code == 201
    call = r.json()
    assert [k for k in REQUIRED if k not in call] == []
    assert call["metadata"] == {} and call["initialState"] == {} and call["firstSpeakerSettings"] == {"agent": {}}
    assert call["joinUrl"].startswith("ws://127.0.0.1:") and f"/calls/{call['callId']}/server_web_socket?token=" in call["joinUrl"]
    assert call["joinTimeout"] == "30s" and call["maxDuration"] == "3600s" and call["endReason"] is None


def test_every_accepted_field_is_stored_and_returned(api: httpx.Client) -> None:
    body = {
        "systemPrompt": "Be nice.", "temperature": 0.3, "model": "fixie-ai/ultravox", "voice": None, "languageHint": "en",
        "joinTimeout": "45.500000s", "maxDuration": "600s", "timeExceededMessage": "Bye!", "unknownField": [1],
        "medium": {"serverWebSocket": {"inputSampleRate": 16000, "outputSampleRate": 24000, "clientBufferSizeMs": 30000}},
        "firstSpeakerSettings": {"user": {"fallback": {"delay": "5s", "text": "Hello?"}}},
        "initialOutputMedium": "MESSAGE_MEDIUM_TEXT", "metadata": {"customer": "42"}, "initialState": {"step": 1},
        "selectedTools": [{"temporaryTool": {"modelToolName": "getWeather", "description": "Weather lookup", "client": {},
                           "dynamicParameters": [{"name": "city", "location": "PARAMETER_LOCATION_BODY",
                                                  "schema": {"type": "string", "title": "City"}, "required": True}]}}],
    }
    created = api.post("/calls", json=body).json()
    call = api.get(f"/calls/{created['callId']}").json()
    assert call == created
    expected = {"systemPrompt": "Be nice.", "temperature": 0.3, "model": "fixie-ai/ultravox", "voice": None, "languageHint": "en",
                "joinTimeout": "45.5s", "maxDuration": "600s", "timeExceededMessage": "Bye!", "firstSpeaker": "FIRST_SPEAKER_USER",
                "initialOutputMedium": "MESSAGE_MEDIUM_TEXT", "metadata": {"customer": "42"}, "initialState": {"step": 1}}
    assert {k: call[k] for k in expected} == expected
    assert call["medium"]["serverWebSocket"]["outputSampleRate"] == 24000
    assert call["firstSpeakerSettings"] == {"user": {"fallback": {"delay": "5s", "text": "Hello?"}}}
    tools = api.get(f"/calls/{call['callId']}/tools").json()
    assert isinstance(tools, list) and tools[0]["name"] == "getWeather" and tools[0]["toolId"] is None
    assert tools[0]["definition"]["client"] == {} and tools[0]["definition"]["timeout"] == "2.5s"


def test_list_paginates_with_cursors(server: RunningServer) -> None:
    # a fresh account, so other tests' calls do not count
    key = subprocess.run([sys.executable, "-m", "voxcall", "keys", "create", "--account", "pager", "--data-dir", str(server.data_dir)],
                         capture_output=True, text=True, check=True).stdout.strip()
    with httpx.Client(base_url=server.api, headers={"X-API-Key": key}) as api:
        ids = [api.post("/calls", json={"systemPrompt": str(i)}).json()["callId"] for i in range(3)]
        first = api.get("/calls", params={"pageSize": 2}).json()
        assert first["total"] == 3 and len(first["results"]) == 2 and first["previous"] is None and "cursor=" in first["next"]
        assert api.get("/calls", params={"pageSize": 0}).json()["results"] == api.get("/calls").json()["results"]
        assert len(api.get("/calls", params={"pageSize": 10**30}).json()["results"]) == 3
        second = httpx.get(first["next"], headers={"X-API-Key": key}).json()
        assert len(second["results"]) == 1 and second["next"] is None and second["previous"]
        assert {c["callId"] for c in first["results"] + second["results"]} == set(ids)
        # another account cannot see this account's calls
        other = httpx.get(f"{server.api}/calls/{ids[0]}", headers=server.headers())
        assert other.status_code == 404


def test_auth_errors_and_header_case(server: RunningServer) -> None:
    assert httpx.get(f"{server.api}/calls").status_code == 401
    bad = httpx.get(f"{server.api}/calls", headers={"X-API-Key": "abcdefgh." + "0" * 32})
    assert bad.status_code == 401 and "Invalid API key" in bad.json()["detail"]
    assert httpx.get(f"{server.api}/calls", headers={"x-api-key": server.api_key}).status_code == 200
    assert httpx.get(f"{server.api}/calls", headers={"X-Unsafe-API-Key": server.api_key}).status_code == 200


def test_not_found_and_validation_errors(api: httpx.Client) -> None:
    assert api.get("/calls/00000000-0000-0000-0000-000000000000").status_code == 404
    assert api.get("/calls/not-a-uuid").json() == {"detail": "Not found."}
    r = api.post("/calls", json={"temperature": 7, "joinTimeout": "1h"})
    assert r.status_code == 422
    fields = {tuple(e["loc"])[-1] for e in r.json()["detail"]}
    assert {"temperature", "joinTimeout"} <= fields
    r = api.post("/calls", json={"selectedTools": [{"toolName": "noSuchTool"}]})
    assert r.status_code == 422 and "noSuchTool" in str(r.json()["detail"])
    assert api.post("/calls", content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 422


def test_delete_then_gone_and_data_message_needs_a_live_call(api: httpx.Client) -> None:
    call_id = api.post("/calls", json={}).json()["callId"]
    r = api.post(f"/calls/{call_id}/send_data_message", json={"type": "forced_agent_message", "content": "hi"})
    assert r.status_code == 422 and "not active" in r.json()["detail"]
    assert api.delete(f"/calls/{call_id}").status_code == 204
    assert api.get(f"/calls/{call_id}").status_code == 404
    assert api.delete(f"/calls/{call_id}").status_code == 404


def test_prior_call_id_continues_history(api: httpx.Client) -> None:
    initial = [{"role": "MESSAGE_ROLE_USER", "text": "My name is Ada."}, {"role": "MESSAGE_ROLE_AGENT", "text": "Hi Ada!"}]
    prior = api.post("/calls", json={"systemPrompt": "S", "initialMessages": initial, "metadata": {"a": "1"}}).json()
    assert [m["text"] for m in api.get(f"/calls/{prior['callId']}/messages").json()["results"]] == ["My name is Ada.", "Hi Ada!"]
    follow = api.post("/calls", params={"priorCallId": prior["callId"]}, json={"temperature": 0.5})
    assert follow.status_code == 201
    call = follow.json()
    assert call["systemPrompt"] == "S" and call["metadata"] == {"a": "1"} and call["temperature"] == 0.5
    messages = api.get(f"/calls/{call['callId']}/messages").json()["results"]
    assert [(m["role"], m["text"], m["callStageMessageIndex"]) for m in messages] == [
        ("MESSAGE_ROLE_USER", "My name is Ada.", 0), ("MESSAGE_ROLE_AGENT", "Hi Ada!", 1)]
    both = api.post("/calls", params={"priorCallId": prior["callId"]}, json={"initialMessages": initial})
    assert both.status_code == 422


def test_models_voices_account_schema(api: httpx.Client) -> None:
    models = api.get("/models").json()
    assert "ultravox-v0.7" in [m["name"] for m in models["results"]] and models["total"] == len(models["results"])
    voices = api.get("/voices").json()
    assert set(voices) == {"next", "previous", "results", "total"}
    assert [v["name"] for v in voices["results"]] == ["joe"] and voices["results"][0]["provider"] == "piper"
    joe = voices["results"][0]
    assert str(uuid.UUID(joe["voiceId"])) == joe["voiceId"] and api.get(f"/voices/{joe['voiceId']}").json() == joe
    assert api.get("/voices/00000000-0000-0000-0000-000000000000").status_code == 404
    preview = httpx.get(joe["previewUrl"], headers=api.headers, timeout=60)
    assert preview.status_code == 200 and preview.headers["content-type"] == "audio/wav"
    assert preview.content[:4] == b"RIFF" and len(preview.content) > 22050, "at least half a second of speech"
    hosted = api.post("/calls", json={"voice": "Mark"})  # LiveKit's default: a hosted voice, spoken with the default
    assert hosted.status_code == 201 and hosted.json()["voice"] == "Mark", hosted.text
    events = api.get(f"/calls/{hosted.json()['callId']}/events").json()["results"]
    assert [(e["type"], e["severity"], e["extras"]["voice"]) for e in events] == [("voice_substituted", "warning", "joe")]
    installed = api.post("/calls", json={"voice": "Joe"})
    assert installed.status_code == 201 and api.get(f"/calls/{installed.json()['callId']}/events").json()["results"] == []
    me = api.get("/accounts/me").json()
    assert me["accountId"] and me["name"] and "activeCalls" in me
    schema = api.get("/schema/").json()
    assert "/api/calls" in schema["paths"]


def test_join_timeout_ends_the_call_unjoined(api: httpx.Client) -> None:
    call = api.post("/calls", json={"joinTimeout": "1s"}).json()
    time.sleep(1.6)
    ended = api.get(f"/calls/{call['callId']}").json()
    assert ended["endReason"] == "unjoined" and ended["ended"] and ended["joined"] is None
