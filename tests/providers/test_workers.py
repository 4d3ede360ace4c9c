"""FairWorker: round-robin over calls, background work last, cancellation of waiting and running work.

A fake slow back end stands behind the real worker: each job records that it ran and
holds the thread until the test lets it go (or for a few milliseconds per step, checking
its stop flag like a model checks it between tokens).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from voxcall.errors import ProviderError
from voxcall.providers.base import TextDelta
from voxcall.providers.llm_queue import STARTED, Channel, Listener, queued_events
from voxcall.providers.workers import FairWorker, Job, run_on

WAIT = 5.0


class Recorder:
    """Jobs that log their name when they run (or are dropped); a gate holds the first one."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.dropped: list[str] = []
        self.stopped: list[str] = []
        self.gate = threading.Event()
        self.lock = threading.Lock()

    def job(self, owner: str, name: str, *, background: bool = False, hold: bool = False,
            speculative: bool = False) -> Job:
        def run(job: Job) -> None:
            with self.lock:
                self.log.append(name)
            if hold:
                while not self.gate.wait(0.005):
                    if job.stop.is_set():
                        with self.lock:
                            self.stopped.append(name)
                        return

        return Job(owner, run, drop=lambda: self.dropped.append(name), background=background, speculative=speculative)


@pytest.fixture
def worker() -> Iterator[FairWorker]:
    w = FairWorker("test-worker")
    yield w
    w.close()


def wait_for(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def test_two_calls_requests_interleave(worker: FairWorker) -> None:
    r = Recorder()
    worker.submit(r.job("x", "hold", hold=True))
    wait_for(lambda: r.log == ["hold"])
    aheads = [worker.submit(r.job("a", f"a{i}")) for i in range(3)]
    aheads += [worker.submit(r.job("b", f"b{i}")) for i in range(3)]
    r.gate.set()
    wait_for(lambda: not worker.busy)
    assert r.log == ["hold", "a0", "b0", "a1", "b1", "a2", "b2"]
    assert aheads == [1, 2, 3, 2, 4, 6]  # the jobs that run before each one, the held one included


def test_a_flood_of_one_call_delays_another_call_by_one_job(worker: FairWorker) -> None:
    r = Recorder()
    worker.submit(r.job("flood", "hold", hold=True))
    wait_for(lambda: r.log == ["hold"])
    for i in range(50):
        worker.submit(r.job("flood", f"f{i}"))
    assert worker.submit(r.job("other", "turn")) == 2
    r.gate.set()
    wait_for(lambda: not worker.busy)
    assert r.log.index("turn") == 2  # after the running job and one more of the flood


def test_cancel_drops_waiting_jobs_and_stops_the_running_one(worker: FairWorker) -> None:
    r = Recorder()
    worker.submit(r.job("ended", "running", hold=True))
    wait_for(lambda: r.log == ["running"])
    for i in range(3):
        worker.submit(r.job("ended", f"waiting{i}"))
    worker.submit(r.job("other", "other"))
    assert worker.cancel("ended") == 3
    wait_for(lambda: "other" in r.log)
    assert r.stopped == ["running"]
    assert sorted(r.dropped) == ["waiting0", "waiting1", "waiting2"]
    assert r.log == ["running", "other"]  # the dropped jobs never ran


def test_background_work_waits_is_replaced_and_yields(worker: FairWorker) -> None:
    r = Recorder()
    worker.submit(r.job("x", "hold", hold=True))
    wait_for(lambda: r.log == ["hold"])
    worker.submit(r.job("a", "prefill-old", background=True))
    worker.submit(r.job("a", "prefill-new", background=True))  # one prefill per call: the old one is dropped
    worker.submit(r.job("b", "prefill-b", background=True))
    worker.submit(r.job("b", "turn-b"))  # a turn of b drops b's own prefill
    worker.submit(r.job("c", "turn-c"))
    r.gate.set()
    wait_for(lambda: not worker.busy)
    assert r.log == ["hold", "turn-b", "turn-c", "prefill-new"]
    assert r.dropped == ["prefill-old", "prefill-b"]


def test_a_running_draft_gives_way_to_another_calls_turn_only(worker: FairWorker) -> None:
    r = Recorder()
    draft = r.job("a", "draft-a", hold=True, speculative=True)
    worker.submit(draft)
    wait_for(lambda: r.log == ["draft-a"])
    worker.submit(r.job("b", "draft-b", speculative=True))  # another guess does not stop it
    worker.submit(r.job("a", "turn-a"))  # nor does its own call's work
    time.sleep(0.05)
    assert r.stopped == [] and not draft.preempted
    worker.submit(r.job("c", "turn-c"))  # a turn that is due, of another call: the guess gives way
    wait_for(lambda: r.stopped == ["draft-a"])
    assert draft.preempted
    wait_for(lambda: len(r.log) == 4)
    assert r.log[1:] == ["draft-b", "turn-a", "turn-c"]  # then round-robin in the order the calls queued


def test_a_settled_draft_is_an_ordinary_job(worker: FairWorker) -> None:
    r = Recorder()
    draft = r.job("a", "draft", hold=True, speculative=True)
    worker.submit(draft)
    wait_for(lambda: r.log == ["draft"])
    assert worker.settle(draft)  # its guess was right: the reply is due
    worker.submit(r.job("b", "turn"))
    time.sleep(0.05)
    assert r.stopped == [] and not draft.preempted
    r.gate.set()
    wait_for(lambda: r.log == ["draft", "turn"])


def test_a_running_prefill_is_stopped_by_any_turn(worker: FairWorker) -> None:
    r = Recorder()
    worker.submit(r.job("a", "prefill", background=True, hold=True))
    wait_for(lambda: r.log == ["prefill"])
    assert worker.submit(r.job("b", "turn")) == 0  # the prefill does not count: it stops at its next chunk
    wait_for(lambda: r.log == ["prefill", "turn"])
    assert r.stopped == ["prefill"]


def test_withdraw_and_close(worker: FairWorker) -> None:
    r = Recorder()
    worker.submit(r.job("x", "hold", hold=True))
    wait_for(lambda: r.log == ["hold"])
    waiting = r.job("a", "waiting")
    worker.submit(waiting)
    worker.withdraw(waiting)
    assert r.dropped == ["waiting"] and waiting.stop.is_set()
    worker.submit(r.job("a", "last"))
    r.gate.set()
    worker.close()  # runs what still waits, then stops
    assert r.log == ["hold", "last"]
    with pytest.raises(RuntimeError):
        worker.submit(r.job("a", "late"))


# ------------------------------------------------------------------ the asyncio side


def slow_events(count: int, step: float) -> Callable[[Channel], None]:
    """A fake model: `count` text deltas, `step` seconds apart, stopping when told (as a model does per token)."""

    def work(channel: Channel) -> None:
        try:
            channel.put(STARTED)
            for i in range(count):
                if channel.stopped.wait(step):
                    return
                channel.put(TextDelta(f"{i} "))
        finally:
            channel.finish()

    return work


async def test_ending_a_call_cancels_its_queued_and_running_model_work(worker: FairWorker) -> None:
    closed = threading.Event()
    running = queued_events(worker, slow_events(1000, 0.01), "ended", closed=closed)
    assert isinstance(await anext(running), TextDelta)
    waiting = [queued_events(worker, slow_events(1000, 0.01), "ended", closed=closed) for _ in range(3)]
    starts = [asyncio.ensure_future(anext(stream, None)) for stream in waiting]
    await asyncio.sleep(0.05)
    started = time.monotonic()
    other = asyncio.ensure_future(anext(queued_events(worker, slow_events(1, 0.0), "other", closed=closed)))
    await asyncio.sleep(0)
    assert worker.cancel("ended") == 3  # what the session's end() does
    assert await asyncio.wait_for(other, WAIT) == TextDelta("0 ")
    assert time.monotonic() - started < 1.0  # not after the ended call's 4 x 10 s of work
    assert await asyncio.wait_for(asyncio.gather(*starts), WAIT) == [None, None, None]  # dropped: empty streams
    rest = [event async for event in running]
    assert len(rest) < 100  # the running one stopped at its next step
    await running.aclose()


async def test_queued_events_reports_waiting_and_starting(worker: FairWorker) -> None:
    closed = threading.Event()
    heard: list[object] = []
    first = queued_events(worker, slow_events(3, 0.05), "a", closed=closed)
    assert isinstance(await anext(first), TextDelta)
    listener = Listener(on_queued=heard.append, on_started=lambda: heard.append("started"))
    second = queued_events(worker, slow_events(1, 0.0), "b", closed=closed, listener=listener)
    task = asyncio.ensure_future(anext(second))
    await asyncio.sleep(0.01)
    assert heard == [1]  # at once: one request ahead
    assert await asyncio.wait_for(task, WAIT) == TextDelta("0 ")
    assert heard == [1, "started"]
    await first.aclose()
    await second.aclose()


async def test_closing_the_consumer_of_a_waiting_request_withdraws_it(worker: FairWorker) -> None:
    closed = threading.Event()
    first = queued_events(worker, slow_events(5, 0.05), "a", closed=closed)
    await anext(first)
    ran = threading.Event()

    def never(channel: Channel) -> None:
        ran.set()
        channel.finish()

    second = queued_events(worker, never, "b", closed=closed)
    task = asyncio.ensure_future(anext(second, None))
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await first.aclose()
    await asyncio.sleep(0.1)
    assert not ran.is_set() and not worker.busy


async def test_run_on_returns_raises_and_is_dropped(worker: FairWorker) -> None:
    assert await run_on(worker, "a", lambda stop: 42) == 42
    with pytest.raises(ValueError, match="bad"):
        await run_on(worker, "a", lambda stop: (_ for _ in ()).throw(ValueError("bad")))
    gate = threading.Event()
    holding = asyncio.ensure_future(run_on(worker, "a", lambda stop: gate.wait(WAIT)))
    await asyncio.sleep(0.01)
    queued: list[int] = []
    dropped = asyncio.ensure_future(run_on(worker, "b", lambda stop: 1, on_queued=queued.append))
    await asyncio.sleep(0.01)
    assert queued == [1]
    worker.cancel("b")
    with pytest.raises(ProviderError, match="cancelled"):
        await dropped
    gate.set()
    assert await holding is True


def test_a_stopped_running_job_is_not_counted_ahead(worker: FairWorker) -> None:
    r = Recorder()
    barged = r.job("a", "old turn", hold=True)
    worker.submit(barged)
    wait_for(lambda: r.log == ["old turn"])
    barged.stop.set()  # the user barged in: it ends at its next step
    assert worker.submit(r.job("a", "new turn")) == 0
    wait_for(lambda: r.log == ["old turn", "new turn"])


def test_waiting_counts_queued_jobs_of_every_owner_not_the_running_one(worker: FairWorker) -> None:
    jobs = Recorder()
    assert worker.waiting == 0
    worker.submit(jobs.job("a", "a1", hold=True))
    wait_for(lambda: jobs.log == ["a1"])
    assert worker.waiting == 0  # running, not waiting
    worker.submit(jobs.job("a", "a2"))
    worker.submit(jobs.job("b", "b1"))
    worker.submit(jobs.job("c", "prefill", background=True))
    assert worker.waiting == 3
    assert worker.cancel("b") == 1
    assert worker.waiting == 2
    jobs.gate.set()
    wait_for(lambda: worker.waiting == 0 and not worker.busy)
    assert jobs.log == ["a1", "a2", "prefill"]
