"""The calls this process hosts, and the question every node must answer: is a call live anywhere?"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from voxcall.engine.call import Call

__all__ = ["NORMAL_CLOSURE", "SERVICE_RESTART", "LiveCall", "LiveCalls", "LiveDirectory", "LiveListener"]

NORMAL_CLOSURE = 1000
SERVICE_RESTART = 1012
"""RFC 6455 close code 1012: the server is restarting; the client may reconnect (with a new call)."""


@dataclass(slots=True)
class LiveCall:
    """A call with a client connected to this process.

    `end()` asks the call to end from outside (REST delete, shutdown) and says
    how the host should close the socket; `done` is set once the host has ended it.
    """

    call: Call
    done: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    close_reason: str = ""

    def end(self, reason: str, *, code: int = NORMAL_CLOSURE, message: str = "") -> None:
        """End the call with `reason` (an end reason); the socket closes with `code` and `message`. Never blocks."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, message
        self.call.end(reason)


class LiveDirectory(Protocol):
    """Which calls some host is running, on this node or another.

    The stale-call sweep ends joined calls that no host holds. In-process
    (`LiveCalls`) is right for one server per database; several servers on one
    database share `RedisCluster` (server/redis_cluster.py: claims renewed by
    heartbeats), so the sweep can run on each of them.
    """

    async def held(self, call_ids: Iterable[str]) -> set[str]:
        """The subset of `call_ids` that a host is running now."""
        ...


class LiveListener(Protocol):
    """Told, without waiting, when a call starts or stops being hosted here (a shared directory keeps count)."""

    def added(self, call_id: str) -> None: ...

    def discarded(self, call_id: str) -> None: ...


class LiveCalls:
    """The in-process registry of hosted calls (also this node's `LiveDirectory`)."""

    def __init__(self) -> None:
        self._calls: dict[str, LiveCall] = {}
        self.listeners: list[LiveListener] = []

    def get(self, call_id: str) -> LiveCall | None:
        return self._calls.get(call_id)

    def add(self, call_id: str, live: LiveCall) -> LiveCall:
        self._calls[call_id] = live
        for listener in self.listeners:
            listener.added(call_id)
        return live

    def discard(self, call_id: str, live: LiveCall) -> None:
        """Unregister `live` (and not a newer host of the same id) and mark it done."""
        if self._calls.get(call_id) is live:
            del self._calls[call_id]
            for listener in self.listeners:
                listener.discarded(call_id)
        live.done.set()

    def values(self) -> list[LiveCall]:
        return list(self._calls.values())

    def __len__(self) -> int:
        return len(self._calls)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._calls))

    async def held(self, call_ids: Iterable[str]) -> set[str]:
        return {c for c in call_ids if c in self._calls}
