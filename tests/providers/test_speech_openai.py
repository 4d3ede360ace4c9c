"""OpenAISTT and OpenAITTS against httpx.MockTransport handlers (request shape, streaming, error mapping)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from voxcall.audio import read_wav
from voxcall.errors import ProviderError
from voxcall.providers.base import STT, TTS
from voxcall.providers.openai_speech import OpenAISTT, OpenAITTS

Handler = Callable[[httpx.Request], httpx.Response]
PCM = bytes(range(256)) * 8  # 2048 bytes = 1024 samples


def _client(handler: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def _form_fields(request: httpx.Request) -> dict[str, bytes]:
    """Parse a multipart body into {name: content} (enough for our two fields and one file)."""
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    fields: dict[str, bytes] = {}
    for part in request.content.split(b"--" + boundary)[1:-1]:
        head, _, body = part.partition(b"\r\n\r\n")
        name = head.split(b'name="')[1].split(b'"')[0].decode()
        fields[name] = body[: -len(b"\r\n")]
    return fields


async def test_stt_posts_a_wav_and_returns_stripped_text() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"text": "  Hello there.  "})

    stt = OpenAISTT("http://stt.test/v1/", api_key="sk-test", client=_client(handler))
    assert isinstance(stt, STT)
    assert await stt.transcribe(PCM, language="de") == "Hello there."
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == "http://stt.test/v1/audio/transcriptions"
    assert request.headers["authorization"] == "Bearer sk-test"
    fields = _form_fields(request)
    assert fields["model"] == b"whisper-1"
    assert fields["response_format"] == b"json"
    assert fields["language"] == b"de"
    assert read_wav(fields["file"]) == (PCM, 16000)
    assert b'filename="audio.wav"' in request.content


async def test_stt_without_language_or_key_sends_neither() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"text": "ok"})

    stt = OpenAISTT("http://stt.test/v1", model="whisper-large", client=_client(handler), sample_rate=8000)
    assert await stt.transcribe(PCM) == "ok"
    fields = _form_fields(seen[0])
    assert "language" not in fields and "authorization" not in seen[0].headers
    assert fields["model"] == b"whisper-large"
    assert read_wav(fields["file"])[1] == 8000


@pytest.mark.parametrize(
    ("response", "retryable"),
    [
        (httpx.Response(500, text="boom"), True),
        (httpx.Response(429, text="slow down"), True),
        (httpx.Response(400, text="bad audio"), False),
        (httpx.Response(401, text="bad key"), False),
        (httpx.Response(200, text="not json"), True),
        (httpx.Response(200, json=["a list"]), True),
        (httpx.Response(200, json={"no": "text"}), True),
    ],
)
async def test_stt_errors_are_provider_errors(response: httpx.Response, retryable: bool) -> None:
    stt = OpenAISTT("http://stt.test/v1", client=_client(lambda request: response))
    with pytest.raises(ProviderError) as info:
        await stt.transcribe(PCM)
    assert info.value.retryable is retryable
    assert info.value.__cause__ is not None or response.status_code == 200


async def test_stt_transport_error_is_retryable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ProviderError, match="unreachable") as info:
        await OpenAISTT("http://stt.test/v1", client=_client(handler)).transcribe(PCM)
    assert info.value.retryable
    assert isinstance(info.value.__cause__, httpx.ConnectError)


class _Body(httpx.AsyncByteStream):
    """A response body delivered in the given pieces, recording whether it was closed."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.sent = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            self.sent += 1
            yield piece

    async def aclose(self) -> None:
        self.closed = True


async def test_tts_streams_pcm_in_whole_samples() -> None:
    seen: list[httpx.Request] = []
    body = _Body([b"\x01\x02\x03", b"\x04", b"\x05\x06\x07\x08\x09", b"\x0a"])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, stream=body)

    tts = OpenAITTS("http://tts.test/v1", api_key="sk-test", client=_client(handler))
    assert isinstance(tts, TTS)
    assert tts.sample_rate == 24000 and "alloy" in tts.voices()
    chunks = [chunk async for chunk in tts.synthesize("Hello there.", voice="nova")]
    assert all(len(chunk) % 2 == 0 for chunk in chunks)
    assert b"".join(chunks) == bytes(range(1, 11))
    request = seen[0]
    assert str(request.url) == "http://tts.test/v1/audio/speech"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert json.loads(request.content) == {
        "model": "tts-1",
        "input": "Hello there.",
        "voice": "nova",
        "response_format": "pcm",
    }


async def test_tts_closing_the_consumer_closes_the_response() -> None:
    body = _Body([b"\x00\x01" * 100] * 10)
    tts = OpenAITTS("http://tts.test/v1", client=_client(lambda request: httpx.Response(200, stream=body)))
    stream = tts.synthesize("A long text.")
    assert await anext(stream) == b"\x00\x01" * 100
    await stream.aclose()  # type: ignore[attr-defined]
    assert body.closed and body.sent < 10


async def test_tts_voices_default_and_unknown() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"\x00\x00")

    tts = OpenAITTS("http://tts.test/v1", model="kokoro", voice="af_bella", client=_client(handler), voices=["af_sky"])
    assert tts.voices() == ["af_bella", "af_sky"]
    assert [chunk async for chunk in tts.synthesize("Hi.")] == [b"\x00\x00"]
    assert json.loads(seen[0].content)["voice"] == "af_bella"
    with pytest.raises(ProviderError, match="unknown voice"):
        tts.synthesize("Hi.", voice="alloy")
    assert [chunk async for chunk in tts.synthesize("   ")] == []  # nothing to say: no request
    assert len(seen) == 1


@pytest.mark.parametrize(("status", "retryable"), [(503, True), (429, True), (400, False)])
async def test_tts_http_errors(status: int, retryable: bool) -> None:
    tts = OpenAITTS("http://tts.test/v1", client=_client(lambda request: httpx.Response(status, text="nope")))
    with pytest.raises(ProviderError, match=f"answered {status}: nope") as info:
        async for _ in tts.synthesize("Hello."):
            pass
    assert info.value.retryable is retryable


async def test_tts_error_mid_stream_is_retryable() -> None:
    class Broken(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"\x00\x00"
            raise httpx.ReadError("connection reset")

    tts = OpenAITTS("http://tts.test/v1", client=_client(lambda request: httpx.Response(200, stream=Broken())))
    chunks: list[bytes] = []
    with pytest.raises(ProviderError, match="unreachable") as info:
        async for chunk in tts.synthesize("Hello."):
            chunks.append(chunk)
    assert chunks == [b"\x00\x00"] and info.value.retryable


async def test_owned_clients_are_closed_and_shared_ones_are_not() -> None:
    shared = _client(lambda request: httpx.Response(200, json={"text": ""}))
    await OpenAISTT("http://x/v1", client=shared).aclose()
    await OpenAITTS("http://x/v1", client=shared).aclose()
    assert not shared.is_closed
    owned = OpenAISTT("http://x/v1")
    await owned.aclose()
    assert owned._client.is_closed
    await shared.aclose()
