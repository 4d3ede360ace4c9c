"""/api/webhooks and webhook delivery, in process: the sender's HTTP client is a scripted MockTransport receiver.

Signatures are checked here with an independent HMAC computation, as the hosted
documentation tells a receiver to (https://docs.ultravox.ai/webhooks/securing-webhooks).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.platform.conftest import Api, Receiver, open_services, serving
from voxcall.server.deliveries import retry_delay

HOOK = "https://hooks.example.com/ultravox"


def verify(request: httpx.Request, secret: str) -> datetime:
    """Check a delivery the way a receiver should; returns its timestamp."""
    stamp = request.headers["X-Ultravox-Webhook-Timestamp"]
    sent = datetime.fromisoformat(stamp)
    assert abs((datetime.now(UTC) - sent).total_seconds()) < 60
    expected = hmac.new(secret.encode(), request.content + stamp.encode(), hashlib.sha256).hexdigest()
    assert expected in request.headers["X-Ultravox-Webhook-Signature"].split(",")
    assert request.headers["Content-Type"] == "application/json" and request.method == "POST"
    return sent


async def hook(api: Api, **body: Any) -> dict[str, Any]:
    r = await api.client.post("/webhooks", json={"url": HOOK, "events": ["call.started", "call.joined", "call.ended"], **body})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_webhook_crud(api: Api) -> None:
    created = await hook(api, secrets=["first-secret"])
    assert set(created) == {"webhookId", "agentId", "created", "url", "secrets", "events", "status", "lastStatusChange", "recentFailures"}
    assert created["status"] == "normal" and created["recentFailures"] == [] and created["lastStatusChange"] is None
    assert created["secrets"] == ["first-secret"] and created["agentId"] is None
    generated = await hook(api)
    assert len(generated["secrets"]) == 1 and len(generated["secrets"][0]) >= 32
    url = f"/webhooks/{created['webhookId']}"
    assert (await api.client.get(url)).json() == created
    patched = (await api.client.patch(url, json={"events": ["call.ended", "call.ended"], "secrets": ["a", "b"]})).json()
    assert patched["events"] == ["call.ended"] and patched["secrets"] == ["a", "b"] and patched["url"] == HOOK
    put = (await api.client.put(url, json={"url": "https://other.example.com/h", "events": ["call.joined"]})).json()
    assert put["url"] == "https://other.example.com/h" and put["events"] == ["call.joined"] and put["secrets"] == ["a", "b"]
    assert (await api.client.put(url, json={"events": ["call.joined"]})).status_code == 422  # PUT needs url
    listed = (await api.client.get("/webhooks")).json()
    assert [w["webhookId"] for w in listed["results"]] == [generated["webhookId"], created["webhookId"]] and listed["total"] == 2
    assert (await api.client.delete(url)).status_code == 204
    assert (await api.client.get(url)).status_code == 404 and (await api.client.delete(url)).status_code == 404


async def test_agent_scoped_webhooks(api: Api) -> None:
    agent = (await api.client.post("/agents", json={"name": "a"})).json()
    scoped = await hook(api, agentId=agent["agentId"])
    everything = await hook(api)
    assert scoped["agentId"] == agent["agentId"]
    only = (await api.client.get("/webhooks", params={"agentId": agent["agentId"]})).json()["results"]
    assert [w["webhookId"] for w in only] == [scoped["webhookId"]]
    await api.client.post("/calls", json={})
    await api.client.post(f"/agents/{agent['agentId']}/calls", json={})
    await api.deliver()
    assert len(api.receiver.requests) == 3  # the plain call reaches one webhook, the agent call both
    widened = (await api.client.patch(f"/webhooks/{scoped['webhookId']}", json={"agentId": None})).json()
    assert widened["agentId"] is None and everything["agentId"] is None
    unknown = await api.client.post("/webhooks", json={"url": HOOK, "events": [], "agentId": str(uuid.uuid4())})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "agentId"]


@pytest.mark.parametrize(("body", "where"), [
    ({"events": ["call.ended"]}, ["body", "url"]),
    ({"url": HOOK}, ["body", "events"]),
    ({"url": "ftp://example.com/x", "events": []}, ["body", "url"]),
    ({"url": "not a url", "events": []}, ["body", "url"]),
    ({"url": "https://example.com/" + "x" * 200, "events": []}, ["body", "url"]),
    ({"url": HOOK, "events": ["call.exploded"]}, ["body", "events", 0]),
    ({"url": HOOK, "events": "call.ended"}, ["body", "events"]),
    ({"url": HOOK, "events": [], "secrets": ["s" * 121]}, ["body", "secrets"]),
    ({"url": HOOK, "events": [], "secrets": [5]}, ["body", "secrets", 0]),
])
async def test_bad_webhooks_are_refused(api: Api, body: dict[str, Any], where: list[Any]) -> None:
    r = await api.client.post("/webhooks", json=body)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == where, r.text
    assert (await api.client.get("/webhooks")).json()["total"] == 0


async def test_other_accounts_webhooks_are_not_found(api: Api) -> None:
    created = await hook(api)
    async with await api.other_account() as other:
        for method in ("GET", "PUT", "PATCH", "DELETE"):
            r = await other.request(method, f"/webhooks/{created['webhookId']}", json={"url": HOOK, "events": []} if method in ("PUT", "PATCH") else None)
            assert r.status_code == 404 and "GET /api/webhooks" in r.text
        assert (await other.get("/webhooks")).json()["total"] == 0
        await other.post("/calls", json={})
    await api.deliver()
    assert api.receiver.requests == []  # another account's call reaches none of this account's webhooks
    assert (await api.client.get("/webhooks/not-a-uuid")).status_code == 404


async def test_lifecycle_events_are_signed_and_carry_the_call(api: Api) -> None:
    created = await hook(api, secrets=["old-secret", "new-secret"])
    call = (await api.client.post("/calls", json={"systemPrompt": "hi", "joinTimeout": "0.2s"})).json()
    assert await api.deliver() == 1
    [started] = api.receiver.requests
    assert str(started.url) == HOOK
    verify(started, "old-secret")
    verify(started, "new-secret")
    assert len(started.headers["X-Ultravox-Webhook-Signature"].split(",")) == 2
    body = json.loads(started.content)
    assert body["event"] == "call.started" and body["call"]["callId"] == call["callId"] and body["call"]["ended"] is None
    await asyncio.sleep(0.3)
    await api.client.get(f"/calls/{call['callId']}")  # settles the unjoined call: the one place it ends
    await api.client.get(f"/calls/{call['callId']}")
    await api.deliver()
    ended = api.receiver.requests[1]
    verify(ended, "new-secret")
    assert json.loads(ended.content)["event"] == "call.ended" and json.loads(ended.content)["call"]["endReason"] == "unjoined"
    assert len(api.receiver.requests) == 2  # settled twice, ended once; call.billed has no subscriber
    tampered = httpx.Request("POST", HOOK, content=started.content.replace(b"call.started", b"call.ended"), headers=started.headers)
    with pytest.raises(AssertionError):
        verify(tampered, "new-secret")
    assert (await api.client.get(f"/webhooks/{created['webhookId']}")).json()["status"] == "normal"


async def test_per_call_callbacks(api: Api) -> None:
    callbacks = {"joined": {"url": "https://cb.example.com/joined", "secrets": ["cb-secret"]},
                 "ended": {"url": "https://cb.example.com/ended", "secrets": ["cb-secret"]},
                 "billed": {"url": "https://cb.example.com/billed"}}
    call = (await api.client.post("/calls", json={"joinTimeout": "0.1s", "callbacks": callbacks})).json()
    await api.svc.notify("call.joined", call["callId"])
    await asyncio.sleep(0.2)
    await api.client.get(f"/calls/{call['callId']}")
    await api.deliver()
    assert sorted(api.receiver.events()) == [("/billed", "call.billed"), ("/ended", "call.ended"), ("/joined", "call.joined")]
    for request in api.receiver.requests:
        if request.url.path != "/billed":
            verify(request, "cb-secret")
        else:
            assert request.headers["X-Ultravox-Webhook-Signature"] == ""  # no secrets given: nothing to sign with


async def test_retries_back_off_then_succeed_and_health_is_kept(api: Api, receiver: Receiver) -> None:
    created = await hook(api, events=["call.started"])
    receiver.statuses = [500, 503, 404]
    receiver.down = True
    await api.client.post("/calls", json={})
    failures = ["ConnectError: connection refused", "HTTP 500", "HTTP 503", "HTTP 404"]
    for attempt, failure in enumerate(failures, start=1):
        before = datetime.now(UTC)
        assert await api.deliver() == 1
        after = datetime.now(UTC)
        [pending] = await api.svc.platform.outbox.pending()
        assert pending.attempts == attempt and pending.last_error == failure
        delay = 0.05 * 2 ** (attempt - 1)  # retry_base 0.05 s, doubling
        assert before + timedelta(seconds=0.9 * delay) <= pending.next_attempt <= after + timedelta(seconds=1.1 * delay)
        receiver.down = False
        await asyncio.sleep(max(0.0, (pending.next_attempt - datetime.now(UTC)).total_seconds()) + 0.01)
    assert len(receiver.requests) == 3
    webhook = (await api.client.get(f"/webhooks/{created['webhookId']}")).json()
    assert [f["failure"] for f in webhook["recentFailures"]] == failures
    assert webhook["status"] == "unhealthy" and webhook["lastStatusChange"]
    assert await api.deliver() == 1 and len(receiver.requests) == 4
    healthy = (await api.client.get(f"/webhooks/{created['webhookId']}")).json()
    assert healthy["status"] == "normal" and healthy["lastStatusChange"] > webhook["lastStatusChange"]
    assert len(healthy["recentFailures"]) == 4  # failures stay on record
    assert await api.svc.platform.outbox.counts() == {"delivered": 1}


async def test_gives_up_after_max_retries(tmp_path: Path) -> None:
    receiver = Receiver(default=500)
    svc = await open_services(tmp_path, receiver, webhook_max_retries=2, webhook_retry_base=0.01)
    try:
        async with serving(svc, receiver) as api:
            await hook(api, events=["call.started"])
            await api.client.post("/calls", json={})
            deadline = time.monotonic() + 5
            while (await svc.platform.outbox.counts()).get("pending") and time.monotonic() < deadline:
                await api.deliver()
                await asyncio.sleep(0.01)
            assert len(receiver.requests) == 3 and await svc.platform.outbox.counts() == {"failed": 1}
    finally:
        await svc.close()


def test_retry_delays_double_from_the_base() -> None:
    for attempt in range(1, 11):
        delay = retry_delay(attempt, 30.0)
        assert 30 * 2 ** (attempt - 1) * 0.9 <= delay <= 30 * 2 ** (attempt - 1) * 1.1


async def test_deleting_a_webhook_drops_its_pending_deliveries(api: Api, receiver: Receiver) -> None:
    created = await hook(api)
    receiver.down = True
    await api.client.post("/calls", json={})
    await api.deliver()
    assert (await api.svc.platform.outbox.counts()) == {"pending": 1}
    await api.client.delete(f"/webhooks/{created['webhookId']}")
    assert await api.svc.platform.outbox.counts() == {}


async def test_pending_deliveries_survive_a_restart(tmp_path: Path) -> None:
    """Queued while the receiver is down and the sender stopped; a new process on the same database delivers them."""
    first = Receiver(down=True)
    svc = await open_services(tmp_path, first)
    async with serving(svc, first) as api:
        await hook(api, secrets=["persisted"], events=["call.started"])
        call = (await api.client.post("/calls", json={})).json()
        await api.deliver()
    await svc.close()  # the sender never succeeded: the delivery is still in the database
    second = Receiver()
    again = await open_services(tmp_path, second)
    try:
        again.platform.start()  # what `voxcall serve` does at start-up
        deadline = time.monotonic() + 5
        while await again.platform.outbox.counts() != {"delivered": 1} and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        [delivered] = second.requests
        verify(delivered, "persisted")
        assert json.loads(delivered.content)["call"]["callId"] == call["callId"]
        assert await again.platform.outbox.counts() == {"delivered": 1}
    finally:
        await again.close()


async def test_the_background_sender_delivers_promptly(api: Api, receiver: Receiver) -> None:
    await hook(api, events=["call.started"])
    api.svc.platform.start()
    started = time.monotonic()
    await api.client.post("/calls", json={})
    while not receiver.requests and time.monotonic() - started < 3:
        await asyncio.sleep(0.01)
    assert len(receiver.requests) == 1 and time.monotonic() - started < 2.5  # woken at once, not at the next 5 s poll


async def test_an_unanswered_receiver_times_out(tmp_path: Path) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(204)

    receiver = Receiver()
    svc = await open_services(tmp_path, receiver, webhook_timeout=0.2)
    svc.platform.deliveries._client = httpx.AsyncClient(transport=httpx.MockTransport(slow))
    try:
        async with serving(svc, receiver) as api:
            created = await hook(api, events=["call.started"])
            await api.client.post("/calls", json={})
            async with asyncio.timeout(3):
                await api.deliver()
            failures = (await api.client.get(f"/webhooks/{created['webhookId']}")).json()["recentFailures"]
            assert failures[0]["failure"] == "timed out after 0.2 s"
            assert datetime.fromisoformat(failures[0]["timestamp"]) > datetime.now(UTC) - timedelta(seconds=10)
    finally:
        await svc.close()


async def test_private_targets_are_refused_unless_allowed(api: Api, tmp_path: Path) -> None:
    for url in ["http://127.0.0.1:9/x", "http://localhost/x", "http://10.0.0.1/x", "http://169.254.169.254/latest", "http://[::1]/x"]:
        r = await api.client.post("/webhooks", json={"url": url, "events": ["call.ended"]})
        assert r.status_code == 422 and "public addresses only" in r.text, (url, r.text)
    created = await hook(api)
    r = await api.client.patch(f"/webhooks/{created['webhookId']}", json={"url": "http://192.168.1.1/"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "url"]
    r = await api.client.post("/calls", json={"callbacks": {"ended": {"url": "http://127.0.0.1:9/ended"}}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "callbacks", "ended", "url"]
    receiver = Receiver()
    allowed = await open_services(tmp_path / "allowed", receiver, outbound_allow="127.0.0.1")
    try:
        async with serving(allowed, receiver) as other:
            assert (await other.client.post("/webhooks", json={"url": "http://127.0.0.1:9/x", "events": []})).status_code == 201
            assert (await other.client.post("/webhooks", json={"url": "http://10.0.0.1/x", "events": []})).status_code == 422
    finally:
        await allowed.close()
