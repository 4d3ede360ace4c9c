"""ultravox-mcp 0.2.0, unchanged, against a real voxcall server's REST API (CONFORMANCE.md section 2).

`drive_mcp.py` runs in `.venvs/mcp`, launches the MCP server over stdio with its base URL pointed at
voxcall, and calls its tools the way an MCP host (Claude Desktop, ...) would. A tool succeeds when
the MCP server's own response handling accepts the reply (status, JSON, no `"success": false`).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conformance.harness import driver_report, server_get
from tests.conftest import RunningServer

pytestmark = [pytest.mark.conformance, pytest.mark.models]

TOOLS = ["create_call", "create_tool", "delete_call", "delete_tool", "get_account", "get_call", "get_tool",
         "list_call_messages", "list_calls", "list_tools", "list_voices"]
SYSTEM_PROMPT = "You are a conformance-test agent created through ultravox-mcp."  # as in drive_mcp.py
SEQUENCE = ["create_call", "get_call", "list_calls", "list_call_messages", "list_voices", "get_account",
            "delete_call", "get_call"]


@pytest.fixture(scope="module")
def report(server: RunningServer) -> dict[str, Any]:
    data = driver_report("mcp", "drive_mcp.py", server)
    assert not data.get("exception"), f"the driver raised:\n{data['exception']}"
    return data


def dump(session: dict[str, Any]) -> str:
    """One MCP session, readable in a failure message."""
    calls = [{k: (v[:400] if isinstance(v, str) else v) for k, v in c.items() if k != "json"} for c in session["calls"]]
    return json.dumps({"calls": calls, "exception": session.get("exception"), "stderr": session.get("stderr_tail")},
                      indent=1)


def test_tools_listed(report: dict[str, Any]) -> None:
    for name in ("valid", "wrong_key"):
        session = report[name]
        assert not session.get("exception"), dump(session)
        assert session["server_info"] == {"name": "ultravox-mcp", "version": "0.2.0"}
        assert session["tools"] == TOOLS


def test_call_lifecycle_through_mcp(report: dict[str, Any], server: RunningServer) -> None:
    session = report["valid"]
    info = dump(session)
    calls = session["calls"]
    assert [c["tool"] for c in calls] == SEQUENCE, info
    assert all("exception" not in c for c in calls), info
    assert [c["is_error"] for c in calls] == [False] * 7 + [True], info
    created, got, listed, history, voices, account, deleted = (c["json"] for c in calls[:7])
    gone = calls[7]

    call_id = session["call_id"]
    assert created["callId"] == call_id and created["joinUrl"].startswith(("ws://", "wss://")), created
    assert created["systemPrompt"] == SYSTEM_PROMPT, created
    assert created["firstSpeaker"] == "FIRST_SPEAKER_AGENT" and created["maxDuration"] == "600s", created
    assert created["temperature"] == pytest.approx(0.7), created
    assert got["callId"] == call_id and got["systemPrompt"] == SYSTEM_PROMPT, got
    assert 1 <= len(listed["results"]) <= 2 and listed["total"] >= 1, listed
    assert all("callId" in c for c in listed["results"]), listed
    assert {"next", "previous", "results"} <= listed.keys(), listed
    assert history["results"] == [] and history["total"] == 0, history
    assert voices["results"] and all({"voiceId", "name"} <= v.keys() for v in voices["results"]), voices
    assert account["accountId"], account
    assert deleted == {"success": True}, "DELETE /calls/{id} answers 204, which the client turns into success"
    assert "404" in gone["text"], gone

    # What the server holds now: nothing under that id.
    server_get(server, f"/calls/{call_id}", expect=404)
    server_get(server, f"/calls/{call_id}/messages", expect=404)


def test_wrong_key_is_an_authentication_error(report: dict[str, Any], server: RunningServer) -> None:
    session = report["wrong_key"]
    info = dump(session)
    assert [c["tool"] for c in session["calls"]] == ["get_account", "create_call"], info
    for result in session["calls"]:
        assert result.get("is_error") is True, info
        # ultravox_mcp.client.AuthenticationError: raised on HTTP 401 only.
        assert "authorization expired" in result["text"], info
    wrong = httpx.get(f"{server.api}/accounts/me", headers={"X-API-Key": "wrong-key"}, timeout=10)
    assert wrong.status_code == 401, wrong.text


TOOL_SEQUENCE = ["create_tool", "get_tool", "list_tools", "delete_tool", "get_tool"]


def test_tools_crud_through_mcp(report: dict[str, Any], server: RunningServer) -> None:
    session = report["valid"]
    info = dump({**session, "calls": session.get("tool_calls", [])})
    calls = session.get("tool_calls", [])
    assert [c["tool"] for c in calls] == TOOL_SEQUENCE, info
    assert all("exception" not in c for c in calls), info
    assert [c["is_error"] for c in calls] == [False] * 4 + [True], info
    created, got, listed, deleted = (c["json"] for c in calls[:4])
    tool_id = session["tool_id"]
    assert created["toolId"] == tool_id and created["name"] == "mcpWeather" and created["ownership"] == "private", created
    assert created["definition"] == {
        "modelToolName": "mcpWeather", "description": "Current weather for a city (created through ultravox-mcp).",
        "http": {"baseUrlPattern": "https://tools.example.com/weather", "httpMethod": "POST"},
        "dynamicParameters": [{"name": "city", "location": "PARAMETER_LOCATION_BODY", "schema": {"type": "string"},
                               "required": True}],
        "staticParameters": [], "automaticParameters": [],
    }, created
    assert got == created, got
    assert {"next", "previous", "results", "total"} <= listed.keys(), listed
    names = {t["name"]: t["ownership"] for t in listed["results"]}
    assert names.get("mcpWeather") == "private" and names.get("hangUp") == "public", listed
    assert deleted == {"success": True}, "DELETE /tools/{id} answers 204, which the client turns into success"
    assert "404" in calls[4]["text"], calls[4]
    server_get(server, f"/tools/{tool_id}", expect=404)
