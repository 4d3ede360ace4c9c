"""How many calls this node takes at once: joins beyond its call count or CPU load are refused (close 1013).

`VOXCALL_MAX_NODE_CALLS` bounds the calls one node hosts (a per-node limit,
unlike `VOXCALL_MAX_CALLS`, the per-account concurrency limit reported as
allowedConcurrentCalls); `VOXCALL_MAX_NODE_LOAD` refuses joins while the
machine's 1-minute load average per CPU is above it. A refused join leaves its
join token unused, so the client may try again, through the load balancer, on
another node. The load is reported in /readyz and in /metrics.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["NodeCapacity", "cpu_load"]


def cpu_load() -> float:
    """The 1-minute load average divided by the number of CPUs (1.0 = every CPU busy)."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:  # not available on this platform
        return 0.0


class NodeCapacity:
    """The join slots of one node. `refusal()` then `slot()`, with no `await` between them, admit exactly."""

    def __init__(self, max_calls: int = 0, max_load: float = 0.0, *, load: Callable[[], float] = cpu_load) -> None:
        self.max_calls = max_calls
        self.max_load = max_load
        self.hosting = 0
        """Joins admitted and not yet over (being set up or live)."""
        self._load = load

    def load(self) -> float:
        return self._load()

    def refusal(self) -> str | None:
        """Why a join must be turned away now, or None when it may go on."""
        if self.max_calls and self.hosting >= self.max_calls:
            return f"node at capacity: {self.hosting} calls (VOXCALL_MAX_NODE_CALLS={self.max_calls}); try again later"
        if self.max_load:
            load = self.load()
            if load > self.max_load:
                return f"node overloaded: CPU load {load:.2f} per CPU (VOXCALL_MAX_NODE_LOAD={self.max_load:g}); try again later"
        return None

    def full(self) -> bool:
        return self.refusal() is not None

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one call slot for the block."""
        self.hosting += 1
        try:
            yield
        finally:
            self.hosting -= 1

    def report(self) -> dict[str, Any]:
        """The node's load, as /readyz shows it."""
        return {"calls": self.hosting, "maxCalls": self.max_calls or None, "cpuLoad": round(self.load(), 3),
                "maxCpuLoad": self.max_load or None}
