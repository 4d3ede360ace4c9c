"""Store fixtures: every test runs on SQLite (a temp file) and on a real PostgreSQL.

PostgreSQL comes from VOXCALL_TEST_POSTGRES_URL (start one with
`scripts/test-services.sh`). Without it the PostgreSQL tests FAIL; they are
skipped only when VOXCALL_SKIP_POSTGRES=1 says so explicitly. Each session
gets a fresh database of its own (so migrations run from scratch and other
suites sharing the server are untouched), and each test starts from empty tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from voxcall.store import Store, open_store
from voxcall.store.tables import Base

BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """A throwaway database on the test server, dropped at the end of the session."""
    base = os.environ.get("VOXCALL_TEST_POSTGRES_URL")
    if not base:
        if os.environ.get("VOXCALL_SKIP_POSTGRES") == "1":
            pytest.skip("VOXCALL_SKIP_POSTGRES=1: PostgreSQL tests skipped on request")
        pytest.fail(
            "VOXCALL_TEST_POSTGRES_URL is not set. Start PostgreSQL with scripts/test-services.sh and export the "
            "URL it prints, or set VOXCALL_SKIP_POSTGRES=1 to skip the PostgreSQL tests explicitly."
        )
    name = f"voxcall_store_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database URL of the parametrized backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'db' / 'voxcall.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """An open store on empty, migrated tables."""
    store = await open_store(store_url)
    if store.engine.dialect.name == "postgresql":
        tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
        async with store.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    yield store
    await store.close()
