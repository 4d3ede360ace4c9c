"""In-process platform tests: the app on `create_app(services=...)` over httpx.ASGITransport.

The services are real (SQLite in a temp folder, the real store and outbox);
only the webhook sender's HTTP client is an `httpx.MockTransport` receiver
that records each request and answers with the status the test scripts, so
delivery, signing and retries are checked without sockets. The real-socket
receiver tests live in tests/server/test_platform_server.py.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from voxcall.config import Settings
from voxcall.providers.fake import ScriptedLLM
from voxcall.server.app import create_app
from voxcall.server.platform import Platform
from voxcall.server.services import Services
from voxcall.server.tokens import JoinTokens
from voxcall.store import open_store
from voxcall.store.recordings import RecordingStore


@dataclass
class Receiver:
    """A scripted webhook receiver: `statuses` are answered in order, then `default`."""

    statuses: list[int] = field(default_factory=list)
    default: int = 204
    requests: list[httpx.Request] = field(default_factory=list)
    down: bool = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        self.requests.append(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else self.default)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]

    def events(self) -> list[tuple[str, str]]:
        """(url path, event) of each request received."""
        return [(r.url.path, json.loads(r.content)["event"]) for r in self.requests]


@dataclass
class Api:
    """The app, a client with the default account's key, and what the test needs to look inside."""

    client: httpx.AsyncClient
    svc: Services
    key: str
    receiver: Receiver
    transport: httpx.ASGITransport

    async def other_account(self) -> httpx.AsyncClient:
        key, _ = await self.svc.store.create_api_key("other", account_id="other-account")
        return self.as_key(key)

    def as_key(self, key: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport, base_url=self.client.base_url, headers={"X-API-Key": key})

    async def deliver(self) -> int:
        """Send everything due now, waiting for the answers."""
        return await self.svc.platform.deliveries.run_once()


def settings_for(tmp: Path, **overrides: Any) -> Settings:
    return Settings(**{"data_dir": tmp, "speech": False, "webhook_retry_base": 0.05, "webhook_timeout": 2, **overrides})


async def open_services(tmp: Path, receiver: Receiver, **overrides: Any) -> Services:
    settings = settings_for(tmp, **overrides)
    store = await open_store(settings.resolved_database_url())
    client = httpx.AsyncClient(transport=httpx.MockTransport(receiver.handle))
    return Services(
        settings=settings, store=store, llm=ScriptedLLM([]), tokens=JoinTokens("t" * 32),
        recordings=RecordingStore(tmp / "recordings"), platform=Platform.open(store, settings, client=client),
    )


@contextlib.asynccontextmanager
async def serving(svc: Services, receiver: Receiver) -> AsyncIterator[Api]:
    key, _ = await svc.store.create_api_key("tests")
    transport = httpx.ASGITransport(app=create_app(services=svc))
    async with httpx.AsyncClient(transport=transport, base_url="http://voxcall.test/api", headers={"X-API-Key": key}) as client:
        yield Api(client, svc, key, receiver, transport)


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def api(tmp_path: Path, receiver: Receiver) -> AsyncIterator[Api]:
    svc = await open_services(tmp_path, receiver)
    try:
        async with serving(svc, receiver) as api:
            yield api
    finally:
        await svc.close()
