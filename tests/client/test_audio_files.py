"""`WavFileSource`, `WavFileSink`, `BytesSink` on their own and inside `UltravoxSession` (scripted peer, no server)."""

from __future__ import annotations

import asyncio
import math
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection

from voxcall.audio import read_wav, write_wav
from voxcall.client import BytesSink, UltravoxSession, UltravoxSessionStatus, WavFileSink, WavFileSource

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "speech"
WAIT = 5.0
Peer = Any


def tone(rate: int, seconds: float, hz: float = 440.0) -> bytes:
    n = int(rate * seconds)
    return struct.pack(f"<{n}h", *(int(8000 * math.sin(2 * math.pi * hz * i / rate)) for i in range(n)))


@pytest.fixture
def short_wav(tmp_path: Path) -> Path:
    """0.1 s of a 440 Hz tone at 16 kHz."""
    path = tmp_path / "tone.wav"
    path.write_bytes(write_wav(tone(16000, 0.1), 16000))
    return path


async def take(source: WavFileSource, n: int) -> list[bytes]:
    chunks: list[bytes] = []
    stream = source.stream()
    async for chunk in stream:
        chunks.append(chunk)
        if len(chunks) == n:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    return chunks


# ------------------------------------------------------------ WavFileSource


async def test_source_yields_20ms_chunks_of_the_file_then_ends_when_not_realtime() -> None:
    source = WavFileSource(FIXTURES / "capital.wav", realtime=False, trailing_silence=0.5)
    pcm, rate = read_wav(str(FIXTURES / "capital.wav"))
    assert rate == 16000 and source.speech_duration == pytest.approx(len(pcm) / 2 / rate)
    chunks = [c async for c in source.stream()]
    assert {len(c) for c in chunks} == {640}  # 20 ms at 16 kHz
    assert b"".join(chunks)[: len(pcm)] == pcm
    assert len(chunks) == math.ceil(len(pcm) / 640) + 25  # then 0.5 s of silence
    assert not any(b"".join(chunks[-25:]))
    assert source.sent.is_set()


async def test_source_resamples_to_its_rate() -> None:
    source = WavFileSource(FIXTURES / "capital.wav", 24000, realtime=False, trailing_silence=0)
    chunks = [c async for c in source.stream()]
    assert {len(c) for c in chunks} == {960}
    assert len(b"".join(chunks)) / 2 / 24000 == pytest.approx(source.speech_duration, abs=0.021)


async def test_source_is_paced_to_real_time_and_keeps_sending_silence(short_wav: Path) -> None:
    source = WavFileSource(short_wav, realtime=True, trailing_silence=0.1)
    loop = asyncio.get_running_loop()
    start = loop.time()
    chunks = await take(source, 16)  # 0.1 s of tone, 0.1 s of silence, then more silence
    elapsed = loop.time() - start
    assert 0.28 <= elapsed < 0.6, elapsed  # 15 intervals of 20 ms
    assert any(chunks[0]) and not any(b"".join(chunks[5:]))
    assert source.sent.is_set()  # set after the trailing silence, while the silence goes on


async def test_source_stop_ends_the_stream(short_wav: Path) -> None:
    source = WavFileSource(short_wav, realtime=True)
    seen = 0
    async for _ in source.stream():
        seen += 1
        if seen == 3:
            source.stop()
    assert seen == 3 and not source.sent.is_set()


def test_source_rejects_missing_and_non_wav_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        WavFileSource(tmp_path / "nope.wav")
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    with pytest.raises(ValueError, match="not a 16-bit PCM WAV"):
        WavFileSource(bad)


# ------------------------------------------------------------ sinks


async def test_bytes_sink_keeps_written_audio_on_clear() -> None:
    sink = BytesSink(16000)
    sink.write(b"\x01\x00" * 160)
    sink.clear()
    sink.write(b"\x02\x00" * 160)
    await sink.drain()
    await sink.close()
    assert sink.data == b"\x01\x00" * 160 + b"\x02\x00" * 160
    assert sink.clears == 1 and sink.writes == 2 and sink.closed
    assert sink.duration == pytest.approx(0.02)


async def test_wav_sink_writes_the_file_on_close(tmp_path: Path) -> None:
    sink = WavFileSink(tmp_path / "out.wav", 24000)
    sink.write(tone(24000, 0.5))
    sink.clear()  # written audio was played: it stays in the file
    assert not (tmp_path / "out.wav").exists()
    await sink.close()
    await sink.close()  # once
    pcm, rate = read_wav(str(tmp_path / "out.wav"))
    assert rate == 24000 and pcm == tone(24000, 0.5) and sink.clears == 1


def test_wav_sink_needs_an_existing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such folder"):
        WavFileSink(tmp_path / "missing" / "out.wav")


# ------------------------------------------------------------ inside the session


class ToneSource:
    """A finite source at a fixed rate (no pacing): 10 chunks of 20 ms."""

    def __init__(self, rate: int) -> None:
        self.sample_rate = rate
        self.pcm = tone(rate, 0.2)

    async def stream(self) -> AsyncIterator[bytes]:
        size = self.sample_rate // 50 * 2
        for i in range(0, len(self.pcm), size):
            yield self.pcm[i : i + size]
            await asyncio.sleep(0)


async def collected_audio(peer: Peer, join_url: str, source: Any, *, mute: bool = False, **rates: int) -> bytes:
    session = UltravoxSession()
    if mute:
        session.mute_mic()
    await session.join_call(join_url, source=source, **rates)
    await asyncio.sleep(0.2)  # the finite source has been pumped out
    await session.leave_call()
    await asyncio.wait_for(peer.closed.wait(), WAIT)
    return peer.audio


async def test_session_resamples_the_source_to_the_call_input_rate(peer: Peer, join_url: str) -> None:
    audio = await collected_audio(peer, join_url, ToneSource(48000), input_sample_rate=16000)
    assert len(audio) == len(tone(16000, 0.2))  # soxr's flush at the end gives every sample
    spectrum = np.abs(np.fft.rfft(np.frombuffer(audio, "<i2")))
    assert np.argmax(spectrum) * 16000 / (len(audio) // 2) == pytest.approx(440, abs=10)


async def test_muted_mic_sends_zeros_of_the_same_length(peer_class: Any, serve_peer: Any) -> None:
    lengths = []
    for mute in (False, True):
        peer = peer_class()
        async with serve_peer(peer) as url:
            audio = await collected_audio(peer, url, ToneSource(48000), mute=mute, input_sample_rate=16000)
        lengths.append(len(audio))
        assert any(audio) != mute
    assert lengths[0] == lengths[1]


async def test_wav_source_takes_the_call_input_rate(peer: Peer, join_url: str, short_wav: Path) -> None:
    source = WavFileSource(short_wav, realtime=False, trailing_silence=0)
    audio = await collected_audio(peer, join_url, source, input_sample_rate=8000)
    assert source.sample_rate == 8000
    assert len(audio) == 5 * 320  # five 20 ms chunks at 8 kHz


def agent_audio_script(pcm: bytes) -> Any:
    async def script(peer: Peer, ws: ServerConnection) -> None:
        await peer.send(ws, *peer.greeting, {"type": "state", "state": "speaking"})
        for i in range(0, len(pcm), 960):
            await ws.send(pcm[i : i + 960])
        await peer.send(ws, {"type": "playback_clear_buffer"}, {"type": "state", "state": "listening"})
        await peer.record(ws)

    return script


async def test_sinks_take_the_output_rate_or_get_resampled(peer: Peer, join_url: str) -> None:
    pcm = tone(24000, 0.2)
    peer.script = agent_audio_script(pcm)
    plain, doubled = BytesSink(), BytesSink(48000)
    for sink in (plain, doubled):
        session = UltravoxSession()
        await session.join_call(join_url, sink=sink, input_sample_rate=16000, output_sample_rate=24000)
        assert session.input_sample_rate == 16000 and session.output_sample_rate == 24000
        await session.wait_for("status", lambda: session.status is UltravoxSessionStatus.LISTENING, timeout=WAIT)
        await session.leave_call()
    assert plain.sample_rate == 24000 and bytes(plain.data) == pcm and plain.clears == 1
    # 48 kHz: twice the samples, less what soxr still held (about 30 ms) when the clear dropped its tail
    assert 1.6 * len(pcm) < len(doubled.data) <= 2 * len(pcm) and doubled.clears == 1


async def test_output_rate_defaults_to_the_input_rate(peer: Peer, join_url: str) -> None:
    sink = BytesSink()
    session = UltravoxSession()
    await session.join_call(join_url, sink=sink, input_sample_rate=8000)
    assert session.output_sample_rate == 8000 and sink.sample_rate == 8000
    await session.leave_call()
    with pytest.raises(ValueError):
        await session.join_call(join_url, input_sample_rate=0)
