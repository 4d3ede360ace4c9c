"""Speech behind any OpenAI-compatible server: `/audio/transcriptions` (STT) and `/audio/speech` (TTS).

Both take an injected `httpx.AsyncClient` (for tests, `httpx.MockTransport`). HTTP and
transport failures become `ProviderError` in one place, `map_errors()` (STYLE.md rule 2),
with the same rule as the LLM client: 429, 5xx and transport errors are retryable.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from voxcall.audio import write_wav
from voxcall.errors import ProviderError
from voxcall.providers.http import Endpoint, map_errors

__all__ = ["OPENAI_VOICES", "OpenAISTT", "OpenAITTS"]

logger = logging.getLogger(__name__)

OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")
"""The voices of OpenAI's `/audio/speech`; other servers take `voices=` with their own list."""


class OpenAISTT(Endpoint):
    """Transcribes through `POST {base_url}/audio/transcriptions` (multipart WAV upload).

    Args:
        base_url: the API root, e.g. `https://api.openai.com/v1`.
        model: the `model` form field.
        api_key: sent as a bearer token when given.
        client: an `httpx.AsyncClient` to share; when omitted one is created and closed by `aclose()`.
        sample_rate: the rate of the PCM handed to `transcribe()`, written into the WAV header.
        timeout: seconds for connecting and for the answer.
    """

    def __init__(
        self,
        base_url: str,
        model: str = "whisper-1",
        api_key: str | None = None,
        client: httpx.AsyncClient | None = None,
        *,
        sample_rate: int = 16000,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(base_url, api_key, client, timeout)
        self.name = model
        self.model = model
        self.sample_rate = sample_rate

    async def transcribe(self, pcm: bytes, *, language: str | None = None) -> str:
        """Upload s16le mono PCM as a WAV file and return the stripped text.

        Cancellation-safe: cancelling closes the request. Raises `ProviderError`.
        """
        data = {"model": self.model, "response_format": "json"}
        if language:
            data["language"] = language
        files = {"file": ("audio.wav", write_wav(pcm, self.sample_rate), "audio/wav")}
        with map_errors("transcription"):
            response = await self._client.post(
                f"{self._base}/audio/transcriptions",
                data=data,
                files=files,
                headers=self._headers,
                timeout=self._timeout,
            )
            response.raise_for_status()
            body = _json(response)
        text = body.get("text")
        if not isinstance(text, str):
            raise ProviderError(f"transcription server sent no text: {response.text[:200]!r}", retryable=True)
        return text.strip()


class OpenAITTS(Endpoint):
    """Synthesises through `POST {base_url}/audio/speech` with `response_format: "pcm"`, streaming the body.

    OpenAI's "pcm" is s16le mono at 24 kHz; set `sample_rate` for servers that differ.

    Args:
        base_url: the API root.
        model: the `model` field, e.g. "tts-1" or "gpt-4o-mini-tts".
        voice: the default voice.
        api_key: sent as a bearer token when given.
        sample_rate: the rate of the PCM the server returns.
        client: an `httpx.AsyncClient` to share; when omitted one is created and closed by `aclose()`.
        voices: the voice ids the server knows (OpenAI's by default).
        timeout: seconds for connecting and between streamed chunks.
    """

    def __init__(
        self,
        base_url: str,
        model: str = "tts-1",
        voice: str = "alloy",
        api_key: str | None = None,
        sample_rate: int = 24000,
        client: httpx.AsyncClient | None = None,
        *,
        voices: Sequence[str] = OPENAI_VOICES,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(base_url, api_key, client, timeout)
        self.name = model
        self.model = model
        self.sample_rate = sample_rate
        self._voices = list(dict.fromkeys([voice, *voices]))
        self.voice = voice

    def voices(self) -> list[str]:
        """The voice ids accepted by `synthesize()`."""
        return list(self._voices)

    def synthesize(self, text: str, *, voice: str | None = None) -> AsyncIterator[bytes]:
        """Yield s16le PCM chunks as the server streams them (each a whole number of samples).

        Cancellation-safe: closing or cancelling the consumer closes the response.

        Raises:
            ProviderError: at once for an unknown voice; while iterating for HTTP failures
                (retryable for 429, 5xx and transport errors).
        """
        name = voice or self.voice
        if name not in self._voices:
            raise ProviderError(f"unknown voice {name!r}; known: {', '.join(self._voices)}")
        body = {"model": self.model, "input": text, "voice": name, "response_format": "pcm"}
        return self._stream(body)

    async def _stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        if not str(body["input"]).strip():
            return
        carry = b""
        with map_errors("speech"):
            async with self._client.stream(
                "POST", f"{self._base}/audio/speech", json=body, headers=self._headers, timeout=self._timeout
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    response.raise_for_status()
                async for data in response.aiter_bytes():
                    data = carry + data
                    whole = len(data) // 2 * 2  # never split a sample between chunks
                    carry = data[whole:]
                    if whole:
                        yield data[:whole]
        if carry:
            logger.debug("speech server sent an odd number of bytes; dropped the last one")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise ProviderError(f"transcription server sent invalid JSON: {response.text[:200]!r}", retryable=True) from exc
    if not isinstance(body, dict):
        raise ProviderError(f"transcription server sent an unexpected body: {response.text[:200]!r}", retryable=True)
    return body
