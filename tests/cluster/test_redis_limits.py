"""The Redis limiter and account lock against a real Redis: counts shared by every node."""

from __future__ import annotations

import asyncio
import uuid

from redis.asyncio import Redis

from voxcall.config import Settings
from voxcall.server.limits import Limits, Rate
from voxcall.server.redis_limits import RedisLimiter, redis_account_lock


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def test_a_burst_passes_then_the_next_event_waits_and_a_refusal_counts_nothing(redis: Redis) -> None:
    limiter = RedisLimiter(redis, [Rate(3, 1.0)], name=unique("t"))
    key = "acct"
    assert [(await limiter.hit(key)).allowed for _ in range(3)] == [True, True, True]
    refused = await limiter.hit(key)
    assert not refused.allowed and 0.2 < refused.retry_after <= 1 / 3 + 0.05
    assert not (await limiter.check(key)).allowed
    await asyncio.sleep(refused.retry_after + 0.02)
    assert (await limiter.check(key)).allowed  # the refused hit moved nothing on
    assert (await limiter.hit(key)).allowed and not (await limiter.hit(key)).allowed
    assert 0 < await redis.pttl(limiter.key(key)) <= 1000  # an idle key goes away after the longest period


async def test_two_nodes_share_the_counts_and_every_rate_applies(redis: Redis, redis_url: str) -> None:
    name = unique("shared")
    other = Redis.from_url(redis_url, decode_responses=True)
    try:
        node_a = RedisLimiter(redis, [Rate(2, 1.0), Rate(3, 60.0)], name=name)
        node_b = RedisLimiter(other, [Rate(2, 1.0), Rate(3, 60.0)], name=name)
        assert (await node_a.hit("k")).allowed and (await node_b.hit("k")).allowed
        assert not (await node_a.hit("k")).allowed  # 2 per second, counted across both
        await asyncio.sleep(0.55)
        assert (await node_b.hit("k")).allowed  # a second-rate slot came back: third of the minute
        await asyncio.sleep(0.55)
        minute = await node_a.hit("k")
        assert not minute.allowed and minute.retry_after > 10  # the per-minute rate is used up
        assert (await node_a.hit("another key")).allowed
    finally:
        await other.aclose()


async def test_limits_from_settings_with_redis_and_no_rates_allow_everything(redis: Redis) -> None:
    limits = Limits.from_settings(Settings(requests_per_second=0, calls_per_second=1, calls_per_minute=0), redis=redis)
    assert all([(await limits.requests.hit("k")).allowed for _ in range(5)])
    account = unique("acct")
    assert (await limits.creations.hit(account)).allowed and not (await limits.creations.hit(account)).allowed


async def test_the_account_lock_excludes_a_second_node(redis: Redis, redis_url: str) -> None:
    other = Redis.from_url(redis_url, decode_responses=True)
    account, order = unique("acct"), []
    try:
        async def admit(client: Redis, name: str) -> None:
            async with redis_account_lock(client, account):
                order.append(f"{name} in")
                await asyncio.sleep(0.2)
                order.append(f"{name} out")

        await asyncio.gather(admit(redis, "a"), admit(other, "b"))
        assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])
    finally:
        await other.aclose()
