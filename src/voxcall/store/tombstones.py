"""Deleting a call leaves a tombstone (PROTOCOL.md 1.6, "Delete call").

`bury` deletes the call, its messages, events and stages, and writes the
tombstone in the same transaction: either both happen or neither does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from voxcall.errors import NotFound
from voxcall.store.outage import guarded
from voxcall.store.pages import Listing, fetch_page
from voxcall.store.platform_tables import TombstoneRow
from voxcall.store.repository import _aware, _call_uuid, _text
from voxcall.store.tables import CallRow

__all__ = ["TombstoneRecord", "TombstoneStore"]


_TOMBSTONES = Listing("t", (TombstoneRow.deletion_time, TombstoneRow.call_id), descending=True, parsers=(_aware, _text))


@dataclass(frozen=True, slots=True)
class TombstoneRecord:
    call_id: str
    account_id: str
    created: datetime
    deletion_time: datetime
    joined: datetime | None
    ended: datetime | None
    max_duration: str
    end_reason: str | None
    recording_enabled: bool
    had_summary: bool
    agent_id: str | None = None
    voice: str | None = None
    metadata: dict[str, Any] | None = None


def _record(row: TombstoneRow) -> TombstoneRecord:
    return TombstoneRecord(
        call_id=row.call_id, account_id=row.account_id, created=row.created, deletion_time=row.deletion_time,
        joined=row.joined, ended=row.ended, max_duration=row.max_duration, end_reason=row.end_reason,
        recording_enabled=row.recording_enabled, had_summary=row.had_summary, agent_id=row.agent_id,
        voice=row.voice, metadata=row.meta,
    )


def _tombstone(call: CallRow, at: datetime) -> TombstoneRow:
    request = call.request or {}
    return TombstoneRow(
        call_id=call.call_id, account_id=call.account_id, created=call.created, deletion_time=at,
        joined=call.joined, ended=call.ended, max_duration=str(request.get("maxDuration", "3600s")),
        end_reason=call.end_reason, recording_enabled=bool(request.get("recordingEnabled")), had_summary=False,
        agent_id=call.agent_id, voice=request.get("voice"), meta=request.get("metadata") or {},
    )


@guarded
class TombstoneStore:
    """Deleted calls of every account."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def bury(self, call_id: str, account_id: str) -> TombstoneRecord:
        """Delete a call of this account and leave its tombstone. Raises NotFound if there is no such call."""
        uid = _call_uuid(call_id)
        at = datetime.now(UTC)
        async with self._sessions.begin() as session:
            call = (await session.scalars(select(CallRow).where(CallRow.call_id == uid).with_for_update())).first() if uid else None
            if call is None or call.account_id != account_id:
                raise NotFound("Not found.")
            row = _tombstone(call, at)
            # Messages and events go by ON DELETE CASCADE (SQLite enforces it: open_store turns foreign keys on).
            await session.execute(delete(CallRow).where(CallRow.call_id == uid))
            session.add(row)
        return _record(row)

    async def get(self, call_id: str, account_id: str) -> TombstoneRecord:
        uid = _call_uuid(call_id)
        async with self._sessions() as session:
            row = await session.get(TombstoneRow, uid) if uid else None
        if row is None or row.account_id != account_id:
            raise NotFound(f"No deleted call {call_id!r} in this account: list them with GET /api/deleted_calls.")
        return _record(row)

    async def list_tombstones(
        self,
        account_id: str,
        *,
        cursor: str | None,
        page_size: int,
        agent_ids: list[str] | None = None,
        from_date: datetime | None = None,
        to_date: datetime | None = None,
    ) -> tuple[list[TombstoneRecord], str | None, str | None, int]:
        """One page of the account's tombstones, most recently deleted first.

        `agent_ids`, `from_date` and `to_date` (inclusive, on the call's creation time) narrow the list.
        """
        conditions = [TombstoneRow.account_id == account_id]
        if agent_ids:
            conditions.append(TombstoneRow.agent_id.in_(agent_ids))
        if from_date is not None:
            conditions.append(TombstoneRow.created >= from_date)
        if to_date is not None:
            conditions.append(TombstoneRow.created <= to_date)
        async with self._sessions() as session:
            rows, after, before = await fetch_page(
                session, select(TombstoneRow).where(*conditions), _TOMBSTONES, lambda r: (r.deletion_time, r.call_id),
                cursor=cursor, page_size=page_size,
            )
            total = await session.scalar(select(func.count()).select_from(TombstoneRow).where(*conditions))
        return [_record(r) for r in rows], after, before, int(total or 0)

    async def all(self, account_id: str, *, from_date: datetime | None = None, to_date: datetime | None = None) -> list[TombstoneRecord]:
        """Every tombstone of the account created in the range (for usage statistics)."""
        conditions = [TombstoneRow.account_id == account_id]
        if from_date is not None:
            conditions.append(TombstoneRow.created >= from_date)
        if to_date is not None:
            conditions.append(TombstoneRow.created <= to_date)
        async with self._sessions() as session:
            return [_record(r) for r in await session.scalars(select(TombstoneRow).where(*conditions))]
