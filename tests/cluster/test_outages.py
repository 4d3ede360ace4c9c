"""PostgreSQL or Redis briefly unreachable, for real: a cuttable TCP proxy between a real
`voxcall serve` and the real database and Redis, all on loopback.

While a service is cut, creating a call answers 503 with Retry-After within seconds (no
hang, no 500) and a live text call keeps answering pings and talking; once it is back, what
the client saw is in /messages and calls can be created again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import websockets

from tests.cluster.conftest import service_url
from tests.cluster.proxy import CutProxy
from tests.cluster.test_multinode import TEXT_CALL, fresh_database
from tests.conftest import RunningServer
from tests.server.wire import Wire


@dataclass
class Outages:
    server: RunningServer
    postgres: CutProxy
    redis: CutProxy


def through(url: str, proxy: CutProxy) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")).geturl()


def proxy_to(url: str) -> CutProxy:
    parts = urlsplit(url)
    assert parts.hostname in ("127.0.0.1", "localhost") and parts.port
    return CutProxy("127.0.0.1", parts.port).start()


@pytest.fixture(scope="module")
def outages(server_factory: Any, redis_url: str) -> Iterator[Outages]:
    database = fresh_database(service_url("VOXCALL_TEST_POSTGRES_URL", "test-services.sh"))
    postgres, redis = proxy_to(database), proxy_to(redis_url)
    env = {"VOXCALL_REDIS_URL": through(redis_url, redis), "VOXCALL_SPEECH": "false", "VOXCALL_NODE_HEARTBEAT_SECONDS": "1",
           "VOXCALL_DATABASE_TIMEOUT_SECONDS": "3", "VOXCALL_REDIS_TIMEOUT_SECONDS": "3"}
    try:
        yield Outages(server_factory(database_url=through(database, postgres), extra_env=env), postgres, redis)
    finally:
        postgres.close()
        redis.close()


@pytest.fixture
async def api(outages: Outages) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=outages.server.api, headers=outages.server.headers(), timeout=30) as client:
        yield client


async def refused_quickly(api: httpx.AsyncClient, server: RunningServer, service: str) -> None:
    started = time.monotonic()
    r = await api.post("/calls", json=TEXT_CALL)
    assert time.monotonic() - started < 15, "creating a call hung while the service was away"
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) >= 1
    detail = r.json()["detail"]
    assert service in detail and "unreachable" in detail and "Try again" in detail
    ready = await api.get(f"{server.url}/readyz")
    assert ready.status_code == 503 and "unreachable" in ready.text  # the load balancer sends new calls elsewhere


async def ping(wire: Wire, timestamp: float) -> None:
    await wire.send({"type": "ping", "timestamp": timestamp})
    await wire.until(lambda m: m == {"type": "pong", "timestamp": timestamp}, timeout=10)


def agent_talks(m: dict[str, Any]) -> bool:
    return m["type"] == "transcript" and m["role"] == "agent" and bool(m.get("delta") or m.get("text"))


async def joined(api: httpx.AsyncClient) -> tuple[str, Wire]:
    r = await api.post("/calls", json=TEXT_CALL)
    assert r.status_code == 201, r.text
    call = r.json()
    wire = Wire(await websockets.connect(call["joinUrl"]))
    await wire.until(lambda m: m == {"type": "state", "state": "listening"})
    return call["callId"], wire


async def test_postgres_cut_refuses_new_calls_with_503_and_the_live_call_keeps_talking_and_is_stored(
        outages: Outages, api: httpx.AsyncClient) -> None:
    call_id, wire = await joined(api)
    later = (await api.post("/calls", json=TEXT_CALL)).json()
    outages.postgres.cut()
    try:
        await refused_quickly(api, outages.server, "database")
        refused = Wire(await websockets.connect(later["joinUrl"]))
        assert await refused.closed(timeout=15) == 1013  # try again later: the join URL still works afterwards
        await ping(wire, 1)
        await wire.send({"type": "user_text_message", "text": "Say hello."})
        await wire.until(agent_talks, timeout=90)  # the agent answers although nothing can be stored
        await ping(wire, 2)
        assert not any(m["type"] == "transcript" and m["final"] for m in wire.seen), "a final went out unstored"
    finally:
        outages.postgres.restore()
    final = await wire.agent_final(timeout=90)  # sent once stored
    user = [m for m in wire.seen if m["type"] == "transcript" and m["role"] == "user" and m["final"]]
    assert [m["text"] for m in user] == ["Say hello."]
    await wire.send({"type": "hang_up"})
    await wire.closed()
    stored = (await api.get(f"/calls/{call_id}/messages")).json()["results"]
    assert [(m["role"], m["text"]) for m in stored][:2] == [("MESSAGE_ROLE_USER", "Say hello."), ("MESSAGE_ROLE_AGENT", final["text"])]
    assert (await api.post("/calls", json=TEXT_CALL)).status_code == 201
    rejoined = Wire(await websockets.connect(later["joinUrl"]))
    await rejoined.until(lambda m: m == {"type": "state", "state": "listening"})
    await rejoined.send({"type": "hang_up"})
    await rejoined.closed()


async def test_redis_cut_refuses_new_calls_with_503_and_the_live_call_keeps_talking(
        outages: Outages, api: httpx.AsyncClient) -> None:
    call_id, wire = await joined(api)
    outages.redis.cut()
    try:
        await refused_quickly(api, outages.server, "Redis")
        await ping(wire, 3)
        await wire.send({"type": "user_text_message", "text": "Say hi."})
        final = await wire.agent_final(timeout=90)
        await ping(wire, 4)
    finally:
        outages.redis.restore()
    deadline = time.monotonic() + 20
    while (r := await api.post("/calls", json=TEXT_CALL)).status_code != 201:  # the client reconnects by itself
        assert r.status_code == 503 and time.monotonic() < deadline, r.text
        await asyncio.sleep(0.2)
    await wire.send({"type": "hang_up"})
    await wire.closed()
    stored = (await api.get(f"/calls/{call_id}/messages")).json()["results"]
    assert ("MESSAGE_ROLE_AGENT", final["text"]) in [(m["role"], m["text"]) for m in stored]
