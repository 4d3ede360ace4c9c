"""Which server processes serve calls on one database, so start-up can end calls a crash left live.

Every serving process holds a shared lock for its whole life; a starting process
first tries the same lock exclusively. Getting it means no other server is
running on this database, so every call still marked joined-and-not-ended lost
its process (a crash, SIGKILL, power loss) and is ended as `system_error`. With
another server running, its live calls are left alone.

* PostgreSQL: a session-level advisory lock on a connection held open for the
  process's life (the server drops it when that connection ends, crash included).
  A database outage (a restart, a failover, `pg_terminate_backend`) ends that
  session too, and with it the lock, while this process goes on serving its calls.
  So every `check_interval` seconds the held connection is asked `SELECT 1`; when
  that fails the connection is dropped and the shared lock is taken again on a new
  one as soon as the database answers. Until then (at most `check_interval` after
  the database is back) a server starting up could take itself for the only one
  and end this process's live calls.
* SQLite: `flock` on a file beside the database (the kernel drops it when the
  process dies). In-memory databases have no other process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["ServingLock"]

logger = logging.getLogger(__name__)

ADVISORY_KEY = 0x766F7873657276  # "voxserv": one key for every voxcall server of a database
# (not the migration lock's key: a shared hold on that would block every later start-up's migration for ever)
CHECK_INTERVAL = 2.0
"""Seconds between checks that the PostgreSQL session holding the lock is still there."""
CHECK_TIMEOUT = 5.0
"""Bound on one check or one attempt to take the lock again."""


class ServingLock:
    """Held while this process serves calls; `acquire()` says whether it was the only server."""

    def __init__(self, engine: AsyncEngine, *, check_interval: float = CHECK_INTERVAL) -> None:
        self._engine = engine
        self._check_interval = check_interval
        self._connection: AsyncConnection | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this process holds the lock now, as far as it knows (False while it waits to take it again)."""
        return self._connection is not None or self._fd is not None

    async def acquire(self) -> bool:
        """Take the shared lock; True if no other process held it (so stale calls may be ended)."""
        url = self._engine.url
        if url.get_backend_name() == "postgresql":
            return await self._acquire_postgres()
        path = _sqlite_file(url.database)
        return True if path is None else await asyncio.to_thread(self._acquire_file, path)

    async def release(self) -> None:
        if self._keeper is not None:
            keeper, self._keeper = self._keeper, None
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await _discard(connection)  # ends the session: its advisory locks go with it
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # drops the flock

    async def _acquire_postgres(self) -> bool:
        connection = await self._engine.connect()
        try:
            alone = bool(await connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}))
            # Same session: the shared lock is granted beside our own exclusive one.
            await connection.execute(text("SELECT pg_advisory_lock_shared(:k)"), {"k": ADVISORY_KEY})
            if alone:
                await connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
            await connection.commit()
        except BaseException:
            await connection.close()
            raise
        self._connection = connection
        if self._check_interval > 0:
            self._keeper = asyncio.get_running_loop().create_task(self._keep(), name="serving-lock-keeper")
        return alone

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self._check_interval)
            try:
                async with asyncio.timeout(CHECK_TIMEOUT):
                    await self._check()
            except Exception as exc:  # the database is still away: try again at the next check
                logger.debug("the serving lock could not be taken again yet: %s", type(exc).__name__)

    async def _check(self) -> None:
        """Make sure the lock's session is alive; if it is gone, take the shared lock again on a new one."""
        if self._connection is not None:
            try:
                await self._connection.exec_driver_sql("SELECT 1")
                await self._connection.commit()
                return
            except Exception:
                lost, self._connection = self._connection, None
                logger.warning("lost the serving lock (its database session is gone): taking it again once the "
                               "database answers")
                await _discard(lost)
        connection = await self._engine.connect()
        try:
            # Never waits: a server starting up holds the lock exclusively for a moment; then take it next time.
            got = bool(await connection.scalar(text("SELECT pg_try_advisory_lock_shared(:k)"), {"k": ADVISORY_KEY}))
            await connection.commit()
        except BaseException:
            await _discard(connection)
            raise
        if not got:
            await _discard(connection)
            return
        self._connection = connection
        logger.warning("took the serving lock again: start-up sweeps of other servers leave this server's calls alone")

    def _acquire_file(self, path: Path) -> bool:
        import fcntl

        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                alone = True
            except BlockingIOError:
                alone = False
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while another server is starting up
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return alone


async def _discard(connection: AsyncConnection) -> None:
    """Close `connection` and its session for good (not back into the pool, where the session would live on)."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CHECK_TIMEOUT):
            await connection.invalidate()
    with contextlib.suppress(Exception):
        await connection.close()


def _sqlite_file(database: Any) -> Path | None:
    name = str(database or "")
    if name in ("", ":memory:") or name.startswith("file:") or os.name != "posix":
        return None
    return Path(name).expanduser().with_name(Path(name).name + ".serving")
