"""Rate limits and the concurrent-call gate of the REST API (each answers 429 with `Retry-After`).

The hosted API limits requests per API key, call creations per account (per second and per
minute, whichever is reached first) and concurrent calls per account, and answers 429 with a
`Retry-After` header (docs.ultravox.ai "API Rate Limits", "Scaling & Call Concurrency").
voxcall does the same and also throttles failed authentication per client address.

The counters sit behind the small `Limiter` protocol. `MemoryLimiter` keeps them in this
process, which is right for one server; several nodes behind a load balancer each count on
their own until a shared implementation (Redis) takes its place. Its methods are async for
that reason, although the in-memory one never waits.
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from voxcall.config import Settings
from voxcall.errors import RateLimited

__all__ = ["Decision", "Limiter", "Limits", "MemoryLimiter", "Rate", "enforce", "retry_after_header"]

Clock = Callable[[], float]
_SLACK = 1e-9  # seconds: float rounding must not refuse the last event of a burst


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `limit` events per `period` seconds; `limit` may all come at once (the burst)."""

    limit: int
    period: float

    def __post_init__(self) -> None:
        if self.limit < 1 or self.period <= 0:
            raise ValueError(f"a rate needs limit >= 1 and period > 0, not {self.limit} per {self.period}s")


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether an event may happen now; if not, the seconds to wait before it may."""

    allowed: bool
    retry_after: float = 0.0


class Limiter(Protocol):
    """Counts events per key (an API key id, an account, a client address) against fixed rates."""

    async def hit(self, key: str) -> Decision:
        """Count one event for `key` if every rate allows it now; a refused event counts for nothing."""
        ...

    async def check(self, key: str) -> Decision:
        """Whether `hit(key)` would be allowed now, counting nothing."""
        ...


class MemoryLimiter:
    """`Limiter` in this process's memory: one GCRA (a token bucket kept as one timestamp) per rate and key.

    For `Rate(limit, period)` each event moves the key's "theoretical arrival time" on by
    `period / limit`; an event is allowed while that time stays within `period` of now. So
    `limit` events may come at once, then one every `period / limit` seconds, and an idle key
    is back to a full burst after `period`. Keys whose buckets are full again are dropped,
    so memory follows the keys active within the longest period.
    """

    def __init__(self, rates: Sequence[Rate], *, clock: Clock = time.monotonic) -> None:
        self.rates = tuple(rates)
        self._clock = clock
        self._arrivals: dict[str, list[float]] = {}
        self._longest = max((r.period for r in self.rates), default=0.0)
        self._next_prune = 0.0

    async def hit(self, key: str) -> Decision:
        now = self._clock()
        decision, arrivals = self._decide(key, now)
        if decision.allowed and self.rates:
            self._arrivals[key] = arrivals
        self._prune(now)
        return decision

    async def check(self, key: str) -> Decision:
        return self._decide(key, self._clock())[0]

    def __len__(self) -> int:
        """How many keys are being tracked (for tests of the pruning)."""
        return len(self._arrivals)

    def _decide(self, key: str, now: float) -> tuple[Decision, list[float]]:
        current = self._arrivals.get(key) or [now] * len(self.rates)
        wait, arrivals = 0.0, []
        for rate, arrival in zip(self.rates, current, strict=True):
            advanced = max(arrival, now) + rate.period / rate.limit
            wait = max(wait, advanced - rate.period - now)
            arrivals.append(advanced)
        return (Decision(True), arrivals) if wait <= _SLACK else (Decision(False, wait), current)

    def _prune(self, now: float) -> None:
        if now < self._next_prune:
            return
        self._next_prune = now + self._longest
        for key in [k for k, arrivals in self._arrivals.items() if max(arrivals) <= now]:
            del self._arrivals[key]


def _rates(*pairs: tuple[int, float]) -> list[Rate]:
    """The rates whose limit is set; a limit of 0 turns that one off."""
    return [Rate(limit, period) for limit, period in pairs if limit > 0]


def retry_after_header(seconds: float) -> str:
    """`Retry-After` as whole seconds (RFC 9110 delay-seconds), rounded up and at least 1."""
    return str(max(1, math.ceil(seconds)))


@dataclass(slots=True)
class Limits:
    """The limiters of one server, built from its settings.

    - `requests`: requests per API key (keyed by the key's 8-character id), every /api route;
    - `creations`: calls created per account, per second and per minute;
    - `auth_failures`: bad API keys per client address per minute; once reached, every
      request that presents a key from that address gets 429 before its key is looked at.
    """

    requests: Limiter
    creations: Limiter
    auth_failures: Limiter
    _locks: weakref.WeakValueDictionary[str, asyncio.Lock] = field(default_factory=weakref.WeakValueDictionary)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = time.monotonic) -> Limits:
        return cls(
            requests=MemoryLimiter(_rates((settings.requests_per_second, 1.0)), clock=clock),
            creations=MemoryLimiter(_rates((settings.calls_per_second, 1.0), (settings.calls_per_minute, 60.0)), clock=clock),
            auth_failures=MemoryLimiter(_rates((settings.auth_failures_per_minute, 60.0)), clock=clock),
        )

    def account_lock(self, account_id: str) -> asyncio.Lock:
        """One lock per account, held while its calls are counted and a new one is stored.

        It makes the concurrency check exact within this process; across nodes two creations
        at the same moment can still both pass (the shared implementation closes that).
        """
        lock = self._locks.get(account_id)
        if lock is None:
            lock = self._locks[account_id] = asyncio.Lock()
        return lock


async def enforce(limiter: Limiter, key: str, message: str) -> None:
    """Count one event for `key`, or raise RateLimited: `message`, then how long to wait."""
    decision = await limiter.hit(key)
    if not decision.allowed:
        wait = retry_after_header(decision.retry_after)
        raise RateLimited(f"{message} Retry after {wait} s.", retry_after=decision.retry_after)
