"""The call facts usage statistics are computed from: live and deleted calls alike.

Deleting a call does not take it out of the account's usage: its tombstone
keeps the times, end reason, agent, voice and metadata the filters need.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from voxcall.store.outage import guarded
from voxcall.store.platform_tables import TombstoneRow
from voxcall.store.tables import CallRow

__all__ = ["CallSample", "UsageStore"]


@dataclass(frozen=True, slots=True)
class CallSample:
    """One call as usage sees it."""

    created: datetime
    joined: datetime | None
    ended: datetime | None
    end_reason: str | None
    agent_id: str | None
    voice: str | None
    metadata: dict[str, Any]


@guarded
class UsageStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def samples(
        self,
        account_id: str,
        *,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        live_at_or_after: datetime | None = None,
        agent_ids: list[str] | None = None,
    ) -> list[CallSample]:
        """The account's calls (deleted ones included) created in [created_from, created_to].

        With `live_at_or_after`, only calls not ended before that instant.
        """
        calls = select(
            CallRow.created, CallRow.joined, CallRow.ended, CallRow.end_reason, CallRow.agent_id,
            CallRow.request["voice"].as_string(), CallRow.request["metadata"],
        ).where(*self._conditions(CallRow, account_id, created_from, created_to, live_at_or_after, agent_ids))
        buried = select(
            TombstoneRow.created, TombstoneRow.joined, TombstoneRow.ended, TombstoneRow.end_reason,
            TombstoneRow.agent_id, TombstoneRow.voice, TombstoneRow.meta,
        ).where(*self._conditions(TombstoneRow, account_id, created_from, created_to, live_at_or_after, agent_ids))
        async with self._sessions() as session:
            rows = [*(await session.execute(calls)).all(), *(await session.execute(buried)).all()]
        return [CallSample(r[0], r[1], r[2], r[3], r[4], r[5], r[6] if isinstance(r[6], dict) else {}) for r in rows]

    @staticmethod
    def _conditions(
        table: Any, account_id: str, created_from: datetime | None, created_to: datetime | None,
        live_at_or_after: datetime | None, agent_ids: list[str] | None,
    ) -> list[Any]:
        conditions = [table.account_id == account_id]
        if created_from is not None:
            conditions.append(table.created >= created_from)
        if created_to is not None:
            conditions.append(table.created <= created_to)
        if live_at_or_after is not None:
            conditions.append(or_(table.ended.is_(None), table.ended >= live_at_or_after))
        if agent_ids:
            conditions.append(table.agent_id.in_(agent_ids))
        return conditions
