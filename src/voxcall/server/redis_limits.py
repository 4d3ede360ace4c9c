"""The rate limits and the account lock in Redis, so that they hold across every node.

`RedisLimiter` is `MemoryLimiter`'s GCRA (server/limits.py) as one Lua script: the
arrival times of a key live in one Redis hash, read and moved on atomically, on
Redis's own clock (so nodes whose clocks differ still agree). `account_lock` is a
Redis lock around "count the account's open calls, then store the new one", which
makes the concurrent-call limit exact across nodes (the count itself stays in the
database, the one place every node writes calls to).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from redis.asyncio import Redis

from voxcall.server.limits import Decision, Rate
from voxcall.server.redis_outage import GuardedLock, redis_guarded

__all__ = ["RedisLimiter", "redis_account_lock"]

# KEYS[1]: the key's hash; ARGV: 1 = count the event (1) or only check (0), then limit, period pairs.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local count = ARGV[1] == '1'
local wait, longest, arrivals = 0, 0, {}
for i = 1, (#ARGV - 1) / 2 do
  local limit, period = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local arrival = tonumber(redis.call('HGET', KEYS[1], i)) or now
  local advanced = math.max(arrival, now) + period / limit
  wait = math.max(wait, advanced - period - now)
  longest = math.max(longest, period)
  arrivals[i] = advanced
end
if wait > 1e-9 then return {0, tostring(wait)} end
if count and #arrivals > 0 then
  for i, advanced in ipairs(arrivals) do redis.call('HSET', KEYS[1], i, tostring(advanced)) end
  redis.call('PEXPIRE', KEYS[1], math.ceil(longest * 1000))
end
return {1, '0'}
"""


class RedisLimiter:
    """`Limiter` shared by every node on one Redis; `name` keeps its keys apart from other limiters'."""

    def __init__(self, redis: Redis, rates: Sequence[Rate], *, name: str) -> None:
        self.rates = tuple(rates)
        self.name = name
        self._redis = redis
        self._script = redis.register_script(_GCRA)

    def key(self, key: str) -> str:
        return f"voxcall:limit:{self.name}:{key}"

    async def hit(self, key: str) -> Decision:
        return await self._run(key, count=True)

    async def check(self, key: str) -> Decision:
        return await self._run(key, count=False)

    @redis_guarded
    async def _run(self, key: str, *, count: bool) -> Decision:
        if not self.rates:
            return Decision(True)
        args: list[Any] = ["1" if count else "0"]
        for rate in self.rates:
            args += [rate.limit, repr(float(rate.period))]
        allowed, wait = await self._script(keys=[self.key(key)], args=args)
        return Decision(True) if int(allowed) else Decision(False, float(wait))


def redis_account_lock(redis: Redis, account_id: str) -> AbstractAsyncContextManager[Any]:
    """The cross-node lock of an account's call admission (released after 10 s even if its holder dies)."""
    return GuardedLock(redis.lock(f"voxcall:lock:account:{account_id}", timeout=10, blocking_timeout=15))
