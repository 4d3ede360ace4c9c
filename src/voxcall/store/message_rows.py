"""Call messages as rows: the INSERT that picks the next indexes, and a row back as `CallMessage`.

`idx` orders a call's messages; `stage_index` (the callStageMessageIndex) counts within the
message's stage. Both come from one statement each (the primary key backs `idx` up), so they stay
dense with writers in several processes. A message without a stage belongs to the first one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select
from sqlalchemy.sql.elements import ColumnElement

from voxcall.protocol.rest import CallMessage, first_stage_id
from voxcall.store.tables import MESSAGES, MessageRow

__all__ = ["in_stage", "insert_message", "message", "message_values"]


def in_stage(call_id: str, stage_id: str) -> ColumnElement[bool]:
    """The condition for the messages of one stage (rows from before 0008 have no stage: the first)."""
    return _stage_condition(call_id, stage_id, first_stage=stage_id == first_stage_id(call_id))


def _stage_condition(call: Any, stage: Any, *, first_stage: bool) -> ColumnElement[bool]:
    """`in_stage` for a call and a stage given as values or as bound parameters."""
    mine = and_(MessageRow.call_id == call, MessageRow.call_stage_id == stage)
    if not first_stage:
        return mine
    return or_(mine, and_(MessageRow.call_id == call, MessageRow.call_stage_id.is_(None)))


def insert_message(call_id: str, msg: CallMessage) -> tuple[Any, dict[str, Any]]:
    """One statement, with its parameters, that appends a message with the next index of the call and of its stage.

    The statement is built once per kind of stage and takes everything as bound parameters, so
    SQLAlchemy compiles it once and each append only binds values (building and hashing a fresh
    statement with two subqueries cost more than the round trip to the database).
    """
    stage = msg.call_stage_id or first_stage_id(call_id)
    values = message_values(call_id, msg, None, datetime.now(UTC), stage=stage, stage_index=None)
    params = {f"p_{column}": values[column] for column in _BOUND}
    return _INSERTS[stage == first_stage_id(call_id)], params


_BOUND = ("call_id", "role", "text", "medium", "invocation_id", "tool_name", "error_details", "call_stage_id",
          "call_state", "timespan", "wall_clock_timespan", "metadata", "created", "initial")


def _insert_statement(first_stage: bool) -> Any:
    table = MESSAGES
    bound = {column: bindparam(f"p_{column}", type_=table.c[column].type) for column in _BOUND}
    call, stage = bound["call_id"], bound["call_stage_id"]
    next_index = select(func.coalesce(func.max(table.c.idx) + 1, 0)).where(table.c.call_id == call).scalar_subquery()
    stage_index = select(func.coalesce(func.max(func.coalesce(table.c.stage_index, table.c.idx)) + 1, 0)).where(
        _stage_condition(call, stage, first_stage=first_stage)).scalar_subquery()
    return insert(table).values(idx=next_index, stage_index=stage_index, **bound).returning(table.c.idx, table.c.stage_index)


_INSERTS = {first: _insert_statement(first) for first in (True, False)}


def message_values(call_id: str, msg: CallMessage, index: Any, created: datetime, *, stage: str, stage_index: Any,
                   initial: bool = False) -> dict[str, Any]:
    return {
        "call_id": call_id, "idx": index, "role": msg.role, "text": msg.text,
        "medium": msg.medium, "invocation_id": msg.invocation_id, "tool_name": msg.tool_name,
        "error_details": msg.error_details, "call_stage_id": stage,
        "call_state": msg.call_state, "timespan": msg.timespan,
        "wall_clock_timespan": msg.wall_clock_timespan, "metadata": msg.metadata, "created": created,
        "stage_index": stage_index, "initial": initial,
    }


def message(row: MessageRow) -> CallMessage:
    return CallMessage.model_validate(
        {
            "role": row.role, "text": row.text, "medium": row.medium, "invocation_id": row.invocation_id,
            "tool_name": row.tool_name, "error_details": row.error_details,
            "call_stage_message_index": row.stage_index if row.stage_index is not None else row.idx,
            "call_stage_id": row.call_stage_id or first_stage_id(str(row.call_id)), "call_state": row.call_state,
            "timespan": row.timespan, "wall_clock_timespan": row.wall_clock_timespan, "metadata": row.meta,
        }
    )
