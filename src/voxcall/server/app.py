"""The FastAPI application: routers, error mapping, and the services built at start-up."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from voxcall import __version__
from voxcall.config import Settings, metrics_dir
from voxcall.engine.spec import Speech
from voxcall.errors import ApiError, RateLimited, StorageUnavailable
from voxcall.protocol.hygiene import BodyLimits
from voxcall.providers.base import LLM, ChatMessage
from voxcall.server import (
    accounts,
    agents,
    deleted_calls,
    ops,
    outgoing,
    realtime,
    rest,
    stages,
    telephony,
    telephony_configs,
    telephony_xml,
    tools,
    voices,
    web,
    webhooks,
)
from voxcall.server.docs import add_docs
from voxcall.server.guard import BodyGuard, StrictJSONResponse
from voxcall.server.limits import Limits, retry_after_header
from voxcall.server.metrics import CallMetrics
from voxcall.server.services import Services
from voxcall.server.sweep import StaleCallSweep
from voxcall.server.tokens import JoinTokens
from voxcall.server.voices import voices_of
from voxcall.store import open_store
from voxcall.store.recordings import RecordingStore

__all__ = ["body_limits", "build_services", "create_app", "join_cluster", "load_llm", "load_speech", "warm_up"]

logger = logging.getLogger(__name__)


def load_llm(settings: Settings, progress: Any = None) -> LLM:
    """The configured LLM: an embedded GGUF model or an OpenAI-compatible server."""
    if settings.llm == "openai":
        from voxcall.providers.openai import OpenAILLM

        if not settings.llm_url:
            raise ValueError("--llm openai needs --llm-url (VOXCALL_LLM_URL), e.g. http://127.0.0.1:8001/v1")
        return OpenAILLM(base_url=settings.llm_url, model=settings.llm_model, api_key=settings.llm_api_key)
    from voxcall.providers.embedded import load_llm as load_embedded

    return load_embedded(settings.llm, cache_dir=settings.data_dir / "models", n_threads=settings.llm_threads,
                         n_threads_batch=settings.llm_batch_threads, n_slots=settings.llm_slots, progress=progress)


def load_speech(settings: Settings, progress: Any = None) -> Speech | None:
    """The speech back ends: embedded Silero + Whisper + Piper, with remote STT/TTS where URLs are set."""
    if not settings.speech:
        return None
    stt: Any = None
    tts: Any = None
    if settings.stt_url or settings.tts_url:
        from voxcall.providers.openai_speech import OpenAISTT, OpenAITTS

        if settings.stt_url:
            stt = OpenAISTT(base_url=settings.stt_url, model=settings.stt_model, api_key=settings.speech_api_key)
        if settings.tts_url:
            tts = OpenAITTS(base_url=settings.tts_url, model=settings.tts_model, voice=settings.tts_voice,
                            api_key=settings.speech_api_key)
    from voxcall.providers.speech import load_speech as load_embedded
    from voxcall.providers.vad_batch import SileroBatch

    if stt is None or tts is None:
        embedded = load_embedded(settings.data_dir / "models", progress, whisper_threads=settings.whisper_threads)
        stt, tts = stt or embedded.stt, tts or embedded.tts
        return Speech(vad=embedded.vad, stt=stt, tts=tts)
    return Speech(vad=SileroBatch(), stt=stt, tts=tts)


async def warm_up(llm: LLM, speech: Speech | None) -> None:
    """Run each model once, one after the other, so the first call does not pay for cold caches."""
    greeting = [ChatMessage("system", "You are a helpful assistant."), ChatMessage("user", "Hello!")]
    async for _ in llm.stream(greeting, max_tokens=4):
        pass
    for part in (speech.stt if speech else None, speech.tts if speech else None):
        method = getattr(part, "warm_up", None)
        if method is not None:
            await method()


async def build_services(settings: Settings, llm: LLM | None = None, speech: Speech | bool | None = True) -> Services:
    """Open the store and load the models (unless given); used by the lifespan and by tests.

    `speech=True` loads the configured speech back ends, `None`/`False` runs text-only.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub at run time
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await open_store(settings.resolved_database_url(), timeout=settings.database_timeout_seconds,
                             command_timeout=settings.database_command_timeout_seconds)
    await store.start_serving()  # the only server on this database: calls left live by a crash are over
    secret = await store.get_or_create_secret("join_tokens")
    if speech is True:
        speech = load_speech(settings)
    speech = speech or None
    services = Services(settings=settings, store=store, llm=llm or load_llm(settings), tokens=JoinTokens(secret),
                        recordings=RecordingStore(settings.data_dir / "recordings"), speech=speech, voices=voices_of(speech),
                        metrics=CallMetrics(metrics_dir()))  # one worker of several: /metrics sums them all
    if settings.redis_url:
        await join_cluster(services)
    services.platform.start()  # the webhook sender: also sends what an earlier process left pending
    return services


async def join_cluster(services: Services) -> None:
    """Share live calls and limits with the other nodes on `VOXCALL_REDIS_URL` (server/redis_cluster.py)."""
    from voxcall.server.redis_cluster import RedisCluster, connect

    settings = services.settings
    assert settings.redis_url
    redis = connect(settings.redis_url, timeout=settings.redis_timeout_seconds)
    try:
        await redis.ping()
    except Exception as exc:
        await redis.aclose()
        raise RuntimeError(f"cannot reach Redis at VOXCALL_REDIS_URL: {exc}") from exc
    cluster = RedisCluster(services.live, redis, node_id=settings.node_id, heartbeat=settings.node_heartbeat_seconds)
    await cluster.start()
    services.cluster = services.directory = cluster
    services.limits = Limits.from_settings(settings, redis=redis)


def body_limits(settings: Settings) -> BodyLimits:
    """The request limits of the settings (README "Configuration")."""
    return BodyLimits(
        max_request_bytes=settings.max_request_bytes, max_data_message_bytes=settings.max_data_message_bytes,
        max_depth=settings.max_json_depth, max_system_prompt_chars=settings.max_system_prompt_chars,
        max_initial_messages=settings.max_initial_messages, max_initial_messages_bytes=settings.max_initial_messages_bytes,
        max_metadata_bytes=settings.max_metadata_bytes,
    )


def settle_heap() -> None:
    """Leave what start-up made (libraries, models, the app) out of every later garbage collection.

    The cyclic collector's oldest generation walks every tracked object: with the libraries and models
    loaded, one such pass took 120-320 ms on the 2-core test machine, a stall for every call of the
    process (benchmarks/load.py saw them as ping p99 spikes and audio underruns). `gc.freeze()` moves
    what exists now to a permanent generation; what the calls create is still collected.
    """
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    llm: LLM | None = None,
    speech: Speech | bool | None = True,
) -> FastAPI:
    """Build the app. With `services` given, the lifespan builds nothing (tests)."""
    settings = settings or (services.settings if services else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = services or await build_services(settings, llm, speech)
        if owned:
            await warm_up(app.state.services.llm, app.state.services.speech)
        sweep = StaleCallSweep(app.state.services, interval=settings.stale_call_seconds)
        sweep.start()
        if owned:
            settle_heap()
        try:
            yield
        finally:
            await sweep.stop()
            if owned:
                await app.state.services.close()

    app = FastAPI(title="voxcall", version=__version__, lifespan=lifespan, openapi_url="/api/openapi.json", docs_url=None, redoc_url=None,
                  default_response_class=StrictJSONResponse)
    add_docs(app, openapi_url="/api/openapi.json")
    if services is not None:
        app.state.services = services
    app.add_middleware(BodyGuard, limits=body_limits(settings))  # inside CORS, so refusals carry CORS headers
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["X-API-Key", "X-Unsafe-API-Key", "Content-Type"], expose_headers=["Retry-After"])

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = None
        if isinstance(exc, (RateLimited, StorageUnavailable)) and exc.retry_after is not None:
            headers = {"Retry-After": retry_after_header(exc.retry_after)}
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    app.include_router(rest.router)
    app.include_router(stages.router)
    app.include_router(voices.router)
    app.include_router(tools.router)
    for platform_router in (agents.router, webhooks.router, accounts.router, deleted_calls.router):
        app.include_router(platform_router)
    app.include_router(telephony_configs.router)
    app.include_router(outgoing.router)
    app.include_router(telephony_xml.router)
    app.include_router(realtime.router)
    app.include_router(ops.router)
    app.include_router(telephony.router)
    app.include_router(web.router)
    return app
