"""The limiter logic (server/limits.py) on an injected clock: bursts, refill, several rates, pruning."""

from __future__ import annotations

import pytest

from voxcall.config import Settings
from voxcall.server.limits import (
    Limiter,
    Limits,
    MemoryLimiter,
    Rate,
    retry_after_header,
)


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def hits(limiter: Limiter, key: str, n: int) -> list[bool]:
    return [(await limiter.hit(key)).allowed for _ in range(n)]


async def test_a_full_burst_then_one_per_interval(clock: Clock) -> None:
    limiter = MemoryLimiter([Rate(3, 1.0)], clock=clock)
    assert await hits(limiter, "k", 4) == [True, True, True, False]
    refused = await limiter.hit("k")
    assert not refused.allowed and refused.retry_after == pytest.approx(1 / 3)
    clock.now += 1 / 3 - 0.01
    assert not (await limiter.hit("k")).allowed
    clock.now += 0.01
    assert await hits(limiter, "k", 2) == [True, False]
    clock.now += 1.0  # idle for a whole period: the full burst is back
    assert await hits(limiter, "k", 4) == [True, True, True, False]


async def test_refused_hits_count_for_nothing(clock: Clock) -> None:
    limiter = MemoryLimiter([Rate(2, 10.0)], clock=clock)
    assert await hits(limiter, "k", 2) == [True, True]
    for _ in range(49):
        clock.now += 0.1
        assert not (await limiter.hit("k")).allowed
    assert (await limiter.check("k")).retry_after == pytest.approx(0.1)
    clock.now = 1005.0  # one interval (10 s / 2) after the start: one event again, hammering did not push it back
    assert await hits(limiter, "k", 2) == [True, False]


async def test_check_counts_nothing_and_keys_are_independent(clock: Clock) -> None:
    limiter = MemoryLimiter([Rate(1, 60.0)], clock=clock)
    for _ in range(5):
        assert (await limiter.check("a")).allowed
    assert await hits(limiter, "a", 2) == [True, False]
    blocked = await limiter.check("a")
    assert not blocked.allowed and blocked.retry_after == pytest.approx(60.0)
    assert await hits(limiter, "b", 2) == [True, False]


async def test_whichever_rate_is_reached_first_refuses(clock: Clock) -> None:
    limiter = MemoryLimiter([Rate(2, 1.0), Rate(3, 60.0)], clock=clock)
    assert await hits(limiter, "k", 3) == [True, True, False]  # the per-second rate
    clock.now += 1.0
    assert await hits(limiter, "k", 1) == [True]  # the third of the minute
    clock.now += 1.0
    refused = await limiter.hit("k")  # per-second allows it, per-minute does not
    assert not refused.allowed and refused.retry_after == pytest.approx(18.0)
    clock.now += 18.0
    assert await hits(limiter, "k", 2) == [True, False]


async def test_idle_keys_are_dropped(clock: Clock) -> None:
    limiter = MemoryLimiter([Rate(5, 1.0), Rate(10, 60.0)], clock=clock)
    for i in range(100):
        await limiter.hit(f"client-{i}")
    assert len(limiter) == 100
    clock.now += 61.0
    await limiter.hit("late")
    assert len(limiter) == 1


async def test_no_rates_allows_everything(clock: Clock) -> None:
    limiter = MemoryLimiter([], clock=clock)
    assert await hits(limiter, "k", 1000) == [True] * 1000
    assert len(limiter) == 0


def test_rates_and_headers_are_checked() -> None:
    with pytest.raises(ValueError, match="limit >= 1"):
        Rate(0, 1.0)
    with pytest.raises(ValueError, match="period > 0"):
        Rate(1, 0.0)
    assert [retry_after_header(s) for s in (0.0, 0.01, 1.0, 1.2, 59.5)] == ["1", "1", "1", "2", "60"]


async def test_limits_follow_the_settings_and_zero_turns_a_limit_off(clock: Clock) -> None:
    limits = Limits.from_settings(Settings(calls_per_second=2, calls_per_minute=0, requests_per_second=0,
                                           auth_failures_per_minute=1), clock=clock)
    assert await hits(limits.creations, "acct", 3) == [True, True, False]
    assert await hits(limits.requests, "key", 500) == [True] * 500
    assert await hits(limits.auth_failures, "10.0.0.1", 2) == [True, False]
    assert (await limits.auth_failures.check("10.0.0.1")).retry_after == pytest.approx(60.0)
    assert limits.account_lock("a") is limits.account_lock("a") and limits.account_lock("a") is not limits.account_lock("b")
