"""Settings, read from the environment once, at the edge (cli, server.app).

Every variable has the prefix VOXCALL_; CLI flags override them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["METRICS_DIR_VARIABLE", "Settings", "default_data_dir", "metrics_dir", "with_metrics_dir"]

METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's multiprocess directory: `voxcall serve --workers N` sets it for its workers."""


def default_data_dir() -> Path:
    """Where voxcall keeps its data when VOXCALL_DATA_DIR is unset: `$XDG_DATA_HOME/voxcall`.

    An absolute per-user place (`~/.local/share/voxcall` by default), so `voxcall serve`, `voxcall keys`
    and the benchmarks find the same database whichever directory they are run from.
    """
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "voxcall"


def metrics_dir() -> Path | None:
    """The multiprocess metrics directory of this process (set by the supervisor of workers), or None.

    prometheus-client itself reads the variable when it is first imported, to store every value
    in files there; the server reads it here, to sum every worker's files at each scrape.
    """
    value = os.environ.get(METRICS_DIR_VARIABLE)
    return Path(value) if value else None


def with_metrics_dir(path: Path) -> dict[str, str]:
    """This process's environment with the metrics directory set to `path`: a worker's environment."""
    return {**os.environ, METRICS_DIR_VARIABLE: str(path)}


class Settings(BaseSettings):
    """Server configuration. Build with `Settings(...)` in tests, `Settings()` at the edge."""

    model_config = SettingsConfigDict(env_prefix="VOXCALL_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Field(default_factory=default_data_dir, description="SQLite database, assembled model files, secrets")
    database_url: str | None = Field(default=None, description="SQLAlchemy async URL; default SQLite in data_dir")
    public_url: str | None = Field(default=None, description="Base URL clients reach us at, e.g. https://voice.example.com")
    llm: Literal["qwen2.5-1.5b", "smollm2-135m", "openai"] = "qwen2.5-1.5b"
    llm_url: str | None = Field(default=None, description="OpenAI-compatible base URL, e.g. http://127.0.0.1:8001/v1")
    llm_model: str = "default"
    llm_api_key: str | None = None
    # CPU threads. llama.cpp's threads meet at a spinning barrier after every step, so a fixed count that
    # assumes idle cores slows down when another process holds one; `auto` (0) follows what the machine
    # leaves free (providers/cpu.py). benchmarks/contention.py compares settings.
    llm_threads: int = Field(default=0, ge=0, description="llama.cpp threads generating tokens; 0 = auto: up to "
                             "min(cores, 4), one per core other processes leave free")
    llm_batch_threads: int | None = Field(default=None, ge=0, description="llama.cpp threads reading prompts; "
                                          "default llm_threads; 0 = auto")
    llm_slots: int = Field(default=4, ge=1, description="llama.cpp KV caches: calls whose conversation stays "
                           "cached between turns (about 115 MB each for Qwen2.5 1.5B)")
    whisper_threads: int = Field(default=1, ge=1, description="CTranslate2 threads of Whisper")
    preemptive_replies: bool = Field(default=True, description="draft the reply while the user pauses; release it "
                                     "at once if the turn ends with the same words (benchmarks/voice_latency.py)")
    speech: bool = Field(default=True, description="load speech models (VAD, STT, TTS); off = text-only calls")
    stt_url: str | None = Field(default=None, description="OpenAI-compatible base URL for /audio/transcriptions")
    stt_model: str = "whisper-1"
    tts_url: str | None = Field(default=None, description="OpenAI-compatible base URL for /audio/speech")
    tts_model: str = "tts-1"
    tts_voice: str = "alloy"
    speech_api_key: str | None = None
    models_url: str | None = Field(default=None, description="a `voxcall models serve` host, e.g. http://127.0.0.1:8001/v1: "
                                   "the default of llm_url, stt_url and tts_url (and llm=openai)")
    models_api_key: str | None = Field(default=None, description="the model host's key: required by `voxcall models serve`, "
                                       "the default of llm_api_key and speech_api_key")
    default_voice: str | None = Field(default=None, description="voice of calls that name none or an unknown one")
    voice_aliases: dict[str, str] = Field(default_factory=dict, description='JSON map of hosted voice names to installed ones')
    strict_voices: bool = Field(default=False, description="refuse unknown voices and externalVoice with 422")
    # Limits; each answers 429 with Retry-After, and 0 turns it off (server/limits.py).
    max_calls: int = Field(default=20, ge=0, description="concurrent calls per account (created, not ended): allowedConcurrentCalls")
    calls_per_second: int = Field(default=10, ge=0, description="calls an account may create per second")
    calls_per_minute: int = Field(default=120, ge=0, description="calls an account may create per minute")
    requests_per_second: int = Field(default=200, ge=0, description="/api requests per API key per second")
    auth_failures_per_minute: int = Field(default=10, ge=0, description="bad API keys per client address per minute")
    cors_origins: list[str] = Field(default_factory=list)
    # Input limits (README "Configuration"); the statuses they answer are in the descriptions.
    max_request_bytes: int = Field(default=2 * 1024 * 1024, gt=0, description="largest HTTP request body (413)")
    max_data_message_bytes: int = Field(default=64 * 1024, gt=0,
                                        description="largest realtime text frame and send_data_message body (413)")
    max_json_depth: int = Field(default=64, gt=0, description="deepest JSON nesting in bodies and frames (422)")
    max_system_prompt_chars: int = Field(default=100_000, gt=0, description="longest systemPrompt (422)")
    max_initial_messages: int = Field(default=2000, ge=0, description="most initialMessages (422)")
    max_initial_messages_bytes: int = Field(default=1024 * 1024, gt=0, description="initialMessages JSON size (422)")
    max_metadata_bytes: int = Field(default=16 * 1024, gt=0, description="metadata JSON size (422)")
    ws_message_rate: float = Field(default=50.0, gt=0, description="client text frames a second per call")
    ws_text_byte_rate: float = Field(default=256 * 1024, gt=0, description="bytes of client text a second per call")
    ws_audio_frame_rate: float = Field(default=500.0, gt=0, description="client audio frames a second per call")
    max_node_calls: int = Field(default=0, ge=0, description="calls this node hosts at once; more joins are refused (1013); 0 = no limit")
    max_node_load: float = Field(default=0.0, ge=0, description="1-minute load average per CPU above which joins are refused (1013); 0 = off")
    database_timeout_seconds: float = Field(default=5.0, gt=0, description="PostgreSQL: bound on each connection attempt and "
                                            "each wait for a pooled connection; past it, requests answer 503 with Retry-After")
    database_command_timeout_seconds: float = Field(default=30.0, gt=0, description="PostgreSQL: bound on each statement")
    redis_timeout_seconds: float = Field(default=5.0, gt=0, description="Redis: bound on each connection attempt and each command; "
                                         "past it, requests that need Redis answer 503 with Retry-After")
    redis_url: str | None = Field(default=None, description="redis://host:port/db shared by every node; unset = one node, in-process")
    node_heartbeat_seconds: float = Field(default=5.0, gt=0, description="how often a node renews its calls in Redis; "
                                          "a node silent for three heartbeats holds no call")
    node_id: str | None = Field(default=None, description="this node's name in Redis; default host-pid-random")
    workers: int = Field(default=1, ge=1, description="call-plane processes of this node, sharing its port (SO_REUSEPORT); "
                         "more than 1 needs redis_url, a PostgreSQL database_url and the models on URLs")
    drain_seconds: float = Field(default=30.0, ge=0, description="on SIGTERM, how long live calls may go on before they are ended")
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(default="auto", description="the event loop `voxcall serve` runs "
                                                             "on: auto = uvloop (installed with the server), asyncio = the standard one")
    stale_call_seconds: float = Field(default=60.0, ge=0, description="sweep interval and grace for joined calls no server hosts; 0 = off")
    log_format: Literal["text", "json"] = "text"
    outbound_allow: str = Field(default="", description="comma-separated CIDRs or host names that HTTP tools and "
                                "webhooks may reach although private (loopback, intranet); see voxcall.outbound")
    webhook_retry_base: float = Field(default=30.0, gt=0, description="seconds before a failed webhook's first retry; each retry waits twice as long")
    webhook_max_retries: int = Field(default=10, ge=0, description="retries after the first attempt before a delivery is given up")
    webhook_timeout: float = Field(default=10.0, gt=0, description="seconds a webhook receiver has to answer")

    # Carrier REST APIs (phone calls): operator settings, trusted; tests point them at fakes on 127.0.0.1.
    twilio_api_url: str = Field(default="https://api.twilio.com", description="Twilio REST API base URL")
    telnyx_api_url: str = Field(default="https://api.telnyx.com", description="Telnyx REST API base URL")
    plivo_api_url: str = Field(default="https://api.plivo.com", description="Plivo REST API base URL")
    carrier_timeout: float = Field(default=10.0, gt=0, description="seconds to wait for a carrier's REST API")

    def model_post_init(self, __context: object) -> None:
        self.data_dir = self.data_dir.expanduser().resolve()  # one meaning, whatever the working directory
        if self.models_url:  # one model host for all three; a URL or an LLM named explicitly wins
            if "llm" not in self.model_fields_set and not self.llm_url:
                self.llm = "openai"
            self.llm_url = self.llm_url or self.models_url
            self.stt_url = self.stt_url or self.models_url
            self.tts_url = self.tts_url or self.models_url
        if self.models_api_key:
            self.llm_api_key = self.llm_api_key or self.models_api_key
            self.speech_api_key = self.speech_api_key or self.models_api_key

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite (aiosqlite) in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'voxcall.db'}"

    def database_label(self) -> str:
        """The database for people to read: the SQLite file, or the URL without its password."""
        if not self.database_url:
            return str(self.data_dir / "voxcall.db")
        from sqlalchemy.engine import make_url  # the server extra; only asked for with a database URL

        return make_url(self.database_url).render_as_string(hide_password=True)
