"""429 with Retry-After from the REST API: concurrency, creation rate, request rate, failed-auth throttling.

In process: `create_app(services=...)` over `httpx.ASGITransport` on a SQLite store in tmp_path,
with the limiters on an injected clock. The LLM is never reached (no call is joined).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from voxcall.client.rest import Client
from voxcall.config import Settings
from voxcall.errors import RateLimited
from voxcall.providers.fake import ScriptedLLM
from voxcall.server.app import build_services, create_app
from voxcall.server.limits import Limits
from voxcall.server.services import Services

LOOSE = {"max_calls": 0, "calls_per_second": 0, "calls_per_minute": 0, "requests_per_second": 0, "auth_failures_per_minute": 0}


class Clock:
    def __init__(self) -> None:
        self.now = 50_000.0

    def __call__(self) -> float:
        return self.now


class Api:
    """One in-process app with a key; `client(address)` talks to it from that client address."""

    def __init__(self, svc: Services, key: str, clock: Clock) -> None:
        self.svc, self.key, self.clock = svc, key, clock
        self.app = create_app(services=svc)

    def client(self, address: str = "192.0.2.10", key: str | None = None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver/api",
                                 headers={"X-API-Key": key if key is not None else self.key})


@pytest.fixture
async def make_api(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    built: list[Services] = []

    async def make(**limits: Any) -> Api:
        values: dict[str, Any] = {**LOOSE, **limits}
        settings = Settings(data_dir=tmp_path / f"s{len(built)}", speech=False, **values)
        svc = await build_services(settings, llm=ScriptedLLM([]), speech=None)
        built.append(svc)
        clock = Clock()
        svc.limits = Limits.from_settings(settings, clock=clock)
        key, _ = await svc.store.create_api_key("tests")
        return Api(svc, key, clock)

    yield make
    for svc in built:
        await svc.close()


def assert_429(r: httpx.Response, retry_after: str, words: str) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["Retry-After"] == retry_after
    assert words in r.json()["detail"]


async def test_concurrent_calls_are_capped_and_me_reports_the_same_numbers(make_api: Callable[..., Any]) -> None:
    api = await make_api(max_calls=2)
    async with api.client() as http:
        ids = [(await http.post("/calls", json={})).json()["callId"] for _ in range(2)]
        me = (await http.get("/accounts/me")).json()
        assert (me["activeCalls"], me["allowedConcurrentCalls"]) == (2, 2)
        third = await http.post("/calls", json={})
        assert_429(third, "5", "limit (allowedConcurrentCalls) is 2")  # two unjoined calls, 30 s to their deadline
        assert (await http.get("/calls")).json()["total"] == 2  # nothing was stored
        # a joined call still counts; an ended one frees its slot
        await api.svc.store.mark_joined(ids[0], client_version=None, at=datetime.now(UTC))
        assert (await http.post("/calls", json={})).status_code == 429
        await api.svc.store.mark_ended(ids[0], reason="hangup", at=datetime.now(UTC))
        assert (await http.post("/calls", json={})).status_code == 201
        assert (await http.post("/calls", json={})).status_code == 429
        assert (await http.delete(f"/calls/{ids[1]}")).status_code == 204
        assert (await http.post("/calls", json={})).status_code == 201


async def test_an_unjoined_call_frees_its_slot_at_its_join_deadline(make_api: Callable[..., Any]) -> None:
    api = await make_api(max_calls=1)
    async with api.client() as http:
        assert (await http.post("/calls", json={"joinTimeout": "0.3s"})).status_code == 201
        assert_429(await http.post("/calls", json={}), "1", "calls open")  # the deadline is under a second away
        await asyncio.sleep(0.4)
        assert (await http.post("/calls", json={})).status_code == 201
        assert (await http.get("/accounts/me")).json()["activeCalls"] == 1


async def test_simultaneous_creations_do_not_overshoot_the_limit(make_api: Callable[..., Any]) -> None:
    api = await make_api(max_calls=3)
    async with api.client() as http:
        replies = await asyncio.gather(*(http.post("/calls", json={}) for _ in range(12)))
    assert sorted(r.status_code for r in replies) == [201] * 3 + [429] * 9
    account = await api.svc.store.authenticate(api.key)
    assert account and len(await api.svc.store.list_open_calls(account)) == 3


async def test_call_creation_rate_per_account(make_api: Callable[..., Any]) -> None:
    api = await make_api(calls_per_second=2, calls_per_minute=3)
    async with api.client() as http:
        assert [(await http.post("/calls", json={})).status_code for _ in range(2)] == [201, 201]
        assert_429(await http.post("/calls", json={}), "1", "at most 2 per second and 3 per minute")
        assert (await http.get("/calls")).json()["total"] == 2  # the refused one was not stored
        api.clock.now += 1.0
        assert (await http.post("/calls", json={})).status_code == 201
        api.clock.now += 1.0
        assert_429(await http.post("/calls", json={}), "18", "per minute")
        assert (await http.get("/calls")).status_code == 200  # other requests go on
        bad = await http.post("/calls", json={"temperature": 9})
        assert bad.status_code == 422  # validation comes first and is not counted
        api.clock.now += 18.0
        assert (await http.post("/calls", json={})).status_code == 201


async def test_request_rate_per_api_key(make_api: Callable[..., Any]) -> None:
    api = await make_api(requests_per_second=3)
    other, _ = await api.svc.store.create_api_key("second key")
    async with api.client() as http, api.client(key=other) as http2:
        assert [(await http.get("/calls")).status_code for _ in range(3)] == [200] * 3
        assert_429(await http.get("/accounts/me"), "1", "at most 3 per second")
        assert_429(await http.post("/calls", json={}), "1", "this API key")
        assert (await http2.get("/calls")).status_code == 200  # the same account's other key has its own budget
        api.clock.now += 1 / 3
        assert [(await http.get("/calls")).status_code for _ in range(2)] == [200, 429]


async def test_bad_keys_throttle_the_client_address_before_any_key_is_checked(make_api: Callable[..., Any]) -> None:
    api = await make_api(auth_failures_per_minute=3)
    wrong = "abcdefgh." + "0" * 32
    async with api.client("198.51.100.7", key=wrong) as guesser, api.client("198.51.100.7") as neighbour, \
            api.client("198.51.100.8") as elsewhere:
        assert [(await guesser.get("/calls")).status_code for _ in range(3)] == [401] * 3
        assert_429(await guesser.get("/calls"), "20", "Too many invalid API keys from this address")
        assert_429(await neighbour.get("/calls"), "20", "invalid API keys")  # even a valid key, from that address
        assert (await elsewhere.get("/calls")).status_code == 200
        api.clock.now += 20.0  # a minute's allowance of 3 comes back one every 20 s
        assert (await neighbour.get("/calls")).status_code == 200  # a valid key counts for nothing
        assert (await guesser.get("/calls")).status_code == 401
        assert (await guesser.get("/calls")).status_code == 429


async def test_zero_turns_every_limit_off(make_api: Callable[..., Any]) -> None:
    api = await make_api()
    async with api.client() as http:
        assert [(await http.post("/calls", json={})).status_code for _ in range(15)] == [201] * 15
        me = (await http.get("/accounts/me")).json()
        assert me["activeCalls"] == 15 and me["allowedConcurrentCalls"] is None


async def test_the_sdk_raises_rate_limited_with_retry_after(make_api: Callable[..., Any]) -> None:
    api = await make_api(max_calls=1)
    transport = httpx.ASGITransport(app=api.app, client=("192.0.2.20", 40000))
    async with Client(api.key, "http://testserver/api", transport=transport) as client:
        await client.calls.create({})
        with pytest.raises(RateLimited) as info:
            await client.calls.create({})
    assert info.value.status_code == 429 and info.value.retry_after == 5.0
    assert "allowedConcurrentCalls" in str(info.value.detail)


async def test_browsers_may_read_retry_after(make_api: Callable[..., Any]) -> None:
    api = await make_api(max_calls=1, cors_origins=["http://app.example"])
    async with api.client() as http:
        http.headers["Origin"] = "http://app.example"
        assert (await http.post("/calls", json={})).status_code == 201
        refused = await http.post("/calls", json={})
    assert_429(refused, "5", "allowedConcurrentCalls")
    assert refused.headers["Access-Control-Allow-Origin"] == "http://app.example"
    assert "retry-after" in refused.headers["Access-Control-Expose-Headers"].lower()
