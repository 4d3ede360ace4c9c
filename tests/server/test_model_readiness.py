"""/readyz with remote models: a real loopback model host is stopped and started again under a running server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.server.inprocess import build_services, serving
from voxcall.config import Settings
from voxcall.providers.fake import ScriptedLLM
from voxcall.server.model_hosts import ModelHosts, remote_models


class ModelHost:
    """A loopback HTTP server answering `GET /v1/models` with `status`, on a fixed port it can give up and take again."""

    def __init__(self, port: int, status: int = 200) -> None:
        self.port = port
        self.status = status
        self.requests = 0
        self.hang = False
        self._server: asyncio.Server | None = None
        self._released = asyncio.Event()
        self._answering: set[asyncio.Task[object]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        self._released.clear()
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """Stop listening and let every answer in progress finish."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        self._released.set()
        async with asyncio.timeout(5):
            while self._answering:
                await asyncio.sleep(0.01)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._answering.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            if self.hang:
                await self._released.wait()
            status, body = self.status, b'{"object":"list","data":[{"id":"smollm2-135m","object":"model"}]}'
            if not head.startswith(b"GET /v1/models "):
                status, body = 404, b"{}"
            writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n%s" % (status, len(body), body))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self._answering.discard(task)


@contextlib.asynccontextmanager
async def model_host(status: int = 200) -> AsyncIterator[ModelHost]:
    host = ModelHost(free_port(), status)
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


async def readyz(url: str) -> tuple[int, dict[str, str]]:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(f"{url}/readyz")
    return r.status_code, r.json()["checks"]


def test_only_remote_models_are_probed(tmp_path: Path) -> None:
    assert remote_models(Settings(data_dir=tmp_path)) == {}  # embedded models: nothing to ask
    one = "http://127.0.0.1:9/v1"
    assert remote_models(Settings(data_dir=tmp_path, models_url=one)) == {"llm": one, "stt": one, "tts": one}
    assert remote_models(Settings(data_dir=tmp_path, models_url=one, speech=False)) == {"llm": one}
    split = Settings(data_dir=tmp_path, llm="smollm2-135m", stt_url=one, tts_url="http://127.0.0.1:10/v1/")
    assert ModelHosts.from_settings(split).services == {one: ["stt"], "http://127.0.0.1:10/v1": ["tts"]}


async def test_readiness_follows_the_model_host_down_and_up_again(tmp_path: Path) -> None:
    async with model_host() as host:
        svc = await build_services(tmp_path, ScriptedLLM([]), models_url=host.url)
        svc.model_hosts = ModelHosts.from_settings(svc.settings, ttl=0.0)
        async with serving(svc) as srv:
            status, checks = await readyz(srv.url)
            assert status == 200 and checks["models"] == "ok" and host.requests == 1  # one URL, asked once
            await host.stop()
            status, checks = await readyz(srv.url)
            assert status == 503
            assert checks["models"] == f"llm, stt and tts at {host.url}: unreachable (ConnectError)"
            assert checks["database"] == "ok"
            await host.start()
            status, checks = await readyz(srv.url)
            assert status == 200 and checks["models"] == "ok"


async def test_a_verdict_is_reused_for_its_ttl_and_a_5xx_or_a_silent_host_is_not_ready(tmp_path: Path) -> None:
    async with model_host() as host:
        hosts = ModelHosts({"llm": host.url}, ttl=60.0)
        try:
            assert [await hosts.check() for _ in range(3)] == ["ok"] * 3
            await host.stop()
            assert await hosts.check() == "ok" and host.requests == 1  # cached: the host was asked once
        finally:
            await hosts.aclose()
    async with model_host(status=503) as loading:
        hosts = ModelHosts({"llm": loading.url, "tts": loading.url})
        try:
            assert await hosts.check() == f"llm and tts at {loading.url}: answered HTTP 503"
        finally:
            await hosts.aclose()
    async with model_host() as silent:
        silent.hang = True
        hosts = ModelHosts({"stt": silent.url}, timeout=0.3)
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await hosts.check() == f"stt at {silent.url}: unreachable (ReadTimeout)"
            assert loop.time() - started < 2.0  # bounded by the probe's timeout
        finally:
            await hosts.aclose()


async def test_concurrent_checks_share_one_probe(tmp_path: Path) -> None:
    async with model_host() as host:
        hosts = ModelHosts({"llm": host.url, "stt": "http://user:secret@127.0.0.1:9/v1"})
        try:
            verdicts = await asyncio.gather(*(hosts.check() for _ in range(5)))
            assert host.requests == 1
            assert set(verdicts) == {"stt at http://127.0.0.1:9/v1: unreachable (ConnectError)"}  # no password shown
        finally:
            await hosts.aclose()
