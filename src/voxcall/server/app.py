"""The FastAPI application: routers, error mapping, and the services built at start-up."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from voxcall import __version__
from voxcall.config import Settings
from voxcall.errors import ApiError, RateLimited
from voxcall.protocol.rest import Voice
from voxcall.engine.spec import Speech
from voxcall.providers.base import LLM, ChatMessage
from voxcall.server.docs import add_docs
from voxcall.server import realtime, rest, telephony, tools, web
from voxcall.server.limits import retry_after_header
from voxcall.server.services import Services
from voxcall.server.sweep import StaleCallSweep
from voxcall.server.tokens import JoinTokens
from voxcall.store import open_store
from voxcall.store.recordings import RecordingStore

__all__ = ["build_services", "create_app", "load_llm", "load_speech", "warm_up"]

logger = logging.getLogger(__name__)


def load_llm(settings: Settings, progress: Any = None) -> LLM:
    """The configured LLM: an embedded GGUF model or an OpenAI-compatible server."""
    if settings.llm == "openai":
        from voxcall.providers.openai import OpenAILLM

        if not settings.llm_url:
            raise ValueError("--llm openai needs --llm-url (VOXCALL_LLM_URL), e.g. http://127.0.0.1:8001/v1")
        return OpenAILLM(base_url=settings.llm_url, model=settings.llm_model, api_key=settings.llm_api_key)
    from voxcall.providers.embedded import load_llm as load_embedded

    return load_embedded(settings.llm, cache_dir=settings.data_dir / "models", n_threads=settings.llm_threads, progress=progress)


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
    from voxcall.providers.speech import SileroVADPool, load_speech as load_embedded

    if stt is None or tts is None:
        embedded = load_embedded(settings.data_dir / "models", progress)
        stt, tts = stt or embedded.stt, tts or embedded.tts
        return Speech(vad=embedded.vad, stt=stt, tts=tts)
    return Speech(vad=SileroVADPool(), stt=stt, tts=tts)


def voices_of(speech: Speech | None) -> list[Voice]:
    """The installed voices, as `Voice` resources."""
    if speech is None or speech.tts is None:
        return []
    provider = getattr(speech.tts, "name", "tts")
    return [Voice(voice_id=v, name=v, description=f"{provider} voice {v}", primary_language="en-US", language_label="English (US)",
                  provider=provider, definition={"generic": {"provider": provider, "voice": v}}) for v in speech.tts.voices()]


async def warm_up(llm: LLM, speech: Speech | None) -> None:
    """Run each model once, one after the other, so the first call does not pay for cold caches."""
    greeting = [ChatMessage("system", "You are a helpful assistant."), ChatMessage("user", "Hello!")]
    async for _ in llm.stream(greeting, max_tokens=4):
        pass
    for part in (speech.stt if speech else None, speech.tts if speech else None):
        method = getattr(part, "warm_up", None)
        if method is not None:
            await method()


async def build_services(settings: Settings, llm: LLM | None = None, speech: Speech | None | bool = True) -> Services:
    """Open the store and load the models (unless given); used by the lifespan and by tests.

    `speech=True` loads the configured speech back ends, `None`/`False` runs text-only.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub at run time
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await open_store(settings.resolved_database_url())
    if settings.resolved_database_url().startswith("sqlite"):
        await store.mark_stale_calls_ended()  # one process owns a SQLite file: calls left live by a crash are over
    secret = await store.get_or_create_secret("join_tokens")
    if speech is True:
        speech = load_speech(settings)
    speech = speech or None
    return Services(settings=settings, store=store, llm=llm or load_llm(settings), tokens=JoinTokens(secret),
                    recordings=RecordingStore(settings.data_dir / "recordings"), speech=speech, voices=voices_of(speech))


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    llm: LLM | None = None,
    speech: Speech | None | bool = True,
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
        try:
            yield
        finally:
            await sweep.stop()
            if owned:
                await app.state.services.close()

    app = FastAPI(title="voxcall", version=__version__, lifespan=lifespan, openapi_url="/api/openapi.json", docs_url=None, redoc_url=None)
    add_docs(app, openapi_url="/api/openapi.json")
    if services is not None:
        app.state.services = services
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["X-API-Key", "X-Unsafe-API-Key", "Content-Type"], expose_headers=["Retry-After"])

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            headers = {"Retry-After": retry_after_header(exc.retry_after)}
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    app.include_router(rest.router)
    app.include_router(tools.router)
    app.include_router(realtime.router)
    app.include_router(telephony.router)
    app.include_router(web.router)
    return app
