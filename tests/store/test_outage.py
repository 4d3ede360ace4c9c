"""store/outage.py and server/redis_outage.py: which failures mean "unreachable", and what callers then see."""

from __future__ import annotations

import asyncio

import pytest
from redis import exceptions as redis_errors
from sqlalchemy import exc as sa

from voxcall.errors import StorageUnavailable
from voxcall.server.redis_outage import GuardedLock, redis_guarded
from voxcall.server.redis_outage import unreachable as redis_unreachable
from voxcall.store import open_store
from voxcall.store.outage import guarded, unreachable


def test_connection_failures_are_unreachable_and_refusals_are_not() -> None:
    lost = sa.DBAPIError("SELECT 1", None, ConnectionResetError("reset"), connection_invalidated=True)
    assert unreachable(lost) and unreachable(ConnectionRefusedError()) and unreachable(TimeoutError())
    assert unreachable(sa.OperationalError("SELECT 1", None, Exception("server closed the connection")))
    assert unreachable(sa.TimeoutError("QueuePool limit reached"))
    wrapped = RuntimeError("outer")
    wrapped.__cause__ = ConnectionRefusedError()
    assert unreachable(wrapped)
    assert not unreachable(sa.IntegrityError("INSERT", None, Exception("duplicate key")))
    assert not unreachable(ValueError("bad"))
    assert redis_unreachable(redis_errors.ConnectionError()) and redis_unreachable(redis_errors.TimeoutError())
    assert not redis_unreachable(redis_errors.ResponseError("WRONGTYPE"))


@guarded
class Repo:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def work(self) -> None:
        raise self.error


async def test_guarded_methods_raise_storage_unavailable_only_for_an_unreachable_database() -> None:
    with pytest.raises(StorageUnavailable) as caught:
        await Repo(ConnectionRefusedError()).work()
    assert caught.value.status_code == 503 and caught.value.retry_after > 0 and "database" in str(caught.value.detail)
    with pytest.raises(ValueError):
        await Repo(ValueError("bad")).work()


async def test_redis_guards_translate_connection_errors() -> None:
    @redis_guarded
    async def command() -> None:
        raise redis_errors.ConnectionError("refused")

    with pytest.raises(StorageUnavailable, match="Redis"):
        await command()

    class Lock:
        async def __aenter__(self) -> None:
            raise redis_errors.TimeoutError()

        async def __aexit__(self, *exc: object) -> None:
            return None

    with pytest.raises(StorageUnavailable):
        async with GuardedLock(Lock()):
            pass


async def test_a_postgres_that_refuses_connections_fails_fast_as_unavailable() -> None:
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with asyncio.timeout(10):
        with pytest.raises(BaseException) as caught:
            await open_store(f"postgresql://u:p@127.0.0.1:{port}/db", timeout=1)
    assert unreachable(caught.value)
