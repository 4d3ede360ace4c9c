"""Agents (named call templates) and the calls made from them.

Every method opens its own short transaction; rows never leave this module.
An agent belongs to one account: another account's agent is NotFound, exactly
like an unknown one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from voxcall.errors import InvalidRequest, NotFound
from voxcall.store.outage import guarded
from voxcall.store.pages import Listing, fetch_page
from voxcall.store.platform_tables import AgentRow
from voxcall.store.records import CallRecord
from voxcall.store.repository import _CALLS, _aware, _call_uuid, _text, call_records
from voxcall.store.tables import CallRow

__all__ = ["AGENT_SORTS", "AgentRecord", "AgentStore"]


_BY_CREATED = (AgentRow.created, AgentRow.agent_id)
_BY_NAME = (AgentRow.name, AgentRow.agent_id)
AGENT_SORTS = {
    "-created": Listing("a-c", _BY_CREATED, descending=True, parsers=(_aware, _text)),
    "created": Listing("a+c", _BY_CREATED, descending=False, parsers=(_aware, _text)),
    "name": Listing("a+n", _BY_NAME, descending=False, parsers=(_text, _text)),
    "-name": Listing("a-n", _BY_NAME, descending=True, parsers=(_text, _text)),
}
"""The `sort` values of GET /api/agents; the default is newest first."""


@dataclass(slots=True)
class AgentRecord:
    """One agent as stored; `call_template` is the compact wire form (sharedSecrets included)."""

    agent_id: str
    account_id: str
    name: str
    created: datetime
    updated: datetime
    call_template: dict[str, Any] | None
    call_count: int = 0


def _record(row: AgentRow) -> AgentRecord:
    return AgentRecord(
        agent_id=row.agent_id, account_id=row.account_id, name=row.name, created=row.created, updated=row.updated,
        call_template=row.call_template, call_count=row.call_count,
    )


def _not_found(agent_id: str) -> NotFound:
    return NotFound(f"No agent {agent_id!r} in this account: list your agents with GET /api/agents.")


@guarded
class AgentStore:
    """Agents of every account, over one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def create(self, account_id: str, name: str, call_template: dict[str, Any] | None) -> AgentRecord:
        now = datetime.now(UTC)
        row = AgentRow(agent_id=str(uuid.uuid4()), account_id=account_id, name=name, created=now, updated=now,
                       call_template=call_template, call_count=0)
        async with self._sessions.begin() as session:
            session.add(row)
        return _record(row)

    async def get(self, agent_id: str, account_id: str) -> AgentRecord:
        """The agent. Raises NotFound for an unknown id, another account's agent, or a non-UUID."""
        uid = _call_uuid(agent_id)
        async with self._sessions() as session:
            row = await session.get(AgentRow, uid) if uid else None
        if row is None or row.account_id != account_id:
            raise _not_found(agent_id)
        return _record(row)

    async def find(self, agent_id: str) -> AgentRecord | None:
        """The agent whatever its account (for requests that prove themselves otherwise: signed carrier webhooks)."""
        uid = _call_uuid(agent_id)
        async with self._sessions() as session:
            row = await session.get(AgentRow, uid) if uid else None
        return _record(row) if row is not None else None

    async def list_agents(
        self, account_id: str, *, cursor: str | None, page_size: int, search: str | None = None, sort: str = "-created"
    ) -> tuple[list[AgentRecord], str | None, str | None, int]:
        """One page of the account's agents: (results, next, previous, total).

        Raises:
            InvalidRequest: an unknown sort, or a cursor this listing did not hand out.
        """
        listing = AGENT_SORTS.get(sort)
        if listing is None:
            raise InvalidRequest(f"Unknown sort {sort!r}: use one of {', '.join(AGENT_SORTS)}.")
        conditions = [AgentRow.account_id == account_id]
        if search:
            conditions.append(func.lower(AgentRow.name).contains(search.lower(), autoescape=True))
        key = (lambda r: (r.created, r.agent_id)) if "created" in sort else (lambda r: (r.name, r.agent_id))
        async with self._sessions() as session:
            rows, after, before = await fetch_page(
                session, select(AgentRow).where(*conditions), listing, key, cursor=cursor, page_size=page_size
            )
            total = await session.scalar(select(func.count()).select_from(AgentRow).where(*conditions))
        return [_record(r) for r in rows], after, before, int(total or 0)

    async def update(self, agent_id: str, account_id: str, **values: Any) -> AgentRecord:
        """Set `name` and/or `call_template` (the given ones only). Raises NotFound."""
        await self.get(agent_id, account_id)
        values["updated"] = datetime.now(UTC)
        async with self._sessions.begin() as session:
            await session.execute(update(AgentRow).where(AgentRow.agent_id == agent_id).values(**values))
        return await self.get(agent_id, account_id)

    async def delete(self, agent_id: str, account_id: str) -> None:
        """Delete the agent (its calls stay, with their agentId). Raises NotFound."""
        uid = _call_uuid(agent_id)
        if uid is None:
            raise _not_found(agent_id)
        async with self._sessions.begin() as session:
            result = await session.execute(delete(AgentRow).where(AgentRow.agent_id == uid, AgentRow.account_id == account_id))
        if not result.rowcount:  # type: ignore[attr-defined]
            raise _not_found(agent_id)

    async def count_call(self, agent_id: str) -> None:
        """Add one to the agent's `statistics.calls` (in one statement, safe across processes)."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(AgentRow).where(AgentRow.agent_id == agent_id).values(call_count=AgentRow.call_count + 1)
            )

    async def list_calls(
        self, agent_id: str, account_id: str, *, cursor: str | None, page_size: int
    ) -> tuple[list[CallRecord], str | None, str | None, int]:
        """One page of the calls made from this agent, newest first. Raises NotFound for an unknown agent."""
        agent = await self.get(agent_id, account_id)
        conditions = (CallRow.agent_id == agent.agent_id, CallRow.account_id == account_id)
        async with self._sessions() as session:
            rows, after, before = await fetch_page(
                session, select(CallRow).where(*conditions), _CALLS, lambda r: (r.created, r.call_id),
                cursor=cursor, page_size=page_size,
            )
            total = await session.scalar(select(func.count()).select_from(CallRow).where(*conditions))
            records = await call_records(session, rows)
        return records, after, before, int(total or 0)
