"""The `voxcall` command: serve, keys, chat, calls, call.

Each subcommand is a thin shell over public functions; errors print one line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

DEFAULT_URL = "http://127.0.0.1:8000"


def _server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, help="data directory (env VOXCALL_DATA_DIR, default ~/.local/share/voxcall)")
    p.add_argument("--database-url", help="SQLAlchemy async URL, e.g. postgresql+asyncpg://u:p@host/db (env VOXCALL_DATABASE_URL)")


def _client_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=os.environ.get("VOXCALL_URL", DEFAULT_URL), help="server base URL (env VOXCALL_URL)")
    p.add_argument("--api-key", default=os.environ.get("VOXCALL_API_KEY") or os.environ.get("ULTRAVOX_API_KEY"),
                   help="API key (env VOXCALL_API_KEY)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxcall", description="Self-hosted Ultravox-compatible voice-call server and client")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    _server_options(serve)
    serve.add_argument("--host", help="bind address (env VOXCALL_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env VOXCALL_PORT, default 8000)")
    serve.add_argument("--public-url", help="base URL clients use, for join URLs behind a proxy (env VOXCALL_PUBLIC_URL)")
    serve.add_argument("--llm", choices=["qwen2.5-1.5b", "smollm2-135m", "openai"], help="LLM (env VOXCALL_LLM)")
    serve.add_argument("--llm-url", help="OpenAI-compatible base URL, implies --llm openai (env VOXCALL_LLM_URL)")
    serve.add_argument("--llm-model", help="model name on the remote server (env VOXCALL_LLM_MODEL)")
    serve.add_argument("--llm-api-key", help="key for the remote LLM (env VOXCALL_LLM_API_KEY)")
    serve.add_argument("--no-speech", action="store_true", help="text-only calls: load no speech models (env VOXCALL_SPEECH=false)")
    serve.add_argument("--stt-url", help="OpenAI-compatible /audio/transcriptions base URL instead of embedded Whisper (env VOXCALL_STT_URL)")
    serve.add_argument("--tts-url", help="OpenAI-compatible /audio/speech base URL instead of embedded Piper (env VOXCALL_TTS_URL)")
    serve.add_argument("--models-url", help="a `voxcall models serve` host for LLM, STT and TTS at once, e.g. "
                       "http://127.0.0.1:8001/v1; the three flags above win (env VOXCALL_MODELS_URL)")
    serve.add_argument("--workers", type=int, help="call-plane processes on this port, one per core (env VOXCALL_WORKERS, "
                       "default 1); more than 1 needs VOXCALL_REDIS_URL, PostgreSQL and the models on URLs (docs/deploy.md)")
    serve.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)  # set by the supervisor for its workers
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--log-format", choices=["text", "json"], help="log lines as text or JSON objects (env VOXCALL_LOG_FORMAT)")

    keys = sub.add_parser("keys", help="manage API keys (talks to the database directly)")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", default="default")
    create.add_argument("--account", default=None, help="account id (default: the default account); a new id makes a new account")
    _server_options(create)
    _server_options(keys_sub.add_parser("list", help="list keys (prefixes only)"))
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its 8-character prefix")
    revoke.add_argument("prefix")
    _server_options(revoke)

    chat = sub.add_parser("chat", help="text conversation with an agent in the terminal")
    _client_options(chat)
    chat.add_argument("--system-prompt", default=None)
    chat.add_argument("--tools-demo", action="store_true", help="offer a getWeather client tool answered by this CLI")

    calls = sub.add_parser("calls", help="list calls or show one call's transcript")
    calls_sub = calls.add_subparsers(dest="action", required=True)
    _client_options(calls_sub.add_parser("list"))
    show = calls_sub.add_parser("show")
    show.add_argument("call_id")
    _client_options(show)

    call = sub.add_parser("call", help="voice call with an agent: microphone and speaker (use headphones), or WAV files",
                          description="Voice call through the default microphone and speaker (16 kHz in, 24 kHz out on the wire; "
                                      "there is no echo cancellation, so use headphones), or through WAV files. Ctrl-C hangs up.")
    _client_options(call)
    call.add_argument("--system-prompt", default=None, help="the agent's system prompt (default: a short-answers voice assistant)")
    call.add_argument("--voice", default=None, help="TTS voice name (see GET /api/voices)")
    call.add_argument("--input", metavar="FILE.wav", help="send this WAV file as the microphone, hang up once the agent has answered")
    call.add_argument("--output", metavar="FILE.wav", help="write the agent's audio to this WAV file instead of playing it")
    call.add_argument("--tools-demo", action="store_true", help="offer a getWeather client tool answered by this CLI")

    from voxcall.modelhost.cli import add_parser as add_models_parser

    add_models_parser(sub)
    return parser


def _settings(args: argparse.Namespace) -> Any:
    from voxcall.config import Settings

    overrides: dict[str, Any] = {k: v for k, v in {
        "data_dir": getattr(args, "data_dir", None),
        "database_url": getattr(args, "database_url", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "public_url": getattr(args, "public_url", None),
        "llm": getattr(args, "llm", None) or ("openai" if getattr(args, "llm_url", None) else None),
        "llm_url": getattr(args, "llm_url", None),
        "llm_model": getattr(args, "llm_model", None),
        "llm_api_key": getattr(args, "llm_api_key", None),
        "speech": False if getattr(args, "no_speech", False) else None,
        "stt_url": getattr(args, "stt_url", None),
        "tts_url": getattr(args, "tts_url", None),
        "models_url": getattr(args, "models_url", None),
        "log_format": getattr(args, "log_format", None),
        "workers": getattr(args, "workers", None),
    }.items() if v is not None}
    return Settings(**overrides)


async def _open(settings: Any) -> Any:
    from voxcall.store import open_store

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return await open_store(settings.resolved_database_url())


async def _ensure_key(settings: Any) -> str | None:
    store = await _open(settings)
    try:
        if await store.count_active_api_keys():
            return None
        key, _ = await store.create_api_key("first key")
        return str(key)
    finally:
        await store.close()


def _progress(label: str) -> Any:
    shown = {"percent": -1}

    def report(done: int, total: int) -> None:
        percent = done * 100 // total if total else 100
        if percent != shown["percent"]:  # one update per percent, not per chunk
            shown["percent"] = percent
            print(f"\r{label}: {percent}%", end="" if percent < 100 else "\n", file=sys.stderr, flush=True)

    return report


def cmd_serve(args: argparse.Namespace, argv: Sequence[str] = ()) -> int:
    from voxcall.server.logs import configure_logging
    from voxcall.server.supervisor import worker_problem

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = _settings(args)
    configure_logging(args.log_level, settings.log_format)
    if args.worker_index is not None:
        return _serve_one(args, settings, None)
    problem = worker_problem(settings)
    if problem:
        raise ValueError(problem)
    key = asyncio.run(_ensure_key(settings))
    print(f"Database: {settings.database_label()}", file=sys.stderr, flush=True)
    if settings.workers > 1:
        return _supervise(argv, settings, key)
    return _serve_one(args, settings, key)


def _supervise(argv: Sequence[str], settings: Any, key: str | None) -> int:
    from voxcall.server.supervisor import Supervisor

    supervisor = Supervisor(argv, settings)
    base = settings.public_url or f"http://{settings.host}:{supervisor.port}"
    print(f"Starting {settings.workers} workers on port {supervisor.port}...", file=sys.stderr, flush=True)
    supervisor.start()
    if supervisor.wait_ready():
        _ready_lines(base, key)
    return supervisor.run()


def _serve_one(args: argparse.Namespace, settings: Any, key: str | None) -> int:
    from voxcall.server.app import create_app, load_llm, load_speech
    from voxcall.server.serve import graceful_server

    sockets = None
    if args.worker_index is not None:  # one of a supervisor's workers: a cluster node of its own on the shared port
        from voxcall.server.supervisor import reuse_port_socket

        if settings.node_id:
            settings.node_id = f"{settings.node_id}-{args.worker_index}"
        sockets = [reuse_port_socket(settings.host, settings.port)]
    print(f"Loading the LLM ({settings.llm})...", file=sys.stderr, flush=True)
    llm = load_llm(settings, progress=_progress("Assembling LLM weights"))
    if settings.speech:
        remote = [name for name, url in (("Whisper", settings.stt_url), ("Piper", settings.tts_url)) if not url]
        print(f"Loading speech models ({', '.join(['Silero VAD', *remote])})...", file=sys.stderr, flush=True)
    speech = load_speech(settings, progress=_progress("Assembling speech model files"))
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    server = graceful_server(create_app(settings, llm=llm, speech=speech), settings, log_level=args.log_level)

    async def serve() -> None:
        watch = _announce_when_listening(server, base, key) if sockets is None else _exit_with_parent(server)
        announce = asyncio.create_task(watch)
        try:
            await server.serve(sockets)
        finally:
            announce.cancel()

    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:  # uvicorn's choice of loop
        runner.run(serve())
    return 0


async def _announce_when_listening(server: Any, base: str, key: str | None) -> None:
    """Print the ready line (and a new key) once the port accepts connections, not before."""
    while not server.started:
        if server.should_exit:
            return
        await asyncio.sleep(0.05)
    _ready_lines(base, key)


async def _exit_with_parent(server: Any) -> None:
    """A worker whose supervisor is gone shuts down as on SIGTERM (drains its calls)."""
    import signal

    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    server.handle_exit(signal.SIGTERM, None)


def _ready_lines(base: str, key: str | None) -> None:
    print(f"voxcall is ready at {base}  (REST API: {base}/api, OpenAPI: {base}/api/schema/, docs: {base}/api/docs)")
    if key:
        print(f"Your API key (shown once): {key}")
        command = shutil.which("voxcall") or str(Path(sys.executable).parent / "voxcall")
        print(f"Try:  VOXCALL_API_KEY={key} {command} chat --url {base}")
        print(f"      or open {base}/ in a browser and paste the key")
    sys.stdout.flush()


async def cmd_keys(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = await _open(settings)
    try:
        if args.action == "create":
            key, info = await store.create_api_key(args.name, account_id=args.account)
            print(key)
            print(f"key {info.prefix} stored in {settings.database_label()}; a server must use the same database "
                  "(--data-dir / --database-url, or VOXCALL_DATA_DIR / VOXCALL_DATABASE_URL)", file=sys.stderr)
        elif args.action == "list":
            for info in await store.list_api_keys():
                state = "revoked" if info.revoked else "active"
                print(f"{info.prefix}  {state:8}  {info.created:%Y-%m-%d %H:%M}  {info.name}")
        elif not await store.revoke_api_key(args.prefix):
            print(f"error: no key with prefix {args.prefix!r}", file=sys.stderr)
            return 1
        else:
            print(f"revoked {args.prefix}")
        return 0
    finally:
        await store.close()


def _need_key(args: argparse.Namespace) -> str:
    if not args.api_key:
        raise SystemExit("error: no API key: pass --api-key or set VOXCALL_API_KEY (`voxcall keys create` makes one)")
    return str(args.api_key)


async def cmd_chat(args: argparse.Namespace) -> int:
    from voxcall.client.terminal import chat

    return await chat(args.url.rstrip("/") + "/api", _need_key(args), system_prompt=args.system_prompt, tools_demo=args.tools_demo)


async def cmd_calls(args: argparse.Namespace) -> int:
    from voxcall.client.rest import Client
    from voxcall.client.terminal import format_transcript

    async with Client(_need_key(args), base_url=args.url.rstrip("/") + "/api") as client:
        if args.action == "list":
            page = await client.calls.list(page_size=50)
            for call in page["results"]:
                print(f"{call['callId']}  {call['created'][:19]}  {call['endReason'] or ('live' if call['joined'] else 'waiting')}")
        else:
            call = await client.calls.get(args.call_id)
            print(f"Call {call['callId']}  created {call['created']}  ended: {call['endReason']}")
            print(format_transcript(await client.calls.all_messages(args.call_id)))
    return 0


async def cmd_call(args: argparse.Namespace) -> int:
    from voxcall.client.voicecall import voice_call

    return await voice_call(args.url.rstrip("/") + "/api", _need_key(args), system_prompt=args.system_prompt,
                            voice=args.voice, input_path=args.input, output_path=args.output, tools_demo=args.tools_demo)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `voxcall` command."""
    from voxcall.errors import VoxcallError

    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return cmd_serve(args, list(sys.argv[1:] if argv is None else argv))
        if args.command == "models":
            from voxcall.modelhost.cli import cmd_models

            return cmd_models(args, progress=_progress("Assembling model files"))
        handler = {"keys": cmd_keys, "chat": cmd_chat, "calls": cmd_calls, "call": cmd_call}[args.command]
        return asyncio.run(handler(args))
    except KeyboardInterrupt:
        return 130
    except (VoxcallError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
