"""Whether the remote model servers of a call plane answer, for /readyz.

With `--models-url` (or `VOXCALL_LLM_URL`, `VOXCALL_STT_URL`, `VOXCALL_TTS_URL`) a
call plane holds no LLM, Whisper or Piper of its own: while its model host is
down it would accept joins it cannot serve. So `/readyz` asks each distinct base
URL `GET {base}/models`, bounded by `timeout`. Any HTTP answer below 500 counts as
reachable (a speech-only server may have no `/models` route, a keyed one may answer
401 to a request without its key); a refused connection, a timeout or a 5xx (llama.cpp's
server answers 503 while it loads its model) does not.

A verdict is kept for `ttl` seconds, so a load balancer that polls every node every
second costs the model host one request per node per `ttl`; concurrent readiness
checks of one URL share one request. With embedded models there is nothing to ask.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

import httpx

from voxcall.config import Settings

__all__ = ["CHECK_TIMEOUT", "CHECK_TTL", "ModelHosts", "remote_models"]

CHECK_TIMEOUT = 1.0
"""Seconds a model host has to answer a readiness probe."""
CHECK_TTL = 2.0
"""Seconds a probe's verdict is reused."""


def remote_models(settings: Settings) -> dict[str, str]:
    """The models these settings reach over HTTP, by service (`llm`, `stt`, `tts`), with their base URLs."""
    remote: dict[str, str] = {}
    if settings.llm == "openai" and settings.llm_url:
        remote["llm"] = settings.llm_url
    if settings.speech:
        for service, url in (("stt", settings.stt_url), ("tts", settings.tts_url)):
            if url:
                remote[service] = url
    return remote


class ModelHosts:
    """Probes the base URLs of the remote models; `check()` is "ok" or names what does not answer."""

    def __init__(self, services: Mapping[str, str], *, timeout: float = CHECK_TIMEOUT, ttl: float = CHECK_TTL,
                 client: httpx.AsyncClient | None = None) -> None:
        self._urls: dict[str, list[str]] = {}
        for service, url in services.items():
            self._urls.setdefault(url.rstrip("/"), []).append(service)
        self._timeout = timeout
        self._ttl = ttl
        self._client = client
        self._owned = client is None
        self._verdicts: dict[str, tuple[float, str | None]] = {}  # url -> (expiry on the loop's clock, problem)
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout: float = CHECK_TIMEOUT, ttl: float = CHECK_TTL) -> ModelHosts:
        return cls(remote_models(settings), timeout=timeout, ttl=ttl)

    @property
    def services(self) -> dict[str, list[str]]:
        """The services reached at each base URL."""
        return {url: list(names) for url, names in self._urls.items()}

    async def check(self) -> str:
        """"ok", or each unreachable URL with the services behind it and why. Never raises; cancellation-safe."""
        urls = list(self._urls)
        problems = await asyncio.gather(*(self._verdict(url) for url in urls))
        failed = [f"{_names(self._urls[url])} at {_shown(url)}: {problem}"
                  for url, problem in zip(urls, problems, strict=True) if problem]
        return "; ".join(failed) if failed else "ok"

    async def aclose(self) -> None:
        if self._client is not None and self._owned:
            client, self._client = self._client, None
            await client.aclose()

    async def _verdict(self, url: str) -> str | None:
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:  # the checks waiting here reuse the verdict of the one ahead of them
            loop = asyncio.get_running_loop()
            cached = self._verdicts.get(url)
            if cached is not None and loop.time() < cached[0]:
                return cached[1]
            problem = await self._probe(url)
            self._verdicts[url] = (loop.time() + self._ttl, problem)
            return problem

    async def _probe(self, url: str) -> str | None:
        if self._client is None:
            self._client = httpx.AsyncClient()
        try:
            response = await self._client.get(f"{url}/models", timeout=self._timeout)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return f"unreachable ({type(exc).__name__})"
        if response.status_code >= 500:
            return f"answered HTTP {response.status_code}"
        return None


def _names(services: list[str]) -> str:
    return services[0] if len(services) == 1 else f"{', '.join(services[:-1])} and {services[-1]}"


def _shown(url: str) -> str:
    """The URL without any user name or password in it."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
