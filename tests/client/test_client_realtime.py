"""`RealtimeClient` against a scripted WebSocket peer on 127.0.0.1, and join-URL query building."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Response

from voxcall.client.realtime import RealtimeClient, with_query
from voxcall.errors import ConnectionClosed
from voxcall.protocol.connection import AudioIn
from voxcall.protocol.realtime import (
    CallStarted,
    Debug,
    Pong,
    State,
    Transcript,
    UnknownMessage,
)

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")

WAIT = 5.0
Peer = Any  # the conftest fixture class; tests get it through `peer_class`


# ------------------------------------------------------------ with_query (pure)


def test_query_on_a_url_without_one() -> None:
    assert with_query("wss://h/calls/1/ws", {"apiVersion": "1"}) == "wss://h/calls/1/ws?apiVersion=1"


def test_query_without_params_leaves_the_url_alone() -> None:
    url = "wss://h/calls/1/ws?x=%20y&x=&z"
    assert with_query(url, {}) == url


def test_query_keeps_existing_params_and_repeated_keys() -> None:
    url = "wss://h/c?token=a%2Bb&tag=1&tag=2&empty="
    assert with_query(url, {"apiVersion": "1"}) == "wss://h/c?token=a%2Bb&tag=1&tag=2&empty=&apiVersion=1"


def test_query_replaces_every_value_of_a_key_it_sets() -> None:
    url = "wss://h/c?apiVersion=0&keep=1&apiVersion=2&experimentalMessages="
    result = with_query(url, {"apiVersion": "1", "experimentalMessages": "debug,callEvent"})
    assert result == "wss://h/c?keep=1&apiVersion=1&experimentalMessages=debug,callEvent"


def test_query_encodes_values() -> None:
    result = with_query("ws://h/c#frag", {"clientVersion": "python_voxcall_0.1.0:my app&co"})
    assert result == "ws://h/c?clientVersion=python_voxcall_0.1.0:my%20app%26co#frag"


# ------------------------------------------------------------ connecting


async def test_connect_adds_only_the_given_params(peer: Peer, serve_peer: Any) -> None:
    async with serve_peer(peer, "?token=abc") as url:
        async with RealtimeClient() as rt:
            await rt.connect(url, api_version=1, client_version="python_x", experimental_messages=["debug"])
            await asyncio.wait_for(peer.connected.wait(), WAIT)
    assert peer.path == (
        "/calls/call-1/server_web_socket?token=abc&apiVersion=1&clientVersion=python_x&experimentalMessages=debug"
    )


async def test_connect_leaves_a_bare_join_url_unchanged(peer: Peer, join_url: str) -> None:
    async with RealtimeClient() as rt:
        await rt.connect(join_url)
        await asyncio.wait_for(peer.connected.wait(), WAIT)
    assert peer.path == "/calls/call-1/server_web_socket"


async def test_connect_refused_is_connection_closed() -> None:
    async with serve(lambda ws: None, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
    rt = RealtimeClient(open_timeout=WAIT)
    with pytest.raises(ConnectionClosed) as info:
        await rt.connect(f"ws://127.0.0.1:{port}/calls/x")
    assert info.value.code == 1006
    assert not rt.connected


async def test_http_refusal_names_the_status() -> None:
    def reject(connection: ServerConnection, request: Any) -> Response:
        return connection.respond(404, "No such call\n")

    async with serve(lambda ws: None, "127.0.0.1", 0, process_request=reject) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ConnectionClosed, match="HTTP 404 No such call") as info:
            await RealtimeClient().connect(f"ws://127.0.0.1:{port}/calls/x")
    assert info.value.code == 1006


async def test_bad_url_and_misuse() -> None:
    rt = RealtimeClient()
    with pytest.raises(ValueError):
        await rt.connect("http://example.com/not-ws")
    with pytest.raises(RuntimeError):
        await rt.send_ping()
    with pytest.raises(RuntimeError):
        async for _ in rt.receive_events():
            pass
    await rt.close()  # closing a never-opened client is fine
    assert rt.close_code is None


async def test_connect_twice_is_refused(peer: Peer, join_url: str) -> None:
    async with RealtimeClient() as rt:
        await rt.connect(join_url)
        with pytest.raises(RuntimeError):
            await rt.connect(join_url)


# ------------------------------------------------------------ receiving


async def scripted(peer: Peer, ws: ServerConnection) -> None:
    await ws.send(json.dumps({"type": "call_started", "callId": "call-1"}))
    await ws.send('{"type":"state","state":"speaking"}')
    await ws.send(b"\x01\x00\x02\x00")
    await ws.send('{"type":"transcript","role":"agent","medium":"voice","text":"Hi","final":false,"ordinal":0}')
    await ws.send("not json")
    await ws.send('{"type":"transcript","role":"agent"}')  # missing required fields
    await ws.send('{"type":"room_info","roomUrl":"wss://lk","token":"t"}')
    await ws.send('{"type":"debug","message":"LLM response"}')
    await ws.send('{"type":"pong","timestamp":1.5}')
    await ws.send(b"\x00" * (2 * 1024 * 1024))  # bigger than websockets' 1 MiB default
    await ws.close(4000, "scripted end")


async def test_receive_events_typed_skips_malformed_and_ends_on_close(
    caplog: pytest.LogCaptureFixture, peer_class: Any, serve_peer: Any
) -> None:
    peer = peer_class(scripted)
    async with serve_peer(peer) as url:
        async with RealtimeClient() as rt:
            await rt.connect(url)
            async with asyncio.timeout(WAIT):
                events = [event async for event in rt.receive_events()]
            assert (rt.close_code, rt.close_reason) == (4000, "scripted end")
            assert not rt.connected
    kinds = [type(e) for e in events]
    assert kinds == [CallStarted, State, AudioIn, Transcript, UnknownMessage, Debug, Pong, AudioIn]
    assert events[0] == CallStarted(call_id="call-1")
    assert events[2] == AudioIn(b"\x01\x00\x02\x00")
    assert events[3].text == "Hi" and events[3].delta is None
    assert events[4].type == "room_info" and events[4].data["roomUrl"] == "wss://lk"
    assert len(events[7].pcm) == 2 * 1024 * 1024
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("ignored a server message" in w for w in warnings)


async def test_send_after_the_server_closed_raises_connection_closed(peer_class: Any, serve_peer: Any) -> None:
    async def close_at_once(peer: Peer, ws: ServerConnection) -> None:
        await ws.close(1000, "bye")

    peer = peer_class(close_at_once)
    async with serve_peer(peer) as url:
        async with RealtimeClient() as rt:
            await rt.connect(url)
            async with asyncio.timeout(WAIT):
                assert [e async for e in rt.receive_events()] == []
            with pytest.raises(ConnectionClosed) as info:
                await rt.send_hang_up()
    assert (info.value.code, info.value.reason) == (1000, "bye")


# ------------------------------------------------------------ sending


async def test_every_send_method_writes_one_frame(peer: Peer, join_url: str) -> None:
    async with RealtimeClient() as rt:
        await rt.connect(join_url)
        await rt.send_user_text_message("Hello", urgency="immediate", defer_response=False)
        await rt.send_input_text_message("Hi", defer_response=True)
        await rt.send_client_tool_result("inv-1", result="ok", response_type="tool-response", agent_reaction="speaks")
        await rt.send_client_tool_result("inv-2", error_type="undefined", error_message="nope")
        await rt.send_client_tool_result("inv-3", result="x", update_call_state={"a": 1})
        await rt.send_set_output_medium("text")
        await rt.send_forced_agent_message("Say this", uninterruptible=True, urgency="soon")
        await rt.send_ping(1.5)
        await rt.send_ping()
        await rt.send_data({"type": "custom", "extra": None})
        await rt.send_audio(b"\x00\x01" * 160)
        await rt.send_hang_up("Bye")
        await peer.wait_for(lambda p: len(p.received) == 12)
    assert peer.received[:8] == [
        '{"type":"user_text_message","text":"Hello","urgency":"immediate","deferResponse":false}',
        '{"type":"input_text_message","text":"Hi","deferResponse":true}',
        '{"type":"client_tool_result","invocationId":"inv-1","result":"ok","responseType":"tool-response","agentReaction":"speaks"}',
        '{"type":"client_tool_result","invocationId":"inv-2","errorType":"undefined","errorMessage":"nope"}',
        '{"type":"client_tool_result","invocationId":"inv-3","result":"x","updateCallState":{"a":1}}',
        '{"type":"set_output_medium","medium":"text"}',
        '{"type":"forced_agent_message","content":"Say this","uninterruptible":true,"urgency":"soon"}',
        '{"type":"ping","timestamp":1.5}',
    ]
    ping = json.loads(peer.received[8])
    assert ping["type"] == "ping" and ping["timestamp"] > 1_600_000_000
    assert peer.received[9:] == [
        '{"type":"custom","extra":null}',
        b"\x00\x01" * 160,
        '{"type":"hang_up","message":"Bye"}',
    ]


async def test_invalid_values_are_refused_before_sending(peer: Peer, join_url: str) -> None:
    async with RealtimeClient() as rt:
        await rt.connect(join_url)
        with pytest.raises(ValueError):
            await rt.send_set_output_medium("video")
        with pytest.raises(ValueError):
            await rt.send_data({"no": "type"})
    assert peer.received == []


async def test_close_is_normal_closure(peer: Peer, join_url: str) -> None:
    closes: list[int | None] = []

    async def watch(peer: Peer, ws: ServerConnection) -> None:
        await peer.record(ws)
        closes.append(ws.close_code)

    peer.script = watch
    rt = RealtimeClient()
    await rt.connect(join_url)
    await rt.close()
    await asyncio.wait_for(peer.closed.wait(), WAIT)
    assert closes == [1000] and rt.close_code == 1000
