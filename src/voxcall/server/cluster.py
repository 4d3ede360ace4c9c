"""Reaching a live call from any node: the `Cluster` seam, and its in-process implementation.

REST requests about a live call (send_data_message, DELETE /api/calls/{id}) may
land on any node behind the load balancer, while the call runs on the one node
its client joined. `Cluster` hides where: `LocalCluster` (one node, the default)
looks in this process's `LiveCalls`; `voxcall.server.redis_cluster.RedisCluster`
also finds the holder in Redis and hands the request to it over pub/sub.
A cluster is also the `LiveDirectory` the stale-call sweep asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable
from typing import Any, Protocol

from voxcall.protocol.realtime import parse_client
from voxcall.server.live import LiveCall, LiveCalls

__all__ = ["Cluster", "LocalCluster", "deliver", "end_here"]


class Cluster(Protocol):
    """Where calls are hosted, across every node sharing the database."""

    node_id: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise when the shared state cannot be reached (readiness)."""
        ...

    async def held(self, call_ids: Iterable[str]) -> set[str]:
        """The subset of `call_ids` some node hosts now (`LiveDirectory`)."""
        ...

    async def send(self, call_id: str, message: dict[str, Any]) -> bool:
        """Hand a checked data message (forced_agent_message, hang_up, user_text_message) to the call; False if it is live nowhere."""
        ...

    async def end(self, call_id: str, reason: str, *, wait: float) -> bool:
        """End the call with `reason` wherever it runs, waiting up to `wait` s for it to end; False if it is live nowhere."""
        ...


def deliver(live: LiveCall, message: dict[str, Any]) -> None:
    """Give a data message (already checked by the REST route) to a call hosted here."""
    live.call.receive(parse_client(json.dumps(message)))


async def end_here(live: LiveCall, reason: str, wait: float) -> None:
    """End a call hosted here and wait, at most `wait` s, until its host has ended it."""
    live.call.end(reason)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(live.done.wait(), wait)


class LocalCluster:
    """One node: the calls live in this process or nowhere."""

    node_id = "local"

    def __init__(self, live: LiveCalls) -> None:
        self.live = live

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def held(self, call_ids: Iterable[str]) -> set[str]:
        return await self.live.held(call_ids)

    async def send(self, call_id: str, message: dict[str, Any]) -> bool:
        live = self.live.get(call_id)
        if live is None:
            return False
        deliver(live, message)
        return True

    async def end(self, call_id: str, reason: str, *, wait: float) -> bool:
        live = self.live.get(call_id)
        if live is None:
            return False
        await end_here(live, reason, wait)
        return True
