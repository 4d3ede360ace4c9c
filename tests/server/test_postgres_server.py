"""The same server flows on PostgreSQL: a real `voxcall serve` with VOXCALL_DATABASE_URL on the test cluster."""

from __future__ import annotations

import os

import httpx
import pytest
import websockets

from tests.conftest import RunningServer, fresh_database
from tests.server.wire import Wire, create_call, get, wait_for_end


@pytest.fixture(scope="module")
def pg_server(server_factory: object) -> RunningServer:
    url = os.environ.get("VOXCALL_TEST_POSTGRES_URL")
    assert url, "VOXCALL_TEST_POSTGRES_URL is not set: run scripts/test-services.sh (make test does)"
    return server_factory(database_url=fresh_database(url, "voxcall_server"))  # type: ignore[operator,no-any-return]


async def test_text_call_on_postgres(pg_server: RunningServer) -> None:
    call = create_call(pg_server, {"systemPrompt": "Be brief.", "firstSpeakerSettings": {"user": {}},
                                   "initialOutputMedium": "MESSAGE_MEDIUM_TEXT"})
    async with websockets.connect(call["joinUrl"]) as ws:
        wire = Wire(ws)
        await wire.until(lambda m: m == {"type": "state", "state": "listening"})
        await wire.send({"type": "user_text_message", "text": "Hello there"})
        reply = await wire.agent_final()
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(call["joinUrl"])  # single use across the shared database
        await wire.send({"type": "hang_up"})
        assert await wire.closed() == 1000
    ended = await wait_for_end(pg_server, call["callId"])
    assert ended["endReason"] == "hangup" and ended["joined"]
    messages = get(pg_server, f"/calls/{call['callId']}/messages")["results"]
    assert [(m["role"], m["text"]) for m in messages] == [("MESSAGE_ROLE_USER", "Hello there"), ("MESSAGE_ROLE_AGENT", reply["text"])]
    listing = get(pg_server, "/calls")
    assert listing["total"] == 1 and listing["results"][0]["callId"] == call["callId"]
    assert httpx.delete(f"{pg_server.api}/calls/{call['callId']}", headers=pg_server.headers()).status_code == 204
