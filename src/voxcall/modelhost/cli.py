"""`voxcall models serve`: load the embedded models once and serve them on OpenAI-compatible endpoints.

Settings shared with `voxcall serve` come from the same environment (VOXCALL_DATA_DIR,
VOXCALL_LLM, VOXCALL_LLM_THREADS, VOXCALL_LLM_BATCH_THREADS, VOXCALL_WHISPER_THREADS,
VOXCALL_MODELS_API_KEY); the flags override them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_PORT", "add_parser", "cmd_models"]

DEFAULT_PORT = 8001


def add_parser(sub: Any) -> None:
    """Add `models serve` to the `voxcall` subcommands."""
    models = sub.add_parser("models", help="the model host: embedded models on OpenAI-compatible endpoints")
    actions = models.add_subparsers(dest="action", required=True)
    serve = actions.add_parser("serve", help="serve the embedded LLM, Whisper and Piper at /v1 for call-plane processes",
                               description="Load the embedded models once and serve /v1/chat/completions, "
                                           "/v1/audio/transcriptions, /v1/audio/speech and /v1/models. Point call-plane "
                                           "processes at it with `voxcall serve --models-url http://HOST:PORT/v1`.")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    serve.add_argument("--data-dir", type=Path, help="where assembled model files are kept (env VOXCALL_DATA_DIR)")
    serve.add_argument("--llm", choices=["qwen2.5-1.5b", "smollm2-135m", "none"],
                       help="embedded LLM, or none (env VOXCALL_LLM, default qwen2.5-1.5b)")
    serve.add_argument("--no-stt", action="store_true", help="serve no Whisper (/v1/audio/transcriptions answers 404)")
    serve.add_argument("--no-tts", action="store_true", help="serve no Piper (/v1/audio/speech answers 404)")
    serve.add_argument("--api-key", help="require Authorization: Bearer KEY on /v1 (env VOXCALL_MODELS_API_KEY)")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--log-format", choices=["text", "json"], help="log lines as text or JSON (env VOXCALL_LOG_FORMAT)")


def cmd_models(args: argparse.Namespace, progress: Any = None) -> int:
    """Load the models, then serve them until SIGINT/SIGTERM; the models are closed on the way out."""
    import uvicorn

    from voxcall.config import Settings
    from voxcall.modelhost.app import create_model_app, load_models
    from voxcall.server.logs import configure_logging

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing downloads: every model comes from a local package
    overrides = {k: v for k, v in {"data_dir": args.data_dir, "log_format": args.log_format}.items() if v is not None}
    settings = Settings(**overrides, models_url=None)  # an environment shared with call planes must not make llm=openai
    configure_logging(args.log_level, settings.log_format)
    llm = args.llm or settings.llm
    if llm == "openai":
        raise ValueError("the model host serves an embedded LLM: --llm qwen2.5-1.5b, smollm2-135m or none")
    print(f"Loading models (LLM: {llm}, Whisper: {not args.no_stt}, Piper: {not args.no_tts})...", file=sys.stderr, flush=True)
    models = load_models(cache_dir=settings.data_dir / "models", llm=None if llm == "none" else llm,
                         stt=not args.no_stt, tts=not args.no_tts, llm_threads=settings.llm_threads,
                         llm_batch_threads=settings.llm_batch_threads, llm_slots=settings.llm_slots,
                         whisper_threads=settings.whisper_threads,
                         progress=progress)
    try:
        app = create_model_app(models, api_key=args.api_key or settings.models_api_key)
        server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level.lower()))
        asyncio.run(_serve(server, models, f"http://{args.host}:{args.port}/v1"))
    finally:
        models.close()
    return 0


async def _serve(server: Any, models: Any, base: str) -> None:
    await models.warm_up()
    announce = asyncio.create_task(_announce_when_listening(server, base, models.ids()))
    try:
        await server.serve()
    finally:
        announce.cancel()


async def _announce_when_listening(server: Any, base: str, ids: list[str]) -> None:
    while not server.started:
        if server.should_exit:
            return
        await asyncio.sleep(0.05)
    print(f"voxcall model host is ready at {base}  (models: {', '.join(ids)})", flush=True)
