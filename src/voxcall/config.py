"""Settings, read from the environment once, at the edge (cli, server.app).

Every variable has the prefix VOXCALL_; CLI flags override them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Server configuration. Build with `Settings(...)` in tests, `Settings()` at the edge."""

    model_config = SettingsConfigDict(env_prefix="VOXCALL_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Field(default=Path("./data"), description="SQLite database, assembled model files, secrets")
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
    default_voice: str | None = Field(default=None, description="voice of calls that name none or an unknown one")
    voice_aliases: dict[str, str] = Field(default_factory=dict, description='JSON map of hosted voice names to installed ones')
    strict_voices: bool = Field(default=False, description="refuse unknown voices and externalVoice with 422")
    max_calls: int = 8
    cors_origins: list[str] = Field(default_factory=list)

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite (aiosqlite) in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'voxcall.db').resolve()}"
