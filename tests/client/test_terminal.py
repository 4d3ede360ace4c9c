"""`chat` (REST over MockTransport, realtime against a scripted peer) and `format_transcript`."""

from __future__ import annotations

import asyncio
import io
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.server import ServerConnection

from voxcall.client.session import Transcript
from voxcall.client.terminal import HELP, _Printer, chat, ended_line, format_transcript

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")

Peer = Any
GREETING = [
    {"type": "call_started", "callId": "call-1"},
    {"type": "state", "state": "speaking"},
    {"type": "transcript", "role": "agent", "medium": "text", "text": "Hi,", "final": False, "ordinal": 0},
    {
        "type": "transcript",
        "role": "agent",
        "medium": "text",
        "delta": " how can I help?",
        "final": False,
        "ordinal": 0,
    },
    {
        "type": "transcript",
        "role": "agent",
        "medium": "text",
        "text": "Hi, how can I help?",
        "final": True,
        "ordinal": 0,
    },
    {"type": "state", "state": "listening"},
]


def rest(join_url: str, bodies: list[dict[str, Any]], status: int = 201) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/calls"
        bodies.append(json.loads(request.content))
        if status != 201:
            return httpx.Response(status, json={"detail": "Invalid API key."})
        return httpx.Response(201, json={"callId": "call-1", "joinUrl": join_url})

    return httpx.MockTransport(handler)


async def reply_to_text(peer: Peer, ws: ServerConnection, message: dict[str, Any]) -> None:
    if message["type"] == "input_text_message":
        await peer.send(
            ws,
            {
                "type": "transcript",
                "role": "user",
                "medium": "text",
                "text": message["text"],
                "final": True,
                "ordinal": 1,
            },
            {"type": "transcript", "role": "agent", "medium": "text", "text": "You said", "final": False, "ordinal": 2},
            {
                "type": "transcript",
                "role": "agent",
                "medium": "text",
                "delta": f" {message['text']}",
                "final": False,
                "ordinal": 2,
            },
            {
                "type": "transcript",
                "role": "agent",
                "medium": "text",
                "text": f"You said {message['text']}.",
                "final": True,
                "ordinal": 2,
            },
            {"type": "state", "state": "listening"},
        )


async def test_chat_streams_the_agent_and_leaves_at_end_of_input(peer: Peer, join_url: str) -> None:
    peer.greeting = GREETING
    peer.reply = reply_to_text
    bodies: list[dict[str, Any]] = []
    out = io.StringIO()
    code = await chat(
        "http://voxcall.test/api",
        "key",
        system_prompt="Be brief",
        voice="jessica",
        input=io.StringIO("Hello\n"),
        output=out,
        transport=rest(join_url, bodies),
    )
    assert code == 0
    assert bodies == [
        {
            "medium": {"serverWebSocket": {"inputSampleRate": 16000}},
            "initialOutputMedium": "MESSAGE_MEDIUM_TEXT",
            "systemPrompt": "Be brief",
            "voice": "jessica",
        }
    ]
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("call call-1 created")
    assert lines[1:] == ["agent: Hi, how can I help?", "you: Hello", "agent: You said Hello.", "", "Call ended."]
    assert [m["type"] for m in peer.messages] == ["input_text_message"]


async def test_chat_tools_demo(peer: Peer, join_url: str) -> None:
    async def invoke_tool(peer: Peer, ws: ServerConnection, message: dict[str, Any]) -> None:
        if message["type"] == "input_text_message":
            await peer.send(
                ws,
                {
                    "type": "transcript",
                    "role": "user",
                    "medium": "text",
                    "text": message["text"],
                    "final": True,
                    "ordinal": 1,
                },
            )
            await peer.send(
                ws,
                {
                    "type": "client_tool_invocation",
                    "toolName": "getWeather",
                    "invocationId": "w1",
                    "parameters": {"city": "Oslo"},
                },
            )
        elif message["type"] == "client_tool_result":
            report = json.loads(message["result"])
            await peer.send(
                ws,
                {
                    "type": "transcript",
                    "role": "agent",
                    "medium": "text",
                    "text": f"It is {report['conditions']} in {report['city']}.",
                    "final": True,
                    "ordinal": 2,
                },
            )

    peer.reply = invoke_tool
    bodies: list[dict[str, Any]] = []
    out = io.StringIO()
    code = await chat(
        "http://voxcall.test/api",
        "key",
        system_prompt=None,
        tools_demo=True,
        input=io.StringIO("Weather in Oslo?\n"),
        output=out,
        transport=rest(join_url, bodies),
    )
    assert code == 0
    tool = bodies[0]["selectedTools"][0]["temporaryTool"]
    assert tool["modelToolName"] == "getWeather" and tool["client"] == {}
    assert "systemPrompt" not in bodies[0]
    result = next(m for m in peer.messages if m["type"] == "client_tool_result")
    assert result["invocationId"] == "w1" and result["responseType"] == "tool-response"
    assert "agent: It is partly cloudy in Oslo." in out.getvalue().splitlines()


async def test_chat_quit_leaves_without_waiting(peer: Peer, join_url: str) -> None:
    out = io.StringIO()
    code = await chat(
        "http://voxcall.test/api",
        "key",
        system_prompt=None,
        input=io.StringIO("\n/quit\nnot sent\n"),
        output=out,
        transport=rest(join_url, []),
    )
    assert code == 0
    assert peer.messages == []
    assert out.getvalue().endswith("\nCall ended.\n")


async def test_chat_commands_stay_in_the_terminal(peer: Peer, join_url: str) -> None:
    """`/help` and unknown `/commands` are answered locally and never sent to the agent."""
    out = io.StringIO()
    code = await chat(
        "http://voxcall.test/api",
        "key",
        system_prompt=None,
        input=io.StringIO("/help\n/halp me\n/quit\n"),
        output=out,
        transport=rest(join_url, []),
    )
    assert code == 0
    assert peer.messages == []
    text = out.getvalue()
    assert HELP in text
    assert "Unknown command /halp: type /help for the commands." in text


def test_prompt_is_shown_after_each_agent_line() -> None:
    out = io.StringIO()
    printer = _Printer(out, prompt="you> ")
    printer.show_prompt()
    printer.update([Transcript("Hi there", True, "agent", "text", 0)])
    printer.typed()
    printer.note("Call ended.")
    assert out.getvalue() == "you> \ragent: Hi there\nyou> Call ended.\n"


def test_ended_line_explains_the_close() -> None:
    assert ended_line(1000, None) == "\nCall ended."
    assert ended_line(1011, None) == "\nCall ended: the server hit an error (close code 1011)."
    assert ended_line(1008, "join token already used") == "\nCall ended: join token already used (close code 1008)."
    assert ended_line(None, None) == "\nCall ended: the connection was lost (close code none)."


@pytest.fixture
def silent_input() -> Iterator[io.TextIOWrapper]:
    """An input stream that never delivers a line until the test ends."""
    read_fd, write_fd = os.pipe()
    stream = os.fdopen(read_fd, "r")
    yield stream
    os.close(write_fd)  # the reader thread sees EOF and exits
    stream.close()


@pytest.mark.parametrize(("close_code", "exit_code"), [(1000, 0), (1011, 1)])
async def test_chat_ends_when_the_server_closes(
    peer: Peer, join_url: str, silent_input: io.TextIOWrapper, close_code: int, exit_code: int
) -> None:
    async def greet_and_hang_up(peer: Peer, ws: ServerConnection) -> None:
        await peer.send(ws, *GREETING)
        await ws.close(close_code, "done")

    peer.script = greet_and_hang_up
    out = io.StringIO()
    code = await chat(
        "http://voxcall.test/api",
        "key",
        system_prompt=None,
        input=silent_input,
        output=out,
        transport=rest(join_url, []),
    )
    assert code == exit_code
    assert out.getvalue().endswith(ended_line(close_code, "done") + "\n")
    assert ("close code 1011" in out.getvalue()) == (close_code == 1011)


async def test_chat_reports_api_errors(join_url: str) -> None:
    out = io.StringIO()
    code = await chat(
        "http://voxcall.test/api",
        "bad",
        system_prompt=None,
        input=io.StringIO(""),
        output=out,
        transport=rest(join_url, [], status=401),
    )
    assert code == 1
    assert out.getvalue() == "error: could not create the call: Invalid API key.\n"


def test_printer_streams_deltas_and_ends_lines() -> None:
    out = io.StringIO()
    printer = _Printer(out)
    log: list[Transcript] = []

    def update(entry: Transcript) -> None:
        log[:] = [e for e in log if e.ordinal != entry.ordinal] + [entry]
        printer.update(sorted(log, key=lambda e: e.ordinal))

    update(Transcript("Hel", False, "agent", "voice", 0))
    assert out.getvalue() == "agent: Hel"
    update(Transcript("Hello there", False, "agent", "voice", 0))
    update(Transcript("Hello", True, "agent", "voice", 0))  # barge-in: the final text is what was heard
    update(Transcript("Stop", True, "user", "voice", 1))
    update(Transcript("Okay.", True, "agent", "voice", 2))
    printer.user("typed")
    assert out.getvalue() == "agent: Hello there\nagent: Okay.\nyou: typed\n"


def test_format_transcript() -> None:
    messages = [
        {"role": "MESSAGE_ROLE_AGENT", "text": "Hi!", "medium": "MESSAGE_MEDIUM_VOICE"},
        {"role": "MESSAGE_ROLE_USER", "text": "Weather in Oslo?", "medium": "MESSAGE_MEDIUM_TEXT"},
        {"role": "MESSAGE_ROLE_TOOL_CALL", "toolName": "getWeather", "text": '{"city": "Oslo"}', "invocationId": "w1"},
        {"role": "MESSAGE_ROLE_TOOL_RESULT", "toolName": "getWeather", "text": '{"tempC": 3}', "invocationId": "w1"},
        {"role": "MESSAGE_ROLE_TOOL_RESULT", "toolName": "lookup", "errorDetails": "timed out"},
        {"role": "MESSAGE_ROLE_UNSPECIFIED", "text": "?"},
        {"text": "no role"},
    ]
    assert format_transcript(messages) == "\n".join(
        [
            "agent: Hi!",
            "user: Weather in Oslo?",
            'agent -> getWeather({"city": "Oslo"})',
            'tool  <- getWeather: {"tempC": 3}',
            "tool  <- lookup: error: timed out",
            "unspecified: ?",
            "unspecified: no role",
        ]
    )
    assert format_transcript([]) == ""


async def test_a_greeting_that_starts_after_the_first_line_is_not_the_reply(peer: Peer, join_url: str) -> None:
    async def late_greeting(peer: Peer, ws: ServerConnection, message: dict[str, Any]) -> None:
        if message["type"] == "input_text_message":
            await peer.send(
                ws,
                {
                    "type": "transcript",
                    "role": "agent",
                    "medium": "text",
                    "text": "Welcome!",
                    "final": True,
                    "ordinal": 0,
                },
            )
            await asyncio.sleep(0.05)
            await reply_to_text(peer, ws, message)

    peer.greeting = [{"type": "call_started", "callId": "call-1"}, {"type": "state", "state": "idle"}]
    peer.reply = late_greeting
    out = io.StringIO()
    code = await chat(
        "http://voxcall.test/api",
        "key",
        system_prompt=None,
        input=io.StringIO("Hello\n"),
        output=out,
        transport=rest(join_url, []),
    )
    assert code == 0
    assert "agent: You said Hello." in out.getvalue().splitlines()
