"""Settings, read from the environment once, at the edge (cli, server.app).

Every variable has the prefix VOXCALL_; CLI flags override them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_data_dir"]


def default_data_dir() -> Path:
    """Where voxcall keeps its data when VOXCALL_DATA_DIR is unset: `$XDG_DATA_HOME/voxcall`.

    An absolute per-user place (`~/.local/share/voxcall` by default), so `voxcall serve`, `voxcall keys`
    and the benchmarks find the same database whichever directory they are run from.
    """
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "voxcall"


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
    llm_threads: int = 2
    speech: bool = Field(default=True, description="load speech models (VAD, STT, TTS); off = text-only calls")
    stt_url: str | None = Field(default=None, description="OpenAI-compatible base URL for /audio/transcriptions")
    stt_model: str = "whisper-1"
    tts_url: str | None = Field(default=None, description="OpenAI-compatible base URL for /audio/speech")
    tts_model: str = "tts-1"
    tts_voice: str = "alloy"
    speech_api_key: str | None = None
    # Limits; each answers 429 with Retry-After, and 0 turns it off (server/limits.py).
    max_calls: int = Field(default=20, ge=0, description="concurrent calls per account (created, not ended): allowedConcurrentCalls")
    calls_per_second: int = Field(default=10, ge=0, description="calls an account may create per second")
    calls_per_minute: int = Field(default=120, ge=0, description="calls an account may create per minute")
    requests_per_second: int = Field(default=200, ge=0, description="/api requests per API key per second")
    auth_failures_per_minute: int = Field(default=10, ge=0, description="bad API keys per client address per minute")
    cors_origins: list[str] = Field(default_factory=list)
    drain_seconds: float = Field(default=30.0, ge=0, description="on SIGTERM, how long live calls may go on before they are ended")
    stale_call_seconds: float = Field(default=60.0, ge=0, description="sweep interval and grace for joined calls no server hosts; 0 = off")
    log_format: Literal["text", "json"] = "text"
    outbound_allow: str = Field(default="", description="comma-separated CIDRs or host names that HTTP tools and "
                                "webhooks may reach although private (loopback, intranet); see voxcall.outbound")

    def model_post_init(self, __context: object) -> None:
        self.data_dir = self.data_dir.expanduser().resolve()  # one meaning, whatever the working directory

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
