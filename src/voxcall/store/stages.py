"""Call stages behind the repository: a call's stages, and the start of a new one with its initial messages.

A stage's initial messages are the ones it starts from: for the first stage, the call's
initialMessages (or a prior call's); for a later one, the `initialMessages` of the `new-stage`
result, or else a copy of the whole previous stage (as the hosted API keeps them, so that
`mode=last_stage` lists everything the model saw and `mode=in_call` leaves the copies out).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from voxcall.errors import NotFound
from voxcall.protocol.rest import CallMessage, first_stage_id
from voxcall.store.message_rows import in_stage, message, message_values
from voxcall.store.outage import guarded
from voxcall.store.pages import Listing, fetch_page
from voxcall.store.records import StageInfo
from voxcall.store.stage_tables import CallStageRow
from voxcall.store.tables import MESSAGES, CallRow, MessageRow

__all__ = ["StageStore", "first_stage_row", "last_stage_id", "later_stages"]

NOT_FOUND = "Not found."
_STAGES = Listing("s", (CallStageRow.seq,), descending=False, parsers=(int,))


def first_stage_row(call_id: str, created: datetime) -> CallStageRow:
    return CallStageRow(call_stage_id=first_stage_id(call_id), call_id=call_id, seq=0, created=created, settings={}, tools=None)


async def last_stage_id(session: AsyncSession, call_id: str) -> str:
    """The id of the call's newest stage (the first one for calls from before stages were stored)."""
    query = select(CallStageRow.call_stage_id).where(CallStageRow.call_id == call_id).order_by(CallStageRow.seq.desc()).limit(1)
    return await session.scalar(query) or first_stage_id(call_id)


async def later_stages(session: AsyncSession, call_ids: Sequence[str]) -> dict[str, CallStageRow]:
    """The last stage of each of these calls that moved past its first (a call still in its first is absent).

    One query for a page of calls; most calls never leave their first stage, so it usually returns nothing.
    """
    if not call_ids:
        return {}
    query = select(CallStageRow).where(CallStageRow.call_id.in_(call_ids), CallStageRow.seq > 0).order_by(CallStageRow.seq)
    return {row.call_id: row for row in await session.scalars(query)}


@guarded
class StageStore:
    """The stages of calls, on the store's engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def add(self, call_id: str, stage_id: str, *, settings: dict[str, Any], tools: list[dict[str, Any]] | None,
                  initial: Sequence[CallMessage] | None) -> None:
        """Start the call's next stage; `tools` None keeps the previous stage's, `initial` None copies its messages.

        One transaction: the stage row, then its initial messages (indexes continuing the call's).

        Raises:
            NotFound: the call does not exist.
        """
        uid = _uuid(call_id)
        for _ in range(3):
            try:
                async with self._sessions.begin() as session:
                    lock = select(CallRow).where(CallRow.call_id == uid).with_for_update(key_share=True)
                    call = await session.scalar(lock) if uid is not None else None
                    if call is None or uid is None:
                        raise NotFound(NOT_FOUND)
                    previous = await self._newest(session, call)
                    kept = previous.tools if tools is None else tools
                    session.add(CallStageRow(call_stage_id=stage_id, call_id=uid, seq=previous.seq + 1,
                                             created=datetime.now(UTC), settings=dict(settings), tools=kept))
                    await session.flush()
                    await self._initial(session, uid, previous.call_stage_id, stage_id, initial)
            except IntegrityError:
                continue  # another writer took those indexes (SQLite): try again
            return
        raise RuntimeError(f"could not start a stage of call {uid}")

    async def count_tokens(self, call_id: str, stage_id: str, prompt_tokens: int) -> None:
        """The stage's prompt was `prompt_tokens` long at its latest model request (the first sets the initial count).

        A stage that is not stored (a call from before 0008) is left alone.
        """
        statement = (
            update(CallStageRow)
            .where(CallStageRow.call_stage_id == stage_id, CallStageRow.call_id == _uuid(call_id))
            .values(latest_token_count=prompt_tokens,
                    initial_token_count=func.coalesce(CallStageRow.initial_token_count, prompt_tokens))
            .execution_options(synchronize_session=False)
        )
        async with self._sessions.begin() as session:
            await session.execute(statement)

    async def _newest(self, session: AsyncSession, call: CallRow) -> CallStageRow:
        query = select(CallStageRow).where(CallStageRow.call_id == call.call_id).order_by(CallStageRow.seq.desc()).limit(1)
        row = await session.scalar(query)
        if row is None:  # a call from before 0008: its first stage gets its row now
            row = first_stage_row(call.call_id, call.created)
            session.add(row)
            await session.flush()
        return row

    async def _initial(self, session: AsyncSession, call_id: str, previous: str, stage_id: str,
                       given: Sequence[CallMessage] | None) -> None:
        if given is None:
            rows = await session.scalars(select(MessageRow).where(in_stage(call_id, previous)).order_by(MessageRow.idx))
            messages = [message(r) for r in rows]
        else:
            messages = list(given)
        if not messages:
            return
        last = await session.scalar(select(func.max(MessageRow.idx)).where(MessageRow.call_id == call_id))
        start, now = (0 if last is None else last + 1), datetime.now(UTC)
        values = [message_values(call_id, m, start + i, now, stage=stage_id, stage_index=i, initial=True)
                  for i, m in enumerate(messages)]
        await session.execute(insert(MESSAGES), values)

    async def list_stages(self, call_id: str, *, cursor: str | None = None,
                   page_size: int = 100) -> tuple[list[StageInfo], str | None, str | None, int]:
        """One page of the call's stages, first stage first: (results, next, previous, total). Raises NotFound."""
        async with self._sessions() as session:
            call = await self._call(session, call_id)
            query = select(CallStageRow).where(CallStageRow.call_id == call.call_id)
            rows, after, before = await fetch_page(session, query, _STAGES, lambda r: (r.seq,), cursor=cursor,
                                                   page_size=page_size)
            total = int(await session.scalar(select(func.count()).select_from(CallStageRow)
                                             .where(CallStageRow.call_id == call.call_id)) or 0)
            if total == 0 and cursor is None:  # a call from before 0008: its one stage is the call itself
                rows, total = [first_stage_row(call.call_id, call.created)], 1
            return [await self._info(session, r) for r in rows], after, before, total

    async def get(self, call_id: str, stage_id: str) -> StageInfo:
        """One stage of the call. Raises NotFound (also for another call's stage)."""
        async with self._sessions() as session:
            call = await self._call(session, call_id)
            row = await session.get(CallStageRow, stage_id) if _uuid(stage_id) else None
            if row is None and stage_id == first_stage_id(call.call_id):
                row = first_stage_row(call.call_id, call.created)
            if row is None or row.call_id != call.call_id:
                raise NotFound(NOT_FOUND)
            return await self._info(session, row)

    @staticmethod
    async def _call(session: AsyncSession, call_id: str) -> CallRow:
        uid = _uuid(call_id)
        row = await session.get(CallRow, uid) if uid is not None else None
        if row is None:
            raise NotFound(NOT_FOUND)
        return row

    @staticmethod
    async def _info(session: AsyncSession, row: CallStageRow) -> StageInfo:
        errors = select(func.count()).select_from(MessageRow).where(
            in_stage(row.call_id, row.call_stage_id), MessageRow.error_details.is_not(None),
            MessageRow.initial.is_not(True))
        return StageInfo(call_id=row.call_id, call_stage_id=row.call_stage_id, seq=row.seq, created=row.created,
                         settings=dict(row.settings or {}), tools=row.tools, error_count=int(await session.scalar(errors) or 0),
                         initial_token_count=row.initial_token_count, latest_token_count=row.latest_token_count)


def _uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        return None
