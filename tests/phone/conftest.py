"""Phone-call tests: the app in process (create_app over httpx.ASGITransport) and fake carrier REST APIs on 127.0.0.1.

One `ToolServer` plays Twilio, Telnyx and Plivo at once (their paths do not overlap);
the server's carrier base URLs (VOXCALL_*_API_URL) point at it, so every request voxcall
makes to a carrier is recorded there with its method, path, headers and body.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.platform.conftest import Receiver
from tests.toolserver import Seen, ToolServer
from voxcall.config import Settings
from voxcall.providers.fake import ScriptedLLM
from voxcall.server.app import create_app
from voxcall.server.platform import Platform
from voxcall.server.services import Services
from voxcall.server.tokens import JoinTokens
from voxcall.store import open_store
from voxcall.store.recordings import RecordingStore

TWILIO = {"accountSid": "AC0123456789abcdef", "authToken": "twilio-auth-token-0123456789abcdef"}
PLIVO = {"authId": "MAXXXXXXXXXXXXXXXXXX", "authToken": "plivo-auth-token-0123456789"}
TELNYX_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
TELNYX_PUBLIC = base64.b64encode(TELNYX_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
TELNYX = {"accountSid": "f5586561-8ff0-4291-a51b-c7dfe4139ff9", "apiKey": "KEY0123456789ABCDEF_secret",
          "publicKey": TELNYX_PUBLIC, "applicationSid": "1234567890"}
CONFIGS = {"twilio": TWILIO, "telnyx": TELNYX, "plivo": PLIVO}


def form(seen: Seen) -> dict[str, list[str]]:
    """A recorded request's form body, every value as a list (fields may repeat)."""
    return parse_qs(seen.body.decode(), keep_blank_values=True)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def answer_json(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


@dataclass
class Api:
    svc: Services
    client: httpx.AsyncClient
    keys: dict[str, str]
    carrier: ToolServer
    webhooks: Receiver

    async def call(self, method: str, path: str, who: str = "a", **kw: Any) -> httpx.Response:
        headers = {"X-API-Key": self.keys[who], **kw.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kw)

    async def configure(self, carrier: str, who: str = "a", **fields: Any) -> dict[str, Any]:
        r = await self.call("POST", f"/api/telephony_configs/{carrier}", who, json={**CONFIGS[carrier], **fields})
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def requests(self, path: str) -> list[Seen]:
        return [s for s in self.carrier.seen if s.path == path]

    async def events(self, call_id: str) -> list[dict[str, Any]]:
        r = await self.call("GET", f"/api/calls/{call_id}/events", params={"minimum_severity": "debug"})
        assert r.status_code == 200, r.text
        return r.json()["results"]  # type: ignore[no-any-return]


@pytest.fixture
def carriers() -> Iterator[ToolServer]:
    with ToolServer() as server:
        yield server


async def open_services(tmp: Path, carriers: ToolServer, receiver: Receiver, **settings: Any) -> Services:
    """Real services (SQLite in `tmp`) with the carrier APIs at `carriers` and webhooks sent to `receiver`."""
    settings = Settings(**{"data_dir": tmp, "speech": False, "twilio_api_url": carriers.url, "telnyx_api_url": carriers.url,
                           "plivo_api_url": carriers.url, "carrier_timeout": 5, **settings})
    store = await open_store(settings.resolved_database_url())
    platform = Platform.open(store, settings, client=httpx.AsyncClient(transport=httpx.MockTransport(receiver.handle)))
    return Services(settings=settings, store=store, llm=ScriptedLLM([]), tokens=JoinTokens("t" * 32),
                    recordings=RecordingStore(tmp / "recordings"), platform=platform)


@contextlib.asynccontextmanager
async def serving(svc: Services, carriers: ToolServer, receiver: Receiver) -> AsyncIterator[Api]:
    keys = {who: (await svc.store.create_api_key(account_id=f"acct-{who}"))[0] for who in ("a", "b")}
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services=svc)), base_url="http://test")
    try:
        yield Api(svc, client, keys, carriers, receiver)
    finally:
        await client.aclose()
        await svc.close()


@pytest.fixture
async def api(tmp_path: Path, carriers: ToolServer) -> AsyncIterator[Api]:
    receiver = Receiver()
    async with serving(await open_services(tmp_path, carriers, receiver), carriers, receiver) as api:
        yield api
