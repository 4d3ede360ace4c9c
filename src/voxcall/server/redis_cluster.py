"""Many nodes, one Redis: which node holds which call (with heartbeats), and pub/sub to reach it.

Keys (all under `voxcall:`):

- `call:{callId}` = the holder's node id, with a TTL of three heartbeats. The holder
  sets it when the call goes live, refreshes it every heartbeat and deletes it when
  the call ends. A node that dies stops refreshing: within three heartbeats the call
  is held nowhere, and the stale-call sweep of any node ends it.
- channel `node:{nodeId}`: commands for the calls a node holds, as JSON:
  `{"op": "data", "callId", "message"}` (send_data_message) and
  `{"op": "end", "callId", "reason"}` (DELETE /api/calls/{id}).

A node that loses Redis for longer than three heartbeats loses its claims, and
another node's sweep may end its calls: Redis is part of the cluster's core.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from voxcall.server.cluster import deliver, end_here
from voxcall.server.live import LiveCalls
from voxcall.server.redis_outage import redis_guarded

__all__ = ["PREFIX", "RedisCluster", "connect", "default_node_id"]

logger = logging.getLogger(__name__)

PREFIX = "voxcall:"
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def default_node_id() -> str:
    """host-pid-random: unique per process, readable in logs."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def connect(url: str, *, timeout: float = 5.0) -> Redis:
    """A Redis client for `url` (redis://host:port/db) answering str.

    Every connection attempt and command is bounded by `timeout` seconds, and a failed one is
    retried once (a connection Redis dropped is replaced), so an unreachable Redis fails fast.
    """
    return Redis.from_url(url, decode_responses=True, health_check_interval=30, socket_timeout=timeout,
                          socket_connect_timeout=timeout, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 1))


class RedisCluster:
    """`Cluster` over Redis. Owns `redis` (closed by `close()`); `start()` needs a running loop."""

    def __init__(self, live: LiveCalls, redis: Redis, *, node_id: str | None = None, heartbeat: float = 5.0) -> None:
        self.live = live
        self.redis = redis
        self.node_id = node_id or default_node_id()
        self.heartbeat = heartbeat
        self.ttl_ms = max(1, round(heartbeat * 3 * 1000))
        self._release = redis.register_script(_RELEASE)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._pubsub: Any = None

    @staticmethod
    def call_key(call_id: str) -> str:
        return f"{PREFIX}call:{call_id}"

    @staticmethod
    def channel(node_id: str) -> str:
        return f"{PREFIX}node:{node_id}"

    # ------------------------------------------------------------ life

    async def start(self) -> None:
        """Subscribe to this node's channel and start the heartbeat."""
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self.channel(self.node_id))
        self.live.listeners.append(self)
        loop = asyncio.get_running_loop()
        self._loops = [loop.create_task(self._listen(), name="cluster-listen"),
                       loop.create_task(self._beat(), name="cluster-heartbeat")]
        logger.info("cluster node %s: calls and limits shared through Redis", self.node_id)

    async def close(self) -> None:
        """Stop listening; release the claims still held; close the client."""
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        with contextlib.suppress(Exception):
            for call_id in list(self.live):
                await self._release(keys=[self.call_key(call_id)], args=[self.node_id])
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        await self.redis.aclose()

    @redis_guarded
    async def ping(self) -> None:
        await self.redis.ping()

    # ------------------------------------------------------------ claims (LiveListener)

    def added(self, call_id: str) -> None:
        self._spawn(self.redis.set(self.call_key(call_id), self.node_id, px=self.ttl_ms))

    def discarded(self, call_id: str) -> None:
        self._spawn(self._release(keys=[self.call_key(call_id)], args=[self.node_id]))

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._quietly(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _quietly(work: Any) -> None:
        try:
            await work
        except Exception:  # the heartbeat sets it again; the TTL drops it
            logger.warning("Redis write failed: the next heartbeat tries again", exc_info=True)

    async def _beat(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                logger.warning("cluster heartbeat failed (Redis unreachable?)", exc_info=True)
            await asyncio.sleep(self.heartbeat)

    async def refresh(self) -> None:
        """Claim every call hosted here again, for another three heartbeats."""
        calls = list(self.live)
        if calls:
            async with self.redis.pipeline(transaction=False) as pipe:
                for call_id in calls:
                    pipe.set(self.call_key(call_id), self.node_id, px=self.ttl_ms)
                await pipe.execute()

    # ------------------------------------------------------------ questions

    @redis_guarded
    async def holder(self, call_id: str) -> str | None:
        """The node that hosts the call now, if any."""
        node = await self.redis.get(self.call_key(call_id))
        return None if node is None else str(node)

    @redis_guarded
    async def held(self, call_ids: Iterable[str]) -> set[str]:
        ids = list(call_ids)
        if not ids:
            return set()
        holders = await self.redis.mget([self.call_key(c) for c in ids])
        return {c for c, node in zip(ids, holders, strict=True) if node} | await self.live.held(ids)

    # ------------------------------------------------------------ commands

    @redis_guarded
    async def send(self, call_id: str, message: dict[str, Any]) -> bool:
        live = self.live.get(call_id)
        if live is not None:
            deliver(live, message)
            return True
        return await self._command(call_id, {"op": "data", "callId": call_id, "message": message})

    @redis_guarded
    async def end(self, call_id: str, reason: str, *, wait: float) -> bool:
        live = self.live.get(call_id)
        if live is not None:
            await end_here(live, reason, wait)
            return True
        if not await self._command(call_id, {"op": "end", "callId": call_id, "reason": reason}):
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while loop.time() < deadline and await self.holder(call_id) is not None:  # released when its host is done
            await asyncio.sleep(0.05)
        return True

    async def _command(self, call_id: str, command: dict[str, Any]) -> bool:
        node = await self.holder(call_id)
        if node is None:
            return False
        receivers = await self.redis.publish(self.channel(node), json.dumps(command))
        return bool(receivers)

    async def _listen(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("cluster channel failed; listening again in 1 s", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            if message is not None and message.get("type") == "message":
                self._handle(message["data"])

    def _handle(self, data: str) -> None:
        try:
            command = json.loads(data)
            live = self.live.get(command["callId"])
            if live is None:
                return  # ended meanwhile
            if command["op"] == "data":
                deliver(live, command["message"])
            elif command["op"] == "end":
                self._spawn(end_here(live, str(command["reason"]), 10.0))
        except Exception:
            logger.exception("bad cluster command")
