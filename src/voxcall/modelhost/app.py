"""The model host's FastAPI app: OpenAI-compatible routes over models loaded once, by `load_models`.

Routes: `GET /v1/models`, `POST /v1/chat/completions` (chat.py), `POST /v1/audio/transcriptions`
and `POST /v1/audio/speech` (speech.py), and `GET /healthz` for load balancers. With an
API key, every `/v1` route wants `Authorization: Bearer <key>`. The `model` field of a
request is not checked: each kind of model has one here, as with llama.cpp's server.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)

from voxcall import __version__
from voxcall.errors import ProviderError
from voxcall.modelhost.chat import ChatRequest, completion, completion_chunks
from voxcall.modelhost.errors import HostError, error_body
from voxcall.modelhost.speech import (
    SpeechRequest,
    check_transcription,
    speech_stream,
    transcription_body,
)
from voxcall.providers.base import ChatMessage
from voxcall.providers.embedded import LlamaLLM
from voxcall.providers.models import LLMName, Progress
from voxcall.providers.speech import WhisperSTT
from voxcall.providers.speech_piper import PiperTTS

__all__ = ["MAX_UPLOAD_BYTES", "Models", "create_model_app", "load_models"]

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 25 * 1024 * 1024
"""The largest audio file `/v1/audio/transcriptions` takes (OpenAI's limit)."""
_CREATED = 1735689600  # a fixed `created` for /v1/models: these models are not created at run time


@dataclass(slots=True)
class Models:
    """What the host serves; a missing model makes its route answer 404."""

    llm: LlamaLLM | None = None
    stt: WhisperSTT | None = None
    tts: PiperTTS | None = None

    def ids(self) -> list[str]:
        """The model ids `/v1/models` lists: the LLM's name, "whisper-base", "piper"."""
        return [model.name for model in (self.llm, self.stt, self.tts) if model is not None]

    async def warm_up(self) -> None:
        """Run each model once, one after the other, so the first request is not the slow one."""
        if self.llm is not None:
            greeting = [ChatMessage("system", "You are a helpful assistant."), ChatMessage("user", "Hello!")]
            async for _ in self.llm.stream(greeting, max_tokens=4):
                pass
        if self.stt is not None:
            await self.stt.warm_up()
        if self.tts is not None:
            await self.tts.warm_up()

    def close(self) -> None:
        """Stop the worker threads and free the models. Blocking."""
        for model in (self.llm, self.stt, self.tts):
            if model is not None:
                model.close()


def load_models(
    *,
    cache_dir: Path,
    llm: LLMName | None,
    stt: bool = True,
    tts: bool = True,
    llm_threads: int = 0,
    llm_batch_threads: int | None = None,
    llm_slots: int = 4,
    whisper_threads: int = 1,
    progress: Progress | None = None,
) -> Models:
    """Verify and load the embedded models from their local packages (nothing downloads). Blocking.

    `llm_threads` 0 is auto, as in `voxcall serve` (`providers/cpu.py`).

    Raises:
        ProviderError: a runtime or weight package is missing, or Piper has no voice.
        ModelIntegrityError: a model file does not match its pinned SHA-256.
    """
    from voxcall.providers.embedded import load_llm
    from voxcall.providers.models import piper_voice_paths, whisper_model_dir

    models = Models()
    if llm is not None:
        models.llm = load_llm(llm, cache_dir=cache_dir, n_threads=llm_threads, n_threads_batch=llm_batch_threads,
                              n_slots=llm_slots, progress=progress)
    if stt:
        models.stt = WhisperSTT(whisper_model_dir(cache_dir, progress), cpu_threads=whisper_threads)
    if tts:
        voices = piper_voice_paths(cache_dir, progress)
        if not voices:
            raise ProviderError("no Piper voice package is installed (pip install 'voxcall[piper]'), or pass --no-tts")
        models.tts = PiperTTS(voices)
    return models


def create_model_app(models: Models, *, api_key: str | None = None, max_upload_bytes: int = MAX_UPLOAD_BYTES) -> FastAPI:
    """The app serving `models` (which the caller loads, warms and closes)."""
    app = FastAPI(title="voxcall model host", version=__version__, openapi_url="/v1/openapi.json",
                  docs_url=None, redoc_url=None)
    app.state.models = models
    app.state.max_upload_bytes = max_upload_bytes
    _add_error_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "models": models.ids()}

    app.include_router(router, dependencies=[Depends(_bearer(api_key))])
    return app


def _bearer(api_key: str | None) -> Any:
    async def check(request: Request) -> None:
        if api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
            raise HostError(401, "missing or wrong API key: send Authorization: Bearer <key>")

    return check


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HostError)
    async def host_error(request: Request, exc: HostError) -> JSONResponse:
        return JSONResponse(error_body(exc.status, exc.message, param=exc.param, code=exc.code), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query"))
        message = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
        return JSONResponse(error_body(400, message, param=where or None), status_code=400)

    @app.exception_handler(ProviderError)
    async def provider_error(request: Request, exc: ProviderError) -> JSONResponse:
        logger.warning("model failed: %s", exc)
        status = 503 if exc.retryable else 500
        return JSONResponse(error_body(status, str(exc)), status_code=status)


# ------------------------------------------------------------------ the /v1 routes

router = APIRouter(prefix="/v1")


def _models(request: Request) -> Models:
    models: Models = request.app.state.models
    return models


Host = Annotated[Models, Depends(_models)]


def _need(model: Any, what: str, flag: str) -> Any:
    if model is None:
        raise HostError(404, f"this model host serves no {what} (it was started with {flag})", code="model_not_found")
    return model


@router.get("/models")
async def list_models(models: Host) -> dict[str, Any]:
    data = [{"id": name, "object": "model", "created": _CREATED, "owned_by": "voxcall"} for name in models.ids()]
    return {"object": "list", "data": data}


@router.post("/chat/completions", response_model=None)
async def chat_completions(body: ChatRequest, models: Host) -> Response | dict[str, Any]:
    llm = _need(models.llm, "LLM", "--llm none")
    if body.stream:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(completion_chunks(llm, body), media_type="text/event-stream", headers=headers)
    return await completion(llm, body)


@router.post("/audio/transcriptions", response_model=None)
async def transcriptions(
    request: Request,
    models: Host,
    file: Annotated[UploadFile, File()],
    model: Annotated[str, Form()] = "",
    language: Annotated[str | None, Form()] = None,
    response_format: Annotated[str, Form()] = "json",
) -> Response | dict[str, Any]:
    stt = _need(models.stt, "speech-to-text", "--no-stt")
    check_transcription(response_format, language)
    limit: int = request.app.state.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise HostError(413, f"file is larger than {limit} bytes", param="file")
    text = await transcription_body(stt, data, language=language)
    if response_format == "text":
        return PlainTextResponse(text)
    return {"text": text}


@router.post("/audio/speech")
async def speech(body: SpeechRequest, models: Host) -> StreamingResponse:
    tts = _need(models.tts, "text-to-speech", "--no-tts")
    audio, media_type = speech_stream(tts, body)
    return StreamingResponse(audio, media_type=media_type)
