"""Which server processes serve calls on one database, so start-up can end calls a crash left live.

Every serving process holds a shared lock for its whole life; a starting process
first tries the same lock exclusively. Getting it means no other server is
running on this database, so every call still marked joined-and-not-ended lost
its process (a crash, SIGKILL, power loss) and is ended as `system_error`. With
another server running, its live calls are left alone.

* PostgreSQL: a session-level advisory lock on a connection held open for the
  process's life (the server drops it when that connection ends, crash included).
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

ADVISORY_KEY = 0x766F7863616C6C  # "voxcall": one key for every voxcall server of a database


class ServingLock:
    """Held while this process serves calls; `acquire()` says whether it was the only server."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._fd: int | None = None

    async def acquire(self) -> bool:
        """Take the shared lock; True if no other process held it (so stale calls may be ended)."""
        url = self._engine.url
        if url.get_backend_name() == "postgresql":
            return await self._acquire_postgres()
        path = _sqlite_file(url.database)
        return True if path is None else await asyncio.to_thread(self._acquire_file, path)

    async def release(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):
                await connection.close()  # ends the session: its advisory locks go with it
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
        return alone

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


def _sqlite_file(database: Any) -> Path | None:
    name = str(database or "")
    if name in ("", ":memory:") or name.startswith("file:") or os.name != "posix":
        return None
    return Path(name).expanduser().with_name(Path(name).name + ".serving")
