"""The WebSocket protocol under `voxcall serve` (server/ws_protocol.py), driven with bytes on a fake transport.

Data frames reach a sink the app sets, in order with the frames still queued for it;
`DirectFrames.write` puts frames on the wire at once, and declines under backpressure.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from voxcall.server.ws_protocol import DIRECT_FRAMES, BufferedWebSocketProtocol, DirectFrames


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.paused = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def pause_reading(self) -> None:
        self.paused += 1

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)


async def test_frames_go_to_the_sink_in_order_with_the_queue_and_writes_go_straight_out() -> None:
    scopes: list[dict[str, Any]] = []
    queued: list[Any] = []
    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        scopes.append(scope)
        await release.wait()  # the test reads the queue through `receive` when it wants
        while len(queued) < 2:
            queued.append(await receive())
        await asyncio.Event().wait()

    config = uvicorn.Config(app, ws=BufferedWebSocketProtocol, log_level="warning")
    config.load()
    protocol = BufferedWebSocketProtocol(config, ServerState(), {})
    transport = _Transport()
    protocol.connection_made(transport)
    client = ClientProtocol(parse_uri("ws://127.0.0.1:8000/calls/x/server_web_socket"))
    client.send_request(client.connect())
    protocol.data_received(b"".join(client.data_to_send()))
    async with asyncio.timeout(5):
        while not scopes:
            await asyncio.sleep(0.001)
    client.receive_data(bytes(transport.written))
    assert client.handshake_exc is None
    transport.written.clear()
    direct = scopes[0]["extensions"][DIRECT_FRAMES]
    assert isinstance(direct, DirectFrames)

    def send(frame: bytes | str) -> None:
        client.send_binary(frame) if isinstance(frame, bytes) else client.send_text(frame.encode())
        protocol.data_received(b"".join(client.data_to_send()))

    taken: list[bytes | str] = []
    send(b"first")  # no sink yet: queued for the app
    direct.sink = taken.append
    send(b"second")  # the first is still queued: this one waits behind it, in the queue
    assert taken == []
    release.set()
    async with asyncio.timeout(5):
        while len(queued) < 2:
            await asyncio.sleep(0.001)
    assert [m.get("bytes") for m in queued] == [b"first", b"second"]
    send(b"third")
    send('{"type": "ping"}')
    assert taken == [b"third", '{"type": "ping"}']  # straight from data_received, text as str

    assert direct.write(b"audio") and direct.write("text")
    client.receive_data(bytes(transport.written))
    frames = [e for e in client.events_received() if isinstance(e, Frame)]
    assert [(f.opcode, f.data) for f in frames] == [(Opcode.BINARY, b"audio"), (Opcode.TEXT, b"text")]
    protocol.pause_writing()  # the transport's buffer is full: the awaited send, which waits, must be used
    assert not direct.write(b"more")
    protocol.resume_writing()
    assert direct.write(b"more")

    def broken(frame: bytes | str) -> None:
        raise RuntimeError("a bug in the sink")

    direct.sink = broken
    send(b"lost")  # logged; the connection goes on, and frames go to the app's queue again
    assert direct.sink is None
    send(b"fourth")
    assert protocol.queue.qsize() == 1 and protocol.queue.get_nowait().get("bytes") == b"fourth"
    for task in list(protocol.tasks):
        task.cancel()
