"""`POST /v1/audio/transcriptions` (Whisper) and `POST /v1/audio/speech` (Piper), in OpenAI's shapes.

Transcription takes a multipart upload: 16-bit WAV is read directly, anything else
(MP3, FLAC, OGG, M4A...) is decoded with PyAV, which faster-whisper installs. The
answer is `{"text": ...}` for `response_format=json` (the default) or plain text for
`text`.

Speech answers s16le mono PCM at 24 kHz for `response_format=pcm`, as OpenAI does and
as voxcall's remote TTS client (`providers/openai_speech.py`) expects, streamed sentence
by sentence as Piper synthesises; `wav` wraps the same audio in a WAV file, and is the
default here because this host encodes no MP3. Piper speaks at 22.05 kHz: the audio is
resampled on the way out. OpenAI's voice names ("alloy", ...) are taken as the default
Piper voice, so a client on its defaults works; a Piper voice is chosen by its own name.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from voxcall.audio import Resampler, read_wav, resample, write_wav
from voxcall.modelhost.errors import HostError
from voxcall.providers.openai_speech import OPENAI_VOICES
from voxcall.providers.speech import WhisperSTT
from voxcall.providers.speech_piper import PiperTTS

__all__ = ["OUTPUT_RATE", "SpeechRequest", "check_transcription", "decode_upload", "pick_voice", "speech_stream",
           "transcription_body"]

logger = logging.getLogger(__name__)

OUTPUT_RATE = 24000
"""The rate of OpenAI's `pcm` (and of this host's `wav`)."""
STT_RATE = 16000
TRANSCRIPTION_FORMATS = ("json", "text")
SPEECH_FORMATS = ("pcm", "wav")


class SpeechRequest(BaseModel):
    """The body of `POST /v1/audio/speech`; `instructions` and other extra fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str = ""
    input: str = Field(min_length=1, max_length=4096)
    voice: str | dict[str, Any] = "alloy"
    response_format: str = "wav"
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    stream_format: str = "audio"


def pick_voice(tts: PiperTTS, voice: str | dict[str, Any]) -> str:
    """The Piper voice for `voice`: itself if installed, the default one for an OpenAI voice name."""
    name = voice.get("id") if isinstance(voice, dict) else voice
    if isinstance(name, str) and name in tts.voices():
        return name
    if name in OPENAI_VOICES:
        return tts.default_voice
    known = ", ".join([*tts.voices(), *OPENAI_VOICES])
    raise HostError(400, f"unknown voice {name!r}; known: {known}", param="voice")


def speech_stream(tts: PiperTTS, body: SpeechRequest) -> tuple[AsyncIterator[bytes], str]:
    """The audio of `body` and its media type. Validates at once (raises `HostError` before any byte)."""
    if body.response_format not in SPEECH_FORMATS:
        raise HostError(400, f"response_format {body.response_format!r} is not supported; use one of "
                        f"{', '.join(SPEECH_FORMATS)} (pcm: s16le mono at 24 kHz)", param="response_format")
    if body.stream_format != "audio":
        raise HostError(400, "stream_format must be 'audio': the audio is streamed as raw bytes", param="stream_format")
    if body.speed != 1.0:
        raise HostError(400, "speed is not supported by the embedded Piper voices; leave it at 1.0", param="speed")
    if not body.input.strip():
        raise HostError(400, "input has no text to speak", param="input")
    pcm = _pcm(tts, body.input, pick_voice(tts, body.voice))
    if body.response_format == "pcm":
        return pcm, "audio/pcm"
    return _wav(pcm), "audio/wav"


async def _pcm(tts: PiperTTS, text: str, voice: str) -> AsyncIterator[bytes]:
    """Piper's audio resampled to 24 kHz, chunk by chunk. Cancellation-safe: closing it stops Piper."""
    resampler = Resampler(tts.sample_rate, OUTPUT_RATE)
    chunks = tts.synthesize(text, voice=voice)
    try:
        async for chunk in chunks:
            if out := resampler.feed(chunk):
                yield out
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    if tail := resampler.feed(b"", last=True):
        yield tail


async def _wav(pcm: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield write_wav(b"".join([chunk async for chunk in pcm]), OUTPUT_RATE)


# ------------------------------------------------------------------ transcription


async def decode_upload(data: bytes) -> bytes:
    """s16le mono PCM at 16 kHz from an uploaded audio file; `HostError(400)` if it is not audio."""
    if not data:
        raise HostError(400, "file is empty", param="file")
    try:
        pcm, rate = read_wav(data)
    except Exception:  # not a 16-bit WAV: let PyAV try every other format
        return await asyncio.to_thread(_decode_other, data)
    return resample(pcm, rate, STT_RATE)


def _decode_other(data: bytes) -> bytes:
    try:
        from faster_whisper.audio import decode_audio

        samples = decode_audio(io.BytesIO(data), sampling_rate=STT_RATE)
    except Exception as exc:  # PyAV raises its own error types for anything undecodable
        raise HostError(400, "file is not audio this host can decode: send WAV (16-bit PCM), MP3, FLAC, OGG or M4A",
                        param="file") from exc
    return bytes((np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes())


def check_transcription(response_format: str, language: str | None) -> None:
    """Refuse formats and languages Whisper cannot answer with."""
    if response_format not in TRANSCRIPTION_FORMATS:
        raise HostError(400, f"response_format {response_format!r} is not supported; use json or text",
                        param="response_format")
    if language:
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        if language not in _LANGUAGE_CODES:
            raise HostError(400, f"unknown language {language!r}: use an ISO-639-1 code such as 'en'", param="language")


async def transcription_body(stt: WhisperSTT, data: bytes, *, language: str | None) -> str:
    """The text Whisper hears in the uploaded file ("" for silence), queued fairly with other requests."""
    pcm = await decode_upload(data)
    return await stt.transcribe(pcm, language=language or None)
