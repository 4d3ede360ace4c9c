"""`UltravoxSession` against a scripted peer: status, transcripts, tools, events, audio, leaving."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.asyncio.server import ServerConnection

from voxcall.client import (
    ClientToolResult,
    Transcript,
    UltravoxSession,
    UltravoxSessionStatus,
)
from voxcall.client.session import client_version_string
from voxcall.errors import ConnectionClosed

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")

S = UltravoxSessionStatus
WAIT = 5.0
Peer = Any  # the conftest fixture class


async def answer_text(peer: Peer, ws: ServerConnection, message: dict[str, Any]) -> None:
    """What a server does with user text: echo it as a user transcript, then stream a reply."""
    if message["type"] != "input_text_message":
        return
    n = len([m for m in peer.messages if m["type"] == "input_text_message"]) * 2 - 1
    await peer.send(
        ws,
        {"type": "transcript", "role": "user", "medium": "text", "text": message["text"], "final": True, "ordinal": n},
        {"type": "state", "state": "thinking"},
        {"type": "state", "state": "speaking"},
        {"type": "transcript", "role": "agent", "medium": "text", "text": "Hello", "final": False, "ordinal": n + 1},
        {"type": "transcript", "role": "agent", "medium": "text", "delta": " there", "final": False, "ordinal": n + 1},
        {
            "type": "transcript",
            "role": "agent",
            "medium": "text",
            "text": "Hello there!",
            "final": True,
            "ordinal": n + 1,
        },
        {"type": "state", "state": "listening"},
    )


@pytest.fixture
async def session() -> AsyncIterator[UltravoxSession]:
    s = UltravoxSession()
    yield s
    await s.leave_call()


async def test_status_follows_the_server_and_leave_call(peer: Peer, join_url: str, session: UltravoxSession) -> None:
    seen: list[S] = []
    session.on("status", lambda: seen.append(session.status))
    peer.reply = answer_text
    assert session.status is S.DISCONNECTED
    await session.join_call(join_url)
    assert session.status is S.CONNECTING
    await session.wait_for_status(S.LISTENING, timeout=WAIT)
    assert session.call_id == "call-1"
    await session.send_text("Hi")
    await session.wait_for_transcript("agent", timeout=WAIT)
    await session.wait_for_status(S.LISTENING, timeout=WAIT)
    await session.leave_call()
    assert seen == [
        S.CONNECTING,
        S.IDLE,
        S.LISTENING,
        S.THINKING,
        S.SPEAKING,
        S.LISTENING,
        S.DISCONNECTING,
        S.DISCONNECTED,
    ]
    assert session.close_code == 1000
    await asyncio.wait_for(peer.closed.wait(), WAIT)


async def test_join_url_parameters(peer: Peer, join_url: str) -> None:
    session = UltravoxSession(experimental_messages={"debug", "callEvent"})
    await session.join_call(join_url, client_version="myapp/2")
    await asyncio.wait_for(peer.connected.wait(), WAIT)
    await session.leave_call()
    query = parse_qs(urlsplit(peer.path).query, keep_blank_values=True)
    assert query == {
        "apiVersion": ["1"],
        "clientVersion": [client_version_string("myapp/2")],
        "experimentalMessages": ["callEvent,debug"],
    }
    assert client_version_string("myapp/2").startswith("python_voxcall_")
    assert client_version_string("myapp/2").endswith(":myapp/2")


async def test_no_experimental_messages_param_when_none_enabled(
    peer: Peer, join_url: str, session: UltravoxSession
) -> None:
    await session.join_call(join_url)
    await asyncio.wait_for(peer.connected.wait(), WAIT)
    query = parse_qs(urlsplit(peer.path).query, keep_blank_values=True)
    assert set(query) == {"apiVersion", "clientVersion"}
    assert query["clientVersion"] == [client_version_string()]


async def test_join_twice_and_send_before_live_are_refused(peer: Peer, join_url: str, session: UltravoxSession) -> None:
    with pytest.raises(RuntimeError):
        await session.send_text("too early")
    with pytest.raises(RuntimeError):
        await session.send_data({"type": "ping", "timestamp": 1})
    peer.greeting = []  # the server stays silent: the session stays CONNECTING
    await session.join_call(join_url)
    with pytest.raises(RuntimeError, match="already in a call"):
        await session.join_call(join_url)
    with pytest.raises(RuntimeError, match="not connected"):
        await session.send_text("still connecting")
    await session.send_data({"type": "ping", "timestamp": 2})  # the socket is open, so raw data may go
    await peer.wait_for(lambda p: len(p.received) == 1)


async def test_failed_join_goes_back_to_disconnected(serve_peer: Any, peer: Peer) -> None:
    async with serve_peer(peer) as url:
        pass  # the port is closed again
    session = UltravoxSession(open_timeout=WAIT)
    seen: list[S] = []
    session.on("status", lambda: seen.append(session.status))
    with pytest.raises(ConnectionClosed):
        await session.join_call(url)
    assert seen == [S.CONNECTING, S.DISCONNECTED]
    await session.leave_call()  # a no-op


async def test_send_text_spellings(peer: Peer, join_url: str, session: UltravoxSession) -> None:
    await session.join_call(join_url)
    await session.wait_for_status(S.LISTENING, timeout=WAIT)
    await session.send_text("a")
    await session.send_text("b", True)
    await session.send_text("c", defer_response=False)
    await session.send_text("d", deferResponse=True)
    await session.set_output_medium("voice")
    with pytest.raises(ValueError):
        await session.set_output_medium("video")
    await session.send_data({"type": "forced_agent_message", "content": "x"})
    with pytest.raises(ValueError):
        await session.send_data({"content": "no type"})
    await peer.wait_for(lambda p: len(p.messages) == 6)
    assert peer.messages == [
        {"type": "input_text_message", "text": "a"},
        {"type": "input_text_message", "text": "b", "deferResponse": True},
        {"type": "input_text_message", "text": "c", "deferResponse": False},
        {"type": "input_text_message", "text": "d", "deferResponse": True},
        {"type": "set_output_medium", "medium": "voice"},
        {"type": "forced_agent_message", "content": "x"},
    ]


async def test_transcripts_merge_and_emit(peer: Peer, join_url: str, session: UltravoxSession) -> None:
    snapshots: list[list[Transcript]] = []
    session.on("transcripts", lambda: snapshots.append(session.transcripts))
    peer.reply = answer_text
    await session.join_call(join_url)
    await session.wait_for_status(S.LISTENING, timeout=WAIT)
    await session.send_text("Hi")
    reply = await session.wait_for_transcript("agent", timeout=WAIT)
    assert reply == Transcript("Hello there!", True, "agent", "text", 2)
    assert [s[-1].text for s in snapshots] == ["Hi", "Hello", "Hello there", "Hello there!"]
    assert [s[-1].final for s in snapshots] == [True, False, False, True]
    assert session.transcripts == [
        Transcript("Hi", True, "user", "text", 1),
        Transcript("Hello there!", True, "agent", "text", 2),
    ]
    await session.send_text("Again")
    second = await session.wait_for_transcript(timeout=WAIT)
    assert second.ordinal == 4


async def test_tools_answer_every_kind(peer: Peer, join_url: str, session: UltravoxSession) -> None:
    async def slow(params: dict[str, Any]) -> ClientToolResult:
        await asyncio.sleep(0.01)
        return ClientToolResult(result="done", agent_reaction="listens", update_call_state={"n": 1})

    def boom(params: dict[str, Any]) -> str:
        raise RuntimeError("kaput")

    session.register_tool_implementation("weather", lambda p: f"sunny in {p['city']}")
    session.register_tool_implementations({"end": lambda p: ("bye", "hang-up"), "slow": slow, "boom": boom})
    peer.greeting += [
        {"type": "client_tool_invocation", "toolName": name, "invocationId": name, "parameters": {"city": "Oslo"}}
        for name in ("slow", "weather", "end", "boom", "missing")
    ]
    await session.join_call(join_url)
    await peer.wait_for(lambda p: len(p.messages) == 5)
    results = {m["invocationId"]: m for m in peer.messages}
    assert results["weather"] == {
        "type": "client_tool_result",
        "invocationId": "weather",
        "result": "sunny in Oslo",
        "responseType": "tool-response",
        "agentReaction": "speaks",
    }
    assert results["end"]["responseType"] == "hang-up" and results["end"]["result"] == "bye"
    assert results["slow"] == {
        "type": "client_tool_result",
        "invocationId": "slow",
        "result": "done",
        "responseType": "tool-response",
        "agentReaction": "listens",
        "updateCallState": {"n": 1},
    }
    assert results["boom"] == {
        "type": "client_tool_result",
        "invocationId": "boom",
        "errorType": "implementation-error",
        "errorMessage": "kaput",
    }
    assert results["missing"]["errorType"] == "undefined"
    assert results["missing"]["errorMessage"] == "Client tool missing is not registered (Python client)"
    assert list(results)[-1] == "slow"  # a slow tool does not hold up the others


async def test_data_debug_and_experimental_events(peer: Peer, join_url: str) -> None:
    session = UltravoxSession(experimental_messages={"debug"})
    data: list[dict[str, Any]] = []
    debug: list[str] = []
    experimental: list[dict[str, Any]] = []
    session.on("data_message", data.append)
    session.on("debug", debug.append)
    session.on("experimental_message", experimental.append)
    peer.greeting += [
        {"type": "debug", "message": "LLM response: hi"},
        {"type": "call_event", "event": "x"},
        {"type": "pong", "timestamp": 3},
        {"type": "state", "state": "speaking"},
    ]
    await session.join_call(join_url)
    await session.wait_for_status(S.SPEAKING, timeout=WAIT)
    await session.leave_call()
    assert [m["type"] for m in data] == ["call_started", "state", "state", "debug", "call_event", "pong", "state"]
    assert data[4] == {"type": "call_event", "event": "x"}
    assert debug == ["LLM response: hi"]
    assert experimental == [{"type": "debug", "message": "LLM response: hi"}, {"type": "call_event", "event": "x"}]


async def test_no_experimental_event_without_experimental_messages(
    peer: Peer, join_url: str, session: UltravoxSession
) -> None:
    experimental: list[Any] = []
    session.on("experimental_message", experimental.append)
    peer.greeting += [{"type": "call_event"}, {"type": "state", "state": "thinking"}]
    await session.join_call(join_url)
    await session.wait_for_status(S.THINKING, timeout=WAIT)
    assert experimental == []


async def test_server_close_ends_the_session(peer: Peer, join_url: str, session: UltravoxSession) -> None:
    async def hang_up_on_request(peer: Peer, ws: ServerConnection, message: dict[str, Any]) -> None:
        if message["type"] == "hang_up":
            await ws.close(1000, "agent hung up")

    ended: list[int | None] = []
    session.on("ended", ended.append)
    peer.reply = hang_up_on_request
    await session.join_call(join_url)
    await session.wait_for_status(S.LISTENING, timeout=WAIT)
    waiting = asyncio.ensure_future(session.wait_for_status(S.SPEAKING, timeout=WAIT))
    await session.send_data({"type": "hang_up"})
    with pytest.raises(ConnectionClosed) as info:
        await waiting
    assert info.value.code == 1000
    assert session.status is S.DISCONNECTED
    assert (session.close_code, session.close_reason) == (1000, "agent hung up")
    assert ended == [1000]
    await session.leave_call()
    assert ended == [1000]
    # after the end, waiting does not hang: "ended" answers at once, anything else raises
    assert await session.wait_for("ended") == (1000,)
    with pytest.raises(ConnectionClosed):
        await session.wait_for_status(S.LISTENING)
    assert await session.wait_for_status(S.DISCONNECTED) is S.DISCONNECTED


async def test_abnormal_close_code_is_reported(peer: Peer, join_url: str, session: UltravoxSession) -> None:
    async def fail(peer: Peer, ws: ServerConnection) -> None:
        await peer.send(ws, *peer.greeting)
        await ws.close(1011, "engine failed")

    peer.script = fail
    await session.join_call(join_url)
    (code,) = await session.wait_for("ended", timeout=WAIT)
    assert code == 1011 and session.close_reason == "engine failed"


async def test_leave_call_during_a_slow_tool_cancels_it(peer: Peer, join_url: str, session: UltravoxSession) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def forever(params: dict[str, Any]) -> str:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    session.register_tool_implementation("forever", forever)
    peer.greeting.append(
        {"type": "client_tool_invocation", "toolName": "forever", "invocationId": "i", "parameters": {}}
    )
    await session.join_call(join_url)
    await asyncio.wait_for(started.wait(), WAIT)
    await session.leave_call()
    assert cancelled.is_set() and peer.messages == []


async def test_a_tool_may_leave_the_call(peer: Peer, join_url: str, session: UltravoxSession) -> None:
    async def leave(params: dict[str, Any]) -> str:
        await session.leave_call()
        return "left"

    session.register_tool_implementation("leave", leave)
    peer.greeting.append({"type": "client_tool_invocation", "toolName": "leave", "invocationId": "i", "parameters": {}})
    await session.join_call(join_url)
    await session.wait_for("ended", timeout=WAIT)
    assert session.status is S.DISCONNECTED


async def test_async_and_failing_handlers(peer: Peer, join_url: str, session: UltravoxSession) -> None:
    got: list[str] = []

    async def async_handler() -> None:
        await asyncio.sleep(0)
        got.append("async")

    def bad_handler() -> None:
        raise ValueError("listener bug")

    session.on("status", bad_handler)
    session.on("status", async_handler)
    session.on("ended", lambda code: got.append(f"ended {code}"))
    await session.join_call(join_url)
    await session.wait_for_status(S.LISTENING, timeout=WAIT)
    session.off("status", bad_handler)
    session.off("status", bad_handler)  # removing twice is harmless
    await session.leave_call()
    # connecting, idle, listening, disconnecting, disconnected: leave_call waited for every async handler
    assert got.count("async") == 5
    assert got.count("ended 1000") == 1


# ------------------------------------------------------------ audio and mute


class ListSource:
    sample_rate = 16000

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = False

    async def stream(self) -> AsyncIterator[bytes]:
        try:
            for chunk in self.chunks:
                yield chunk
                await asyncio.sleep(0)
            await asyncio.sleep(60)  # a live microphone never ends by itself
        finally:
            self.closed = True


class ListSink:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.clears = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def clear(self) -> None:
        self.clears += 1

    async def close(self) -> None:
        self.closed = True


async def test_mic_streams_and_sends_silence_while_muted(peer: Peer, join_url: str, session: UltravoxSession) -> None:
    events: list[bool] = []
    session.on("mic_muted", events.append)
    source = ListSource([b"\x01\x02" * 4] * 3)
    session.mute_mic()
    session.mute_mic()  # no second event
    assert session.is_mic_muted() and session.mic_muted
    await session.join_call(join_url, source=source, input_sample_rate=16000)
    await peer.wait_for(lambda p: len(p.audio) == 24)
    assert peer.audio == bytes(24)
    session.unmute_mic()
    session.toggle_mic_muted()
    session.mic_muted = False
    assert events == [True, False, True, False]
    await session.leave_call()
    assert source.closed


async def test_mic_audio_unmuted(peer: Peer, join_url: str, session: UltravoxSession) -> None:
    await session.join_call(join_url, source=ListSource([b"\x01\x02", b"\x03\x04"]), input_sample_rate=16000)
    await peer.wait_for(lambda p: len(p.audio) == 4)
    assert peer.audio == b"\x01\x02\x03\x04"


async def test_sink_plays_clears_mutes_and_closes(peer: Peer, join_url: str, session: UltravoxSession) -> None:
    async def speak(peer: Peer, ws: ServerConnection) -> None:
        await peer.send(ws, *peer.greeting)
        await ws.send(b"\x05\x06")
        await peer.record(ws)

    async def on_text(peer: Peer, ws: ServerConnection, message: dict[str, Any]) -> None:
        if message["type"] == "input_text_message":
            await ws.send(b"\x07\x08")
            await peer.send(ws, {"type": "playback_clear_buffer"}, {"type": "state", "state": "thinking"})

    peer.script, peer.reply = speak, on_text
    sink = ListSink()
    muted: list[bool] = []
    session.on("speaker_muted", muted.append)
    await session.join_call(join_url, sink=sink)
    await session.wait_for_status(S.LISTENING, timeout=WAIT)
    session.mute_speaker()
    assert session.is_speaker_muted() and session.speaker_muted
    await session.send_text("go")
    await session.wait_for_status(S.THINKING, timeout=WAIT)
    session.unmute_speaker()
    session.toggle_speaker_muted()
    session.speaker_muted = False
    assert sink.written == [b"\x05\x06", b"\x00\x00"]
    assert sink.clears == 1
    assert muted == [True, False, True, False]
    await session.leave_call()
    assert sink.closed


async def test_wait_for_times_out(peer: Peer, join_url: str, session: UltravoxSession) -> None:
    await session.join_call(join_url)
    with pytest.raises(TimeoutError):
        await session.wait_for("debug", timeout=0.05)
    assert await session.wait_for_status("listening", timeout=WAIT) is S.LISTENING


async def test_leave_while_connecting(peer: Peer, join_url: str, session: UltravoxSession) -> None:
    joining = asyncio.ensure_future(session.join_call(join_url))
    await asyncio.sleep(0)
    assert session.status is S.CONNECTING
    await session.leave_call()
    await asyncio.wait_for(joining, WAIT)
    assert session.status is S.DISCONNECTED
    await asyncio.wait_for(peer.closed.wait(), WAIT)
    await session.join_call(join_url)  # the session can be used again
    await session.wait_for_status(S.LISTENING, timeout=WAIT)


async def test_a_session_can_join_again_after_a_call(peer: Peer, join_url: str, session: UltravoxSession) -> None:
    peer.reply = answer_text
    await session.join_call(join_url)
    await session.wait_for_status(S.LISTENING, timeout=WAIT)
    await session.send_text("one")
    await session.wait_for_transcript(timeout=WAIT)
    await session.leave_call()
    await session.join_call(join_url)
    assert session.transcripts == [] and session.close_code is None
    await session.wait_for_status(S.LISTENING, timeout=WAIT)


def test_status_values_and_liveness() -> None:
    assert [s.value for s in S] == [
        "disconnected",
        "disconnecting",
        "connecting",
        "idle",
        "listening",
        "thinking",
        "speaking",
    ]
    assert S("speaking") is S.SPEAKING and S.SPEAKING == "speaking"
    assert [s for s in S if s.is_live()] == [S.IDLE, S.LISTENING, S.THINKING, S.SPEAKING]


async def test_a_failing_sink_does_not_stop_the_session(peer: Peer, join_url: str, session: UltravoxSession) -> None:
    class BrokenSink(ListSink):
        def write(self, data: bytes) -> None:
            raise OSError("device gone")

        def clear(self) -> None:
            raise OSError("device gone")

    async def speak(peer: Peer, ws: ServerConnection) -> None:
        await ws.send(b"\x01\x00")
        await peer.send(ws, {"type": "playback_clear_buffer"}, *peer.greeting)
        await peer.record(ws)

    peer.script = speak
    await session.join_call(join_url, sink=BrokenSink())
    await session.wait_for_status(S.LISTENING, timeout=WAIT)
