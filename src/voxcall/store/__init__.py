"""Persistence behind a repository; SQLAlchemy stays inside this package.

`open_store(url)` builds the async engine, migrates the schema to the newest
revision and returns a `Store`. Supported: SQLite (`sqlite+aiosqlite:///path`)
and PostgreSQL (`postgresql+asyncpg://...`); plain `sqlite://` and
`postgresql://` URLs get the async driver filled in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from voxcall.store import platform_tables as _platform_tables  # noqa: F401  (registers the 0004 tables)
from voxcall.store import stage_tables as _stage_tables  # noqa: F401  (registers the 0008 table)
from voxcall.store import telephony_tables as _telephony_tables  # noqa: F401  (registers the 0007 tables)
from voxcall.store.migrate import upgrade
from voxcall.store.recordings import RecordingStore
from voxcall.store.records import ApiKeyInfo, CallRecord
from voxcall.store.repository import DEFAULT_ACCOUNT_ID, Store

__all__ = ["DEFAULT_ACCOUNT_ID", "ApiKeyInfo", "CallRecord", "RecordingStore", "Store", "open_store"]

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}


async def open_store(url: str, *, timeout: float = 5.0, command_timeout: float = 30.0) -> Store:
    """Connect to the database at `url`, migrate it to the newest schema, and return a Store.

    For a SQLite file, the parent folder is created if needed. On PostgreSQL, `timeout` bounds
    each connection attempt and each wait for a pooled connection, and `command_timeout` each
    statement, so an unreachable database fails fast (`StorageUnavailable`) instead of hanging;
    pooled connections are checked before use, so they recover once the database is back.

    Raises:
        ValueError: a database other than SQLite or PostgreSQL.
    """
    engine = _engine(_async_url(url), timeout=timeout, command_timeout=command_timeout)
    try:
        await upgrade(engine)
    except BaseException:
        await engine.dispose()
        raise
    return Store(engine)


def _async_url(raw: str) -> URL:
    url = make_url(raw)
    url = url.set(drivername=_DRIVERS.get(url.drivername, url.drivername))
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database {url.get_backend_name()!r}: use SQLite or PostgreSQL")
    return url


def _engine(url: URL, *, timeout: float = 5.0, command_timeout: float = 30.0) -> AsyncEngine:
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, hide_parameters=True,  # SQL errors in logs must not quote call content
                                   pool_pre_ping=True, pool_timeout=timeout,
                                   connect_args={"timeout": timeout, "command_timeout": command_timeout})
    database = url.database or ""
    in_memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
    if not in_memory and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # A `:memory:` database lives and dies with its one connection. SQLAlchemy's
    # default for it (StaticPool) hands that connection to concurrent sessions at
    # once, which interleaves their transactions; a one-connection queue makes them
    # take turns instead.
    options: dict[str, Any] = {"hide_parameters": True}
    if in_memory:
        options |= {"poolclass": AsyncAdaptedQueuePool, "pool_size": 1, "max_overflow": 0}
    engine = create_async_engine(url, **options)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas(wal=not in_memory))
    return engine


def _sqlite_pragmas(*, wal: bool) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # Foreign keys are off by default in SQLite; message rows rely on ON DELETE CASCADE.
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        if wal:
            # Readers do not block the writer, which matters with several workers on one file.
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    return on_connect
