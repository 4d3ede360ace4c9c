"""Agents and webhooks against real `voxcall serve` processes (SmolLM2, text only) and a real receiver on 127.0.0.1.

The receiver checks each delivery the way the hosted documentation tells a receiver to
(https://docs.ultravox.ai/webhooks/securing-webhooks): a recent X-Ultravox-Webhook-Timestamp, and
an X-Ultravox-Webhook-Signature that is the hex HMAC-SHA256 of the raw body followed by that timestamp.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import RunningServer, free_port
from tests.server.wire import Wire, wait_for_end

ENV = {"VOXCALL_OUTBOUND_ALLOW": "127.0.0.1", "VOXCALL_SPEECH": "false", "VOXCALL_WEBHOOK_RETRY_BASE": "0.5",
       "VOXCALL_WEBHOOK_TIMEOUT": "3"}
EVENTS = ["call.started", "call.joined", "call.ended"]


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]

    def verify(self, secret: str) -> None:
        stamp = self.headers["x-ultravox-webhook-timestamp"]
        assert abs((datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds()) < 60
        expected = hmac.new(secret.encode(), self.body + stamp.encode(), hashlib.sha256).hexdigest()
        assert expected in self.headers["x-ultravox-webhook-signature"].split(","), "bad signature"


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1:`port`, started and stopped by the test (down until started)."""

    port: int = field(default_factory=free_port)
    seen: list[Delivery] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                owner.seen.append(Delivery({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def of(self, call_id: str) -> list[Delivery]:
        return [d for d in self.seen if d.payload["call"]["callId"] == call_id]

    async def wait_for(self, predicate: Callable[[list[Delivery]], bool], timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.seen):
                await asyncio.sleep(0.1)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def platform_server(server_factory: Any) -> RunningServer:
    return server_factory(extra_env=ENV)  # type: ignore[no-any-return]


def client(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=server.api, headers=server.headers(), timeout=30)


async def wait_until(check: Callable[[], bool], timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.2)


async def test_agent_template_call_end_to_end_with_signed_webhooks(platform_server: RunningServer, receiver: Receiver) -> None:
    receiver.start()
    with client(platform_server) as api:
        hook = api.post("/webhooks", json={"url": receiver.url, "events": EVENTS, "secrets": ["e2e-secret"]}).json()
        template = {"systemPrompt": "You are {{persona}}. The caller is {{caller.name}}. Answer in one short sentence.",
                    "firstSpeakerSettings": {"user": {}}, "initialOutputMedium": "MESSAGE_MEDIUM_TEXT",
                    "medium": {"serverWebSocket": {"inputSampleRate": 16000}}, "maxDuration": "120s"}
        agent = api.post("/agents", json={"name": "concierge", "callTemplate": template}).json()
        r = api.post(f"/agents/{agent['agentId']}/calls", json={"templateContext": {"persona": "a hotel concierge", "caller": {"name": "Ada"}}})
        assert r.status_code == 201, r.text
        call = r.json()
        assert call["agentId"] == agent["agentId"] and call["agent"]["name"] == "concierge"
        assert call["systemPrompt"] == "You are a hotel concierge. The caller is Ada. Answer in one short sentence."
        async with websockets.connect(call["joinUrl"]) as ws:
            wire = Wire(ws)
            await wire.until(lambda m: m == {"type": "state", "state": "listening"})
            await wire.send({"type": "user_text_message", "text": "Hello, who are you?"})
            reply = await wire.agent_final(timeout=90)
            assert reply["text"] and reply["medium"] == "text"
            await wire.send({"type": "hang_up"})
            assert await wire.closed() == 1000
        ended = await wait_for_end(platform_server, call["callId"], timeout=30)
        assert ended["endReason"] == "hangup" and ended["agentId"] == agent["agentId"]
        await receiver.wait_for(lambda _: len(receiver.of(call["callId"])) == 3)
        deliveries = receiver.of(call["callId"])
        assert sorted(d.payload["event"] for d in deliveries) == sorted(EVENTS)
        for delivery in deliveries:
            delivery.verify("e2e-secret")
            assert delivery.payload["call"]["agentId"] == agent["agentId"]
            assert delivery.headers["content-type"] == "application/json"
        by_event = {d.payload["event"]: d.payload["call"] for d in deliveries}
        assert by_event["call.started"]["joined"] is None and by_event["call.joined"]["joined"] and by_event["call.joined"]["ended"] is None
        assert by_event["call.ended"]["endReason"] == "hangup"
        assert api.get(f"/agents/{agent['agentId']}").json()["statistics"] == {"calls": 1}
        assert [c["callId"] for c in api.get(f"/agents/{agent['agentId']}/calls").json()["results"]] == [call["callId"]]
        assert api.get(f"/webhooks/{hook['webhookId']}").json()["status"] == "normal"
        assert api.delete(f"/webhooks/{hook['webhookId']}").status_code == 204


async def test_webhook_retries_until_the_receiver_comes_back(platform_server: RunningServer, receiver: Receiver) -> None:
    with client(platform_server) as api:
        hook = api.post("/webhooks", json={"url": receiver.url, "events": ["call.started"], "secrets": ["retry-secret"]}).json()
        call = api.post("/calls", json={"systemPrompt": "x"}).json()

        def failures() -> list[dict[str, str]]:
            return api.get(f"/webhooks/{hook['webhookId']}").json()["recentFailures"]  # type: ignore[no-any-return]

        await wait_until(lambda: len(failures()) >= 3)  # attempts at about 0, 0.5 and 1.5 s, all refused
        down = api.get(f"/webhooks/{hook['webhookId']}").json()
        assert down["status"] == "unhealthy" and down["lastStatusChange"]
        assert all("ConnectError" in f["failure"] for f in down["recentFailures"])
        assert receiver.seen == []
        receiver.start()
        await receiver.wait_for(lambda _: bool(receiver.of(call["callId"])), timeout=30)
        [delivery] = receiver.of(call["callId"])
        delivery.verify("retry-secret")
        assert delivery.payload["event"] == "call.started"
        await wait_until(lambda: api.get(f"/webhooks/{hook['webhookId']}").json()["status"] == "normal", timeout=10)
        assert api.delete(f"/webhooks/{hook['webhookId']}").status_code == 204


async def test_no_delivery_is_lost_across_a_server_crash(server_factory: Any, receiver: Receiver) -> None:
    first: RunningServer = server_factory(extra_env=ENV)
    with client(first) as api:
        hook = api.post("/webhooks", json={"url": receiver.url, "events": ["call.started"]}).json()
        secret = hook["secrets"][0]  # generated by the server
        call = api.post("/calls", json={}).json()
        await wait_until(lambda: len(api.get(f"/webhooks/{hook['webhookId']}").json()["recentFailures"]) >= 1)
    first.stop(kill=True)  # a crash, with the delivery still pending in the database
    assert receiver.seen == []
    receiver.start()
    second: RunningServer = server_factory(extra_env=ENV, data_dir=first.data_dir)
    await receiver.wait_for(lambda _: bool(receiver.of(call["callId"])), timeout=30)
    [delivery] = receiver.of(call["callId"])
    delivery.verify(secret)
    assert delivery.payload == {"event": "call.started", "call": delivery.payload["call"]}
    with client(second) as api:
        assert api.get(f"/calls/{call['callId']}").json()["callId"] == call["callId"]
        await wait_until(lambda: api.get(f"/webhooks/{hook['webhookId']}").json()["status"] == "normal", timeout=10)
    second.stop()
