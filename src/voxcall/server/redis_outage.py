"""Redis connection failures become `StorageUnavailable` at the cluster and limit boundaries.

A Redis that is down or cut off shows up as `redis.exceptions.ConnectionError` or
`TimeoutError` (every connect and command is bounded by `VOXCALL_REDIS_TIMEOUT_SECONDS`),
or as a bare `OSError`. `redis_guarded` turns these into `voxcall.errors.StorageUnavailable`
so a REST request that needs Redis answers 503 with `Retry-After`; `GuardedLock` does the
same for the cross-node account lock.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from redis import exceptions as redis_errors

from voxcall.errors import StorageUnavailable

__all__ = ["REDIS", "GuardedLock", "redis_guarded", "unreachable"]

REDIS = "Redis"
P = ParamSpec("P")
T = TypeVar("T")


def unreachable(error: BaseException) -> bool:
    """Whether `error` says Redis could not be reached (rather than refused a command)."""
    return isinstance(error, (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError, TimeoutError))


def redis_guarded(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Decorator: an unreachable Redis raises `StorageUnavailable` out of `method`."""
    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except Exception as error:
            if unreachable(error):
                raise StorageUnavailable(REDIS) from error
            raise

    return call


class GuardedLock:
    """An async context manager (a Redis lock) whose entry and exit raise `StorageUnavailable` for an unreachable Redis."""

    def __init__(self, lock: AbstractAsyncContextManager[Any]) -> None:
        self._lock = lock

    async def __aenter__(self) -> Any:
        try:
            return await self._lock.__aenter__()
        except Exception as error:
            if unreachable(error):
                raise StorageUnavailable(REDIS) from error
            raise

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> bool | None:
        try:
            return await self._lock.__aexit__(kind, error, traceback)
        except Exception as failure:
            if unreachable(failure) and error is None:
                raise StorageUnavailable(REDIS) from failure
            if error is None:
                raise
            return None  # the body's own error matters more than a failed release (the lock expires anyway)
