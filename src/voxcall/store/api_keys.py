"""An account's API keys as the REST API sees them: listed, read, revoked and deleted by prefix.

Keys are created by `Store.create_api_key` (which also serves the CLI); the
secret is never stored, only its SHA-256.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from voxcall.errors import NotFound
from voxcall.store.outage import guarded
from voxcall.store.pages import Listing, fetch_page
from voxcall.store.records import ApiKeyInfo
from voxcall.store.repository import _aware, _key_info, _text
from voxcall.store.tables import ApiKeyRow

__all__ = ["ApiKeyStore"]


_KEYS = Listing("k", (ApiKeyRow.created, ApiKeyRow.prefix), descending=False, parsers=(_aware, _text))


def _not_found(prefix: str) -> NotFound:
    return NotFound(f"No API key with prefix {prefix!r} in this account: list them with GET /api/api_keys.")


@guarded
class ApiKeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def list_keys(self, account_id: str, *, cursor: str | None, page_size: int) -> tuple[list[ApiKeyInfo], str | None, str | None, int]:
        """One page of the account's keys, oldest first, revoked ones included."""
        condition = ApiKeyRow.account_id == account_id
        async with self._sessions() as session:
            rows, after, before = await fetch_page(
                session, select(ApiKeyRow).where(condition), _KEYS, lambda r: (r.created, r.prefix),
                cursor=cursor, page_size=page_size,
            )
            total = await session.scalar(select(func.count()).select_from(ApiKeyRow).where(condition))
        return [_key_info(r) for r in rows], after, before, int(total or 0)

    async def get(self, prefix: str, account_id: str) -> ApiKeyInfo:
        async with self._sessions() as session:
            row = await session.get(ApiKeyRow, prefix)
        if row is None or row.account_id != account_id:
            raise _not_found(prefix)
        return _key_info(row)

    async def revoke(self, prefix: str, account_id: str) -> ApiKeyInfo:
        """Revoke the key (for good; revoking twice is harmless). Raises NotFound."""
        await self.get(prefix, account_id)
        async with self._sessions.begin() as session:
            await session.execute(
                update(ApiKeyRow).where(ApiKeyRow.prefix == prefix, ApiKeyRow.revoked.is_(None)).values(revoked=datetime.now(UTC))
            )
        return await self.get(prefix, account_id)

    async def delete(self, prefix: str, account_id: str) -> None:
        await self.get(prefix, account_id)
        async with self._sessions.begin() as session:
            await session.execute(delete(ApiKeyRow).where(ApiKeyRow.prefix == prefix, ApiKeyRow.account_id == account_id))
