"""Auto llama.cpp threads: the cores other processes use, and the thread count that follows from them."""

from __future__ import annotations

import subprocess
import sys
import time

from voxcall.providers.cpu import CpuShare, threads_for


class _Share(CpuShare):
    def __init__(self, cores: int, others: float) -> None:  # no sampling thread: a fixed reading
        self.cores, self._fixed = cores, others

    @property
    def others(self) -> float:
        return self._fixed


def test_threads_follow_the_free_cores_between_one_and_the_maximum() -> None:
    assert threads_for(_Share(2, 0.0), 2) == 2
    assert threads_for(_Share(2, 0.1), 2) == 2  # background noise keeps both cores
    assert threads_for(_Share(2, 1.0), 2) == 1  # a busy core elsewhere: one thread, no spinning barrier
    assert threads_for(_Share(2, 2.0), 2) == 1  # never below one
    assert threads_for(_Share(8, 1.0), 4) == 4  # never above the maximum
    assert threads_for(None, 3) == 3  # unknown (no /proc/stat): the maximum


def test_others_are_the_machines_busy_time_less_our_own_over_the_last_readings() -> None:
    readings = iter([(0.0, 10.0, 5.0), (0.0, 10.0, 5.0), (0.5, 11.0, 5.5), (1.0, 12.0, 6.0), (1.5, 12.5, 6.5)])
    now = {"t": 0.0, "busy": 0.0, "own": 0.0}

    def step() -> None:
        now["t"], now["busy"], now["own"] = next(readings)

    step()
    share = CpuShare(2, period=3600, machine=lambda: now["busy"], own=lambda: now["own"], clock=lambda: now["t"])
    try:
        step()
        share.sample()
        step()
        share.sample()  # 0.5 s: the machine spent 1.0 s, we 0.5 s -> others 1 core
        assert share.others == 1.0
        step()
        share.sample()
        step()
        share.sample()  # over the last second (3 readings kept): machine 1.5 s, we 1.0 s -> others 0.5
        assert share.others == 0.5
    finally:
        share.close()


def test_a_busy_process_elsewhere_is_seen() -> None:
    share = CpuShare(period=0.2)
    try:
        busy = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass"])
        try:
            deadline = time.monotonic() + 2.5
            while time.monotonic() < deadline and share.others < 0.6:
                time.sleep(0.1)
            assert share.others >= 0.6, f"a busy core elsewhere reads as {share.others:.2f} cores"
        finally:
            busy.kill()
            busy.wait()
    finally:
        share.close()
