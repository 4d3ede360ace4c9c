"""Run the Alembic migrations shipped in `migrations/`, in code (no alembic.ini)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["SCRIPT_LOCATION", "alembic_config", "upgrade"]

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
# Any fixed 64-bit number: processes starting together take turns migrating (PostgreSQL).
_MIGRATION_LOCK = 0x766F7863616C6C  # "voxcall"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config for the packaged scripts; `connection` is the one to migrate."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database to `revision` in one transaction (a no-op when it is there already)."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))
