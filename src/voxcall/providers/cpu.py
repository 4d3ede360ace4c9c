"""How many cores the rest of the machine leaves this process, for llama.cpp's thread count.

llama.cpp's threads meet at a spinning barrier after every operation, so a thread count that
assumes idle cores collapses when another process holds one: with 2 threads on 2 cores beside
a busy core, replies went from about 1 s to 25-57 s. One thread never collapses but is slower
on an idle machine. `CpuShare` samples `/proc/stat` (all CPU time spent on the machine) and
`os.times()` (this process's, all threads) twice a second on a daemon thread, and says how many
cores other processes used over the last second; `threads_for()` turns that into a thread
count for the next generation. Off Linux (no `/proc/stat`) nothing is known, and the
configured maximum is used.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["CpuShare", "threads_for"]

_STAT = Path("/proc/stat")
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal (not idle, iowait, guest: counted in user)


def _machine_busy_seconds() -> float | None:
    try:
        first = _STAT.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    values = [int(v) for v in first[1:]]
    return sum(values[i] for i in _BUSY_FIELDS if i < len(values)) / ticks


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system


class CpuShare:
    """Cores used by other processes over about the last second, sampled every `period` seconds."""

    def __init__(self, cores: int | None = None, period: float = 0.5, *,
                 machine: Callable[[], float | None] = _machine_busy_seconds,
                 own: Callable[[], float] = _own_seconds, clock: Callable[[], float] = time.monotonic) -> None:
        self.cores = cores or os.cpu_count() or 1
        self._period = period
        self._machine, self._own, self._clock = machine, own, clock
        self._others = 0.0
        self._samples: list[tuple[float, float, float]] = []  # (monotonic, machine busy, own), newest last
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if machine() is not None:
            self.sample()
            self._thread = threading.Thread(target=self._loop, name="cpu-share", daemon=True)
            self._thread.start()

    @property
    def others(self) -> float:
        """Cores' worth of CPU other processes used lately (0 when unknown)."""
        return self._others

    def close(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._period):
            self.sample()

    def sample(self) -> None:
        """Take one reading (the daemon thread does this every `period` seconds)."""
        busy = self._machine()
        if busy is None:
            return
        now = self._clock()
        self._samples = [*self._samples[-2:], (now, busy, self._own())]
        then, busy_then, own_then = self._samples[0]
        if now - then > 0:
            others = ((busy - busy_then) - (self._samples[-1][2] - own_then)) / (now - then)
            self._others = min(max(others, 0.0), float(self.cores))


def threads_for(share: CpuShare | None, maximum: int) -> int:
    """Threads for the next generation: the cores others leave free (rounded down), 1 to `maximum`."""
    if share is None:
        return maximum
    free = share.cores - share.others
    return max(1, min(maximum, int(free + 0.25)))  # 0.25: a sliver of background work still leaves the core
