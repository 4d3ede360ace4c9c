"""The livekit driver's checks can fail: against a deliberately wrong fake server they must.

A conformance check that never fires proves nothing. This fake speaks just enough of the protocol
for a text turn, but also sends a message type that is off by default and a transcript without
its required `ordinal`; the plugin must log both as `Invalid event data`, and the driver must
report them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse

from tests.conformance.harness import driver_report
from tests.conftest import RunningServer, free_port

pytestmark = [pytest.mark.conformance]

BAD_MESSAGES = [
    {"type": "user_started_speaking"},
    {"type": "transcript", "role": "agent", "medium": "text", "text": "no ordinal", "final": True},
]


def fake_app() -> FastAPI:
    app = FastAPI()

    @app.post("/api/calls")
    async def create(request: Request) -> JSONResponse:
        url = f"ws://{request.url.netloc}/ws"
        return JSONResponse({"callId": "fake-call", "joinUrl": url}, status_code=201)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"type": "call_started", "callId": "fake-call"})
        await websocket.send_json({"type": "state", "state": "listening"})
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") and '"user_text_message"' in message["text"]:
                for bad in BAD_MESSAGES:
                    await websocket.send_json(bad)
                await websocket.send_json({"type": "state", "state": "speaking"})
                await websocket.send_json({"type": "transcript", "role": "agent", "medium": "text",
                                           "delta": "Hi!", "final": False, "ordinal": 1})
                await websocket.send_json({"type": "transcript", "role": "agent", "medium": "text",
                                           "text": "Hi!", "final": True, "ordinal": 1})
                await websocket.send_json({"type": "state", "state": "listening"})

    return app


@pytest.fixture
def fake_server(tmp_path: Any) -> Iterator[RunningServer]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(fake_app(), host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the fake server did not start"
    yield RunningServer(f"http://127.0.0.1:{port}", "fake-key", tmp_path, tmp_path / "log")
    server.should_exit = True
    thread.join(timeout=10)


def test_invalid_server_messages_are_reported(fake_server: RunningServer) -> None:
    report = driver_report("livekit", "drive_livekit.py", fake_server, "text")
    assert not report.get("exception"), report["exception"]
    assert report["texts"] == ["Hi!"], report["steps"]
    invalid = report["invalid_event_data"]
    assert len(invalid) == 2, invalid
    assert "user_started_speaking" in invalid[0] and "no ordinal" in invalid[1], invalid
