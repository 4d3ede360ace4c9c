"""RedisCluster against a real Redis: two nodes, each with its own registry, find and reach each other's calls."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from redis.asyncio import Redis

from voxcall.protocol.realtime import ForcedAgentMessage, HangUp
from voxcall.server.live import LiveCall, LiveCalls
from voxcall.server.redis_cluster import RedisCluster, connect


class StubCall:
    """Stands in for `engine.call.Call` (the routing is under test): keeps what it gets, ends through its host."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.ended: list[str] = []
        self.on_end: Callable[[], None] = lambda: None

    def receive(self, event: Any) -> None:
        self.received.append(event)

    def end(self, reason: str) -> None:
        self.ended.append(reason)
        self.on_end()


def host(live: LiveCalls, call_id: str) -> StubCall:
    """Register a stub call as a host would; ending it unregisters it, as the host's `finally` does."""
    call = StubCall()
    entry = live.add(call_id, LiveCall(call))  # type: ignore[arg-type]
    call.on_end = lambda: live.discard(call_id, entry)
    return call


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> None:
    """Wait until `check()` (a value or an awaitable) is true."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def node(redis_url: str, heartbeat: float = 5.0) -> AsyncIterator[RedisCluster]:
    cluster = RedisCluster(LiveCalls(), connect(redis_url), node_id=f"test-{uuid.uuid4().hex[:8]}", heartbeat=heartbeat)
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.close()


async def test_a_call_on_node_b_is_held_reached_and_ended_from_node_a(redis_url: str) -> None:
    async with node(redis_url) as a, node(redis_url) as b:
        call_id = str(uuid.uuid4())
        call = host(b.live, call_id)

        async def held() -> bool:
            return await a.held([call_id, "nobody"]) == {call_id}

        await eventually(held)
        assert await a.holder(call_id) == b.node_id
        assert await a.send(call_id, {"type": "forced_agent_message", "content": "From node A."})

        await eventually(lambda: len(call.received) == 1)
        assert call.received == [ForcedAgentMessage(content="From node A.")]
        assert await a.send(call_id, {"type": "hang_up", "message": "bye"})
        await eventually(lambda: len(call.received) == 2)
        assert isinstance(call.received[1], HangUp)
        assert await a.end(call_id, "hangup", wait=5)
        assert call.ended == ["hangup"] and call_id not in b.live
        assert await a.holder(call_id) is None  # released by its holder once the call was over
        assert not await a.send(call_id, {"type": "hang_up"}) and not await a.end(call_id, "hangup", wait=1)


async def test_a_local_call_is_served_in_process(redis_url: str) -> None:
    async with node(redis_url) as a:
        call_id = str(uuid.uuid4())
        call = host(a.live, call_id)
        assert await a.send(call_id, {"type": "user_text_message", "text": "hi"}) and len(call.received) == 1
        assert await a.held([call_id]) == {call_id}  # at once, before the claim reached Redis
        assert await a.end(call_id, "hangup", wait=1) and call.ended == ["hangup"]


async def test_heartbeats_keep_a_claim_and_a_dead_node_loses_its_calls_within_three_beats(redis_url: str) -> None:
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        async with node(redis_url, heartbeat=0.2) as a, node(redis_url, heartbeat=0.2) as b:
            call_id = str(uuid.uuid4())
            host(b.live, call_id)
            await asyncio.sleep(1.0)  # five beats: still held
            assert await a.held([call_id]) == {call_id} and 0 < await redis.pttl(b.call_key(call_id)) <= 600
            for task in b._loops:  # node B stops beating and listening, as a killed process would
                task.cancel()
            await asyncio.sleep(0.8)
            assert await a.held([call_id]) == set()
            assert not await a.send(call_id, {"type": "hang_up"})
            b.live.listeners.clear()  # nothing left for B's close to release
    finally:
        await redis.aclose()


async def test_a_command_to_a_node_that_stopped_listening_is_reported_undelivered(redis_url: str) -> None:
    async with node(redis_url) as a, node(redis_url) as b:
        call_id = str(uuid.uuid4())
        host(b.live, call_id)
        await eventually(lambda: a.held([call_id]))
        await b._pubsub.unsubscribe()

        async def undelivered() -> bool:
            return not await a.send(call_id, {"type": "hang_up"})

        await eventually(undelivered, 2)  # nobody hears it now: send says so instead of pretending
