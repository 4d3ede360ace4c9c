"""The /api/deleted_calls routes: tombstones left by DELETE /api/calls/{id} (PROTOCOL.md 1.6).

The list is most recently deleted first and honours `agentIds`, `fromDate` and
`toDate` (on the call's creation time).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from voxcall.protocol.platform import CallTombstone
from voxcall.server.accounts import parse_agent_ids, parse_date
from voxcall.server.bodies import page
from voxcall.server.rest import AccountId, PageSize, Svc
from voxcall.store.tombstones import TombstoneRecord

__all__ = ["router", "tombstone_resource"]

router = APIRouter(prefix="/api")


def tombstone_resource(record: TombstoneRecord) -> dict[str, Any]:
    return CallTombstone(
        call_id=record.call_id, account_id=record.account_id, created=record.created, deletion_time=record.deletion_time,
        joined=record.joined, ended=record.ended, max_duration=record.max_duration, end_reason=record.end_reason,
        recording_enabled=record.recording_enabled, had_summary=record.had_summary,
    ).wire()


@router.get("/deleted_calls")
async def list_deleted_calls(
    request: Request, svc: Svc, account: AccountId, cursor: str | None = None, page_size: PageSize = 100,
    agent_ids: Annotated[list[str] | None, Query(alias="agentIds")] = None,
    from_date: Annotated[str | None, Query(alias="fromDate")] = None,
    to_date: Annotated[str | None, Query(alias="toDate")] = None,
) -> dict[str, Any]:
    records, nxt, prev, total = await svc.platform.tombstones.list_tombstones(
        account, cursor=cursor, page_size=page_size, agent_ids=parse_agent_ids(agent_ids),
        from_date=parse_date(from_date, "fromDate"), to_date=parse_date(to_date, "toDate", end_of_day=True),
    )
    return page(request, [tombstone_resource(r) for r in records], nxt, prev, total)


@router.get("/deleted_calls/{call_id}")
async def get_deleted_call(call_id: str, svc: Svc, account: AccountId) -> dict[str, Any]:
    return tombstone_resource(await svc.platform.tombstones.get(call_id, account))
