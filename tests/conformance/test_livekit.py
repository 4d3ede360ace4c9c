"""livekit-plugins-ultravox 1.8.9, unchanged, against a real voxcall server (CONFORMANCE.md section 1).

Each test runs `drive_livekit.py` in `.venvs/livekit` and checks two things: what the plugin itself
reported (its futures resolved, its generations carried the agent's text, it emitted no `error`
event and logged no `Invalid event data`), and what the server recorded for the call.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conformance.harness import driver_report, messages, server_get, summary, wait_for_end
from tests.conftest import RunningServer

pytestmark = [pytest.mark.conformance, pytest.mark.models]

# Mirrors drive_livekit.py (which runs in another interpreter and cannot be imported here).
FORCED_TEXT = "The forced message is banana pancakes."
SYSTEM_PROMPT = "You are a helpful assistant on a phone call. Answer in one short sentence."
STATES = {"idle", "listening", "thinking", "speaking"}
STEPS = ("call_started", "generate_reply", "say", "update_tools", "function_call", "user_transcript", "agent_text", "listening")


def drive(server: RunningServer, scenario: str) -> dict[str, Any]:
    report = driver_report("livekit", "drive_livekit.py", server, scenario)
    assert not report.get("exception"), f"the driver raised:\n{report['exception']}"
    return report


def steps(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The last record of each driver step, by name ({} for a step the driver never reached)."""
    recorded = {step["step"]: step for step in report["steps"]}
    return {name: recorded.get(name, {}) for name in (*recorded, *STEPS)}


def assert_client_clean(report: dict[str, Any]) -> None:
    """What the plugin reports when every server message satisfied its parser."""
    info = summary(report)
    assert report["errors"] == [], f"the plugin emitted error events:\n{info}"
    assert report["invalid_event_data"] == [], f"the plugin rejected server messages:\n{info}"
    problems = [line for line in report["log_lines"]
                if line["level"] in ("ERROR", "CRITICAL") or "Unhandled Ultravox event" in line["message"]]
    assert problems == [], f"the plugin logged errors:\n{info}"
    for event in report["server_events"]:
        if event["type"] == "transcript":
            assert {"role", "medium", "final", "ordinal"} <= event.keys(), event
            assert ("text" in event) != ("delta" in event), event
        elif event["type"] == "state":
            assert event["state"] in STATES, event
    assert len(report["call_ids"]) == 1, f"expected exactly one call (no reconnects):\n{info}"


def assert_resolved(report: dict[str, Any], step: str) -> None:
    """generate_reply()/say() resolved: the plugin gives up unless `state: speaking` or agent text comes within 5 s."""
    if steps(report)[step].get("outcome") == "resolved":
        return
    sent = next((e["t"] for e in report["client_events"] if e["type"] in ("user_text_message", "forced_agent_message")), None)
    started = next((e["t"] for e in report["server_events"] if (e["type"], e.get("state")) == ("state", "speaking")
                    or (e["type"], e.get("role")) == ("transcript", "agent")), None)
    latency = f"{started - sent:.1f} s" if sent is not None and started is not None else "never"
    pytest.fail(f"{step}() did not resolve: {steps(report)[step]}; request to `state: speaking` or agent text: "
                f"{latency} (the plugin waits 5 s)\n{summary(report)}")


def assert_agent_turn(report: dict[str, Any]) -> str:
    """The plugin received a complete agent utterance; returns its text."""
    info = summary(report)
    assert steps(report)["agent_text"].get("ok"), f"no complete agent text reached the plugin:\n{info}"
    texts = [g["text"] for g in report["generations"] if g["text"] and g["done"]]
    finals = [e["text"] for e in report["server_events"]
              if e["type"] == "transcript" and e["role"] == "agent" and e["final"]]
    assert texts and finals and texts[-1].strip() == finals[-1].strip(), f"streamed text != final transcript:\n{info}"
    assert steps(report)["listening"].get("ok"), f"the server did not return to listening:\n{info}"
    return str(texts[-1])


def recorded_call(server: RunningServer, report: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The call as the server recorded it once the plugin hung up, and its messages."""
    call_id = report["call_ids"][-1]
    call = wait_for_end(server, call_id)
    assert call["ended"], f"the server did not record the end of {call_id}: {call}"
    assert call["endReason"] == "hangup", call
    assert call["joined"], call
    assert call["firstSpeaker"] == "FIRST_SPEAKER_USER", call
    socket = call["medium"]["serverWebSocket"]
    assert (socket["inputSampleRate"], socket["outputSampleRate"]) == (16000, 24000), call["medium"]
    # The plugin's default voice is a hosted one: echoed as sent, spoken with the server's default voice.
    assert call["voice"] == "Mark", call
    events = server_get(server, f"/calls/{call_id}/events?type=voice_substituted")["results"]
    assert [(e["severity"], e["extras"]["requested"]) for e in events] == [("warning", "Mark")], events
    return call, messages(server, call_id)


def agent_texts(history: list[dict[str, Any]]) -> list[str]:
    return [m["text"] for m in history if m["role"] == "MESSAGE_ROLE_AGENT"]


def test_text_turn(server: RunningServer) -> None:
    report = drive(server, "text")
    info = summary(report)
    assert_client_clean(report)
    assert steps(report)["call_started"].get("ok"), info
    assert_resolved(report, "generate_reply")
    assert {"call_started", "state", "transcript"} <= set(report["event_types"]), info
    assert report["audio_chunks_sent"] == [3200] * 10, "1 s of silence goes out as ten 100 ms chunks"
    text = assert_agent_turn(report)
    assert any("Say hi" in t["transcript"] for t in report["user_transcriptions"]), f"no user transcript:\n{info}"

    call, history = recorded_call(server, report)
    assert call["systemPrompt"] == SYSTEM_PROMPT
    roles = [m["role"] for m in history]
    assert roles == ["MESSAGE_ROLE_USER", "MESSAGE_ROLE_AGENT"], history
    assert "Say hi" in history[0]["text"], history
    assert history[1]["text"].strip() == text.strip(), history


def test_voice_turn_audio_in_16k_out_24k(qwen_server: RunningServer) -> None:
    """The plugin's audio path: a spoken question in at 16 kHz, a spoken answer out at 24 kHz."""
    report = drive(qwen_server, "voice")
    info = summary(report)
    assert_client_clean(report)
    assert steps(report)["user_transcript"].get("ok"), f"no user transcript reached the plugin:\n{info}"
    heard = " ".join(t["transcript"] for t in report["user_transcriptions"]).lower()
    assert "capital" in heard and "france" in heard, info
    text = assert_agent_turn(report)
    assert "paris" in text.lower(), info
    spoken = [g for g in report["generations"] if g["audio_frames"]]
    assert spoken and {r for g in spoken for r in g["audio_sample_rates"]} == {24000}, f"no 24 kHz agent audio:\n{info}"
    seconds = sum(g["audio_samples"] for g in spoken) / 24000
    assert seconds > 0.1 * len(text.split()), f"{seconds:.2f} s of audio for {text!r}"
    agent = [e for e in report["server_events"] if e["type"] == "transcript" and e["role"] == "agent"]
    assert {e["medium"] for e in agent} == {"voice"}, info

    _, history = recorded_call(qwen_server, report)
    assert [(m["role"], m["medium"]) for m in history] == [
        ("MESSAGE_ROLE_USER", "MESSAGE_MEDIUM_VOICE"), ("MESSAGE_ROLE_AGENT", "MESSAGE_MEDIUM_VOICE")], history


def test_tool_round_trip(qwen_server: RunningServer) -> None:
    report = drive(qwen_server, "tool")
    info = summary(report)
    assert_client_clean(report)
    assert steps(report)["update_tools"].get("tools") == ["get_weather"]
    assert steps(report)["function_call"].get("ok"), f"the plugin saw no FunctionCall:\n{info}"
    calls = report["function_calls"]
    assert len(calls) == 1 and calls[0]["name"] == "get_weather", info
    assert json.loads(calls[0]["arguments"])["city"].strip().lower() == "paris", info
    sent = [e for e in report["client_events"] if e["type"] == "client_tool_result"]
    assert [e["invocationId"] for e in sent] == [calls[0]["call_id"]], info
    text = assert_agent_turn(report)
    assert "sunny" in text.lower() or "22" in text, f"the answer does not use the tool result:\n{info}"

    call, history = recorded_call(qwen_server, report)
    tools = server_get(qwen_server, f"/calls/{call['callId']}/tools")
    assert [t["name"] for t in tools] == ["get_weather"], tools
    assert "client" in tools[0]["definition"], tools
    roles = [m["role"] for m in history]
    assert roles == ["MESSAGE_ROLE_USER", "MESSAGE_ROLE_TOOL_CALL", "MESSAGE_ROLE_TOOL_RESULT", "MESSAGE_ROLE_AGENT"], history
    assert "paris" in history[0]["text"].lower(), history
    tool_call, tool_result = history[1], history[2]
    assert tool_call["toolName"] == "get_weather" and tool_call["invocationId"] == calls[0]["call_id"], tool_call
    assert "paris" in tool_call["text"].lower(), tool_call
    assert tool_result["invocationId"] == calls[0]["call_id"], tool_result
    assert tool_result["text"] == sent[0]["result"], tool_result
    assert history[3]["text"].strip() == text.strip(), history


def test_forced_agent_message(server: RunningServer) -> None:
    report = drive(server, "forced")
    info = summary(report)
    assert_client_clean(report)
    assert_resolved(report, "say")
    assert assert_agent_turn(report) == FORCED_TEXT, info

    _, history = recorded_call(server, report)
    assert [m["role"] for m in history] == ["MESSAGE_ROLE_AGENT"], history
    assert agent_texts(history) == [FORCED_TEXT], history


def test_output_medium_text(server: RunningServer) -> None:
    report = drive(server, "output_medium")
    info = summary(report)
    assert_client_clean(report)
    assert [e["medium"] for e in report["client_events"] if e["type"] == "set_output_medium"] == ["text"], info
    assert_resolved(report, "generate_reply")
    text = assert_agent_turn(report)
    agent = [e for e in report["server_events"] if e["type"] == "transcript" and e["role"] == "agent"]
    assert agent and {e["medium"] for e in agent} == {"text"}, f"agent transcripts after set_output_medium text:\n{info}"
    binary = [g["audio_frames"] for g in report["generations"] if g["audio_frames"]]
    assert binary == [], f"audio frames arrived after set_output_medium text:\n{info}"

    _, history = recorded_call(server, report)
    assert [m["role"] for m in history] == ["MESSAGE_ROLE_USER", "MESSAGE_ROLE_AGENT"], history
    assert history[1]["medium"] == "MESSAGE_MEDIUM_TEXT", history
    assert history[1]["text"].strip() == text.strip(), history
