"""Piper text to speech (piper-tts 1.x, GPL-3.0-or-later: an optional extra, imported only here).

`PiperVoice.synthesize()` yields one audio chunk per sentence and nothing inside one,
so the text is cut into sentences first, and a long first sentence at its first clause
breaks, so the first audio comes sooner. Pieces are synthesised on ONE worker thread,
one piece per job: a job puts its audio on the request's queue and queues the next
piece behind whatever other calls have waiting, so concurrent calls take turns piece by
piece instead of one long reply holding the thread. Cancellation sets a flag that stops
the request at the next piece.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from voxcall.errors import ProviderError

__all__ = ["PiperTTS", "split_text"]

logger = logging.getLogger(__name__)

_END = object()
# A sentence ends at . ! ? or … (optionally followed by closing quotes or brackets) before a space.
_SENTENCE_END = re.compile("(?<=[.!?\u2026])([\"'\u201d\u2019)\\]]*)\\s+")  # ellipsis, closing quotes
_CLAUSE_END = re.compile("(?<=[,;:\u2014\u2013])\\s+")  # em and en dashes
# Do not end a sentence after these (lower-cased, without the dot).
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "prof", "sr", "jr"})


def split_text(text: str, *, first_chars: int = 50, max_chars: int = 200, min_chars: int = 12) -> list[str]:
    """Cut `text` into the pieces Piper synthesises one at a time.

    Sentences, in order; the first sentence is cut further at clause breaks (, ; : dashes)
    when longer than `first_chars`, and any later one when longer than `max_chars`.
    Clause pieces shorter than `min_chars` stay with their neighbour. `first_chars=0`
    leaves the first sentence whole.
    """
    pieces: list[str] = []
    for index, sentence in enumerate(_sentences(" ".join(text.split()))):
        limit = first_chars if index == 0 and first_chars > 0 else max_chars
        pieces.extend(_clauses(sentence, min_chars) if len(sentence) > limit else [sentence])
    return pieces


def _sentences(text: str) -> Iterator[str]:
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.start() + len(match.group(1))  # keep closing quotes with their sentence
        words = text[start:end].split()
        if words and words[-1].rstrip(".").casefold() in _ABBREVIATIONS:
            continue
        if sentence := text[start:end].strip():
            yield sentence
        start = match.end()
    if tail := text[start:].strip():
        yield tail


def _clauses(sentence: str, min_chars: int) -> list[str]:
    pieces: list[str] = []
    for clause in _CLAUSE_END.split(sentence):
        if pieces and len(pieces[-1]) < min_chars:
            pieces[-1] = f"{pieces[-1]} {clause}"
        else:
            pieces.append(clause)
    if len(pieces) > 1 and len(pieces[-1]) < min_chars:
        pieces[-2:] = [f"{pieces[-2]} {pieces[-1]}"]
    return pieces


class _Request:
    """One `synthesize()` call: its pieces, its queue back to the event loop and its cancel flag.

    The queue is unbounded, but holds at most one item per Piper chunk of this text.
    """

    def __init__(self, voice: Any, pieces: list[str], loop: asyncio.AbstractEventLoop) -> None:
        self.voice = voice
        self.pieces = deque(pieces)
        self.loop = loop
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.stopped = threading.Event()

    def put(self, item: object) -> None:
        """Called from the worker thread."""
        if self.stopped.is_set():
            return
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.stopped.set()


class PiperTTS:
    """Piper voices on one dedicated worker thread. Loading is blocking (~1 s per voice).

    Args:
        voices: `{voice id: (model .onnx, config .json)}`, verified (`models.piper_voice_paths`).
        default_voice: used when `synthesize()` gets no voice; the first voice when None.
        intra_op_threads: onnxruntime threads per synthesis. 1 leaves the other core of a
            2-core machine to the LLM, which generates the next sentence meanwhile.
        volume: gain after Piper's per-piece peak normalisation; below 1.0 leaves headroom
            for resampling.
        first_chars, max_chars: see `split_text`.
    """

    name = "piper"

    def __init__(
        self,
        voices: Mapping[str, tuple[Path, Path]],
        *,
        default_voice: str | None = None,
        intra_op_threads: int = 1,
        volume: float = 0.9,
        first_chars: int = 50,
        max_chars: int = 200,
    ) -> None:
        if not voices:
            raise ProviderError("no Piper voice given")
        piper = _import_piper()
        started = time.perf_counter()
        self._voices = {name: _load_voice(piper, path, intra_op_threads) for name, path in voices.items()}
        self.load_seconds = time.perf_counter() - started
        rates = {voice.config.sample_rate for voice in self._voices.values()}
        if len(rates) != 1:
            raise ProviderError(f"Piper voices with different sample rates cannot share one TTS: {sorted(rates)}")
        self.sample_rate: int = rates.pop()
        self.default_voice = default_voice or next(iter(self._voices))
        if self.default_voice not in self._voices:
            raise ProviderError(f"unknown default voice {self.default_voice!r}; known: {', '.join(self._voices)}")
        self.intra_op_threads = intra_op_threads
        self._config = piper.SynthesisConfig(normalize_audio=True, volume=volume)
        self._first_chars, self._max_chars = first_chars, max_chars
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts-piper")
        self._queued = 0  # pieces submitted and not started (queue_depth)
        self._count = threading.Lock()
        self._closed = threading.Event()
        logger.info(
            "loaded Piper voices %s in %.2f s (%d threads)", list(self._voices), self.load_seconds, intra_op_threads
        )

    def voices(self) -> list[str]:
        """The voice ids, e.g. ["joe"]."""
        return list(self._voices)

    def synthesize(self, text: str, *, voice: str | None = None) -> AsyncIterator[bytes]:
        """Yield s16le mono PCM at `sample_rate`, one chunk per piece of `split_text(text)`.

        Each chunk is yielded as soon as it is synthesised; the next piece is synthesised
        meanwhile. Cancellation-safe: closing or cancelling the consumer stops the request
        after the piece being synthesised; nothing is left queued.

        Raises:
            ProviderError: at once for an unknown voice; while iterating when Piper fails
                or the TTS was closed.
        """
        name = voice or self.default_voice
        if name not in self._voices:
            raise ProviderError(f"unknown Piper voice {name!r}; known: {', '.join(self._voices)}")
        pieces = split_text(text, first_chars=self._first_chars, max_chars=self._max_chars)
        return self._stream(self._voices[name], pieces)

    def queue_depth(self) -> int:
        """Pieces of text waiting for the voice thread (not the one being synthesised), of every call."""
        return self._queued

    async def warm_up(self) -> None:
        """Synthesise a short sentence with every voice once (the first run allocates)."""
        started = time.perf_counter()
        for name in self._voices:
            async for _ in self.synthesize("Hello there.", voice=name):
                pass
        logger.info("Piper warmed up in %.2f s", time.perf_counter() - started)

    def close(self) -> None:
        """Finish the piece being synthesised and refuse new work. Blocking.

        Requests still running or waiting end with `ProviderError`.
        """
        self._closed.set()
        self._executor.shutdown(wait=True)

    async def _stream(self, voice: Any, pieces: list[str]) -> AsyncIterator[bytes]:
        if not pieces:
            return
        request = _Request(voice, pieces, asyncio.get_running_loop())
        self._submit(request)
        try:
            while (item := await request.queue.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            request.stopped.set()

    def _submit(self, request: _Request) -> None:
        with self._count:
            self._queued += 1
        try:
            self._executor.submit(self._job, request)
        except RuntimeError as exc:  # shut down by close()
            with self._count:
                self._queued -= 1
            raise ProviderError("Piper was closed") from exc

    def _job(self, request: _Request) -> None:
        """Worker thread: synthesise one piece, then queue the next behind other requests."""
        with self._count:
            self._queued -= 1
        try:
            if request.stopped.is_set():
                return
            if self._closed.is_set():
                raise ProviderError("Piper was closed")
            piece = request.pieces.popleft()
            for chunk in request.voice.synthesize(piece, syn_config=self._config):
                if request.stopped.is_set():
                    return
                request.put(chunk.audio_int16_bytes)
            if request.pieces:
                self._submit(request)
                return
        except ProviderError as exc:
            request.put(exc)
        except Exception as exc:  # onnxruntime and espeak errors become ProviderError
            error = ProviderError(f"Piper failed: {exc!r}")
            error.__cause__ = exc
            request.put(error)
        request.put(_END)


def _load_voice(piper: SimpleNamespace, paths: tuple[Path, Path], threads: int) -> Any:
    """Build the PiperVoice with our own session options (PiperVoice.load would use every core)."""
    model, config = paths
    options = piper.onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = piper.onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    # Idle pool threads must not spin: on 2 cores they would steal time from the LLM and Whisper.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        settings = json.loads(Path(config).read_text(encoding="utf-8"))
        session = piper.onnxruntime.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ProviderError(f"cannot load Piper voice {model}: {exc}") from exc
    return piper.PiperVoice(session=session, config=piper.PiperConfig.from_dict(settings))


def _import_piper() -> SimpleNamespace:
    try:
        import onnxruntime
        from piper.config import PiperConfig, SynthesisConfig
        from piper.voice import PiperVoice
    except ImportError as exc:
        raise ProviderError("piper-tts is not installed (pip install 'voxcall[piper]')") from exc
    return SimpleNamespace(
        onnxruntime=onnxruntime, PiperConfig=PiperConfig, PiperVoice=PiperVoice, SynthesisConfig=SynthesisConfig
    )
