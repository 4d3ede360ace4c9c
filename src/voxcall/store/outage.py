"""Connection-level database failures become one typed error at the repository boundary.

A database that is down, restarting or cut off shows up as many driver errors:
SQLAlchemy's `OperationalError`/`InterfaceError`, a `DBAPIError` whose connection
was invalidated, asyncpg's connection errors, a refused socket (`OSError`), an
expired connect/command timeout, or a pool checkout that waited too long.
`guarded` wraps every public coroutine method of a repository class so that these
leave it as `voxcall.errors.StorageUnavailable` (answered 503 with `Retry-After`);
every other error passes through unchanged. SQLAlchemy stays inside `store/`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import exc as sa

from voxcall.errors import StorageUnavailable

__all__ = ["DATABASE", "guarded", "unreachable"]

DATABASE = "The database"
_NETWORK = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
            asyncpg.CannotConnectNowError, asyncpg.ConnectionDoesNotExistError)
C = TypeVar("C", bound=type)


def unreachable(error: BaseException) -> bool:
    """Whether `error` (or what caused it) says the database could not be reached, rather than refused the work."""
    seen: BaseException | None = error
    for _ in range(6):  # the wrapped driver error hides a few causes deep at most
        if seen is None:
            return False
        if isinstance(seen, (sa.OperationalError, sa.InterfaceError, sa.TimeoutError, sa.DisconnectionError)):
            return True
        if isinstance(seen, sa.DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, _NETWORK):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _guard(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except StorageUnavailable:
            raise
        except Exception as error:
            if unreachable(error):
                raise StorageUnavailable(DATABASE) from error
            raise

    return call


def guarded(cls: C) -> C:
    """Class decorator: the public coroutine methods of `cls` raise `StorageUnavailable` for an unreachable database."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(member):
            setattr(cls, name, _guard(member))
    return cls
