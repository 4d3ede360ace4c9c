"""An in-process server on a loopback port around injected `Services` (scripted providers), for host tests.

Real sockets, real uvicorn, real SQLite; only the models are fakes, so that a
test can make a speech factory fail or a reply last as long as it needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tests.conftest import free_port
from voxcall.config import Settings
from voxcall.engine.spec import Speech
from voxcall.providers.base import LLM
from voxcall.server.app import create_app
from voxcall.server.services import Services
from voxcall.server.tokens import JoinTokens
from voxcall.server.ws_protocol import BufferedWebSocketProtocol
from voxcall.store import open_store
from voxcall.store.recordings import RecordingStore


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # leave pytest's signal handlers alone
        yield


@dataclass
class InProcess:
    url: str
    key: str
    svc: Services

    @property
    def api(self) -> str:
        return f"{self.url}/api"

    async def create_call(self, body: dict[str, Any]) -> dict[str, Any]:
        async with httpx.AsyncClient(headers={"X-API-Key": self.key}, timeout=10) as client:
            r = await client.post(f"{self.api}/calls", json=body)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    async def get_call(self, call_id: str) -> dict[str, Any]:
        async with httpx.AsyncClient(headers={"X-API-Key": self.key}, timeout=10) as client:
            r = await client.get(f"{self.api}/calls/{call_id}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


async def build_services(tmp: Path, llm: LLM, speech: Speech | None = None, **settings: Any) -> Services:
    store = await open_store(f"sqlite+aiosqlite:///{tmp / 'voxcall.db'}")
    return Services(settings=Settings(data_dir=tmp, **settings), store=store, llm=llm,
                    tokens=JoinTokens(secrets.token_urlsafe(32)), recordings=RecordingStore(tmp / "recordings"), speech=speech)


@contextlib.asynccontextmanager
async def serving(svc: Services) -> AsyncIterator[InProcess]:
    """Run `create_app(services=svc)` on 127.0.0.1 until the block ends; closes the services after."""
    key, _ = await svc.store.create_api_key("tests")
    port = free_port()
    config = uvicorn.Config(create_app(services=svc), host="127.0.0.1", port=port, log_level="warning",
                            ws=BufferedWebSocketProtocol, lifespan="on")  # as `voxcall serve`
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        yield InProcess(f"http://127.0.0.1:{port}", key, svc)
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            async with asyncio.timeout(20):
                await task
        await svc.close()
