"""One worker thread for a shared model, serving every call fairly.

A shared embedded model (the LLM, Whisper) has one replica, so its requests run one at
a time on one thread. `FairWorker` keeps a queue per owner (a call) and serves the
owners round-robin, one job each, so no call holds the model beyond its own turn
however much it queues. Background jobs (an LLM prefill) run only when no foreground
job waits, at most one per owner: a newer one replaces it, a foreground job of the same
owner drops it, and a running one is stopped as soon as any foreground job arrives.
A speculative job (a preemptive reply drafted while its user pauses) is queued like a
foreground one, but while it is speculative another owner's foreground job stops it
(`Job.preempted`): a guess never holds up a turn that is due. `settle()` makes it an
ordinary job once its guess is taken. `cancel(owner)` drops an owner's waiting jobs
and stops its running one: what ending a call does.

A job is a callable run on the worker thread; it checks `job.stop` at its own chunk
boundaries (a token, a slice of the prompt, a Whisper window). Every job is either run
or dropped, exactly once, so whoever waits for it always hears back.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from typing import TypeVar

from voxcall.errors import ProviderError

__all__ = ["FairWorker", "Job", "run_on"]

T = TypeVar("T")

logger = logging.getLogger(__name__)


def _nothing() -> None:
    pass


class Job:
    """One unit of work for a `FairWorker`.

    Args:
        owner: the key its fairness is counted under (a call id).
        run: the work, called on the worker thread with the job.
        drop: called instead of `run` when the job is withdrawn before it starts
            (from the thread that withdraws it).
        background: low priority (an LLM prefill).
        stop: set when the job is cancelled or superseded; `run` checks it.
        speculative: stopped by another owner's foreground job until `FairWorker.settle()`.
    """

    __slots__ = ("_drop", "_run", "background", "owner", "preempted", "speculative", "stop")

    def __init__(
        self,
        owner: Hashable,
        run: Callable[[Job], None],
        *,
        drop: Callable[[], None] = _nothing,
        background: bool = False,
        stop: threading.Event | None = None,
        speculative: bool = False,
    ) -> None:
        self.owner = owner
        self.background = background
        self.speculative = speculative
        self.preempted = False
        """Stopped, while speculative, for another owner's job."""
        self.stop = stop or threading.Event()
        self._run = run
        self._drop = drop


class FairWorker:
    """A thread that runs `Job`s, round-robin over their owners, background jobs last.

    Thread-safe: `submit`, `withdraw` and `cancel` may be called from any thread (the
    event loop, in practice); none of them blocks on running work.
    """

    def __init__(self, name: str) -> None:
        self._cond = threading.Condition()
        self._queues: OrderedDict[Hashable, deque[Job]] = OrderedDict()  # owners with waiting jobs, in serving order
        self._background: OrderedDict[Hashable, Job] = OrderedDict()
        self._running: Job | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        """Whether a job is running or waiting."""
        with self._cond:
            return self._running is not None or bool(self._queues) or bool(self._background)

    @property
    def waiting(self) -> int:
        """Jobs queued and not started (foreground and background): the queue depth."""
        with self._cond:
            return sum(len(queue) for queue in self._queues.values()) + len(self._background)

    def submit(self, job: Job) -> int:
        """Queue `job`; return how many jobs will run before it starts (0: it starts next).

        Raises:
            RuntimeError: the worker is closed.
        """
        with self._cond:
            if self._closing:
                raise RuntimeError("the worker is closed")
            dropped = self._background.pop(job.owner, None)
            running = self._running
            if job.background:
                self._background[job.owner] = job
                if running is not None and running.background and running.owner == job.owner:
                    running.stop.set()  # superseded: one prefill per owner
                ahead = 0 if running is None or running.stop.is_set() else 1
            else:
                self._queues.setdefault(job.owner, deque()).append(job)
                if running is not None and running.background:
                    running.stop.set()  # a prefill yields to any turn at its next chunk
                elif running is not None and running.speculative and running.owner != job.owner \
                        and not job.speculative and not running.stop.is_set():
                    running.preempted = True  # a guess yields to another call's turn that is due
                    running.stop.set()
                ahead = self._ahead(job)
            self._cond.notify()
        if dropped is not None:
            dropped._drop()
        return ahead

    def settle(self, job: Job) -> bool:
        """`job`'s guess was right: from now on it is an ordinary job. False if it was preempted already."""
        with self._cond:
            job.speculative = False
            return not job.preempted

    def withdraw(self, job: Job) -> None:
        """Stop `job`: it is dropped if still waiting, and stops at its next chunk if running."""
        job.stop.set()
        with self._cond:
            queue = self._queues.get(job.owner)
            if queue is not None and job in queue:
                queue.remove(job)
                if not queue:
                    del self._queues[job.owner]
            elif self._background.get(job.owner) is job:
                del self._background[job.owner]
            else:
                return
        job._drop()

    def cancel(self, owner: Hashable) -> int:
        """Drop every waiting job of `owner` and stop its running one; returns how many were dropped."""
        with self._cond:
            dropped = list(self._queues.pop(owner, ()))
            if (background := self._background.pop(owner, None)) is not None:
                dropped.append(background)
            if self._running is not None and self._running.owner == owner:
                self._running.stop.set()
        for job in dropped:
            job.stop.set()
            job._drop()
        return len(dropped)

    def close(self) -> None:
        """Refuse new jobs, run the waiting ones (a closed model fails them fast), stop the thread. Blocking."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    # --- worker thread -------------------------------------------------------------------

    def _serve(self) -> None:
        while (job := self._next()) is not None:
            try:
                job._run(job)
            except Exception:  # a job reports its own errors; this only keeps the thread alive
                logger.exception("a worker job failed")
            finally:
                with self._cond:
                    self._running = None

    def _next(self) -> Job | None:
        with self._cond:
            while not self._queues and not self._background:
                if self._closing:
                    return None
                self._cond.wait()
            if self._queues:
                owner, queue = next(iter(self._queues.items()))
                job = queue.popleft()
                if queue:
                    self._queues.move_to_end(owner)  # its next job waits for every other owner's
                else:
                    del self._queues[owner]
            else:
                _, job = self._background.popitem(last=False)
            self._running = job
            return job

    def _ahead(self, job: Job) -> int:
        """How many jobs will run before `job` (just queued), serving one job per owner per round."""
        owners = list(self._queues)
        mine = owners.index(job.owner)
        rounds = len(self._queues[job.owner]) - 1  # the owner's own earlier jobs
        ahead = rounds
        for position, owner in enumerate(owners):
            if owner != job.owner:
                ahead += min(len(self._queues[owner]), rounds + (1 if position < mine else 0))
        running = self._running  # a stopped one (a superseded turn, a prefill) ends at its next chunk
        return ahead + (1 if running is not None and not running.background and not running.stop.is_set() else 0)


async def run_on(
    worker: FairWorker,
    owner: Hashable,
    fn: Callable[[threading.Event], T],
    *,
    on_queued: Callable[[int], None] | None = None,
    name: str = "the model",
    background: bool = False,
) -> T:
    """Run `fn(stop)` on `worker` under `owner` and return its result (or raise its exception).

    Cancellation-safe: cancelling the caller drops the job if it is still waiting, or sets
    `stop` for `fn` to check. `on_queued(ahead)` is called at once if the job has to wait.
    `background`: a `FairWorker` background job (after every foreground job; a newer one of the
    same owner, or any foreground job of it, drops it with `ProviderError`).

    Raises:
        ProviderError: the worker is closed, or the job was dropped by `FairWorker.cancel`.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():  # the caller was cancelled
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run(job: Job) -> None:
        try:
            result, error = fn(job.stop), None
        except BaseException as exc:  # handed to the caller, whatever it is
            result, error = None, exc
        _call_soon(loop, settle, result, error)

    def drop() -> None:
        _call_soon(loop, settle, None, ProviderError(f"{name}: the request was cancelled"))

    job = Job(owner, run, drop=drop, background=background)
    try:
        ahead = worker.submit(job)
    except RuntimeError as exc:
        raise ProviderError(f"{name} is closed") from exc
    if ahead and on_queued is not None:
        on_queued(ahead)
    try:
        return await future
    finally:
        worker.withdraw(job)


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: object) -> None:
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass
