"""Durable tools (PROTOCOL.md 1.9.1) and the calls that used them, behind `ToolStore`.

An account sees its own tools (`private`) and the built-ins (`public`, stored without an
account and written by `ToolStore` itself from the definitions it is given, so every
database has them). Names are unique per account; a private tool may shadow a public one.

The tools list is ordered by `sortOrder`; its cursors are opaque offsets bound to that
order (a tools list is short and changes rarely). A tool's history is a keyset-paginated,
newest-first list of the account's calls that selected it.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, case, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from voxcall.errors import ApiError, InvalidRequest, NotFound
from voxcall.store.outage import guarded
from voxcall.store.pages import Listing, fetch_page
from voxcall.store.records import CallRecord
from voxcall.store.repository import NOT_FOUND, _aware, _text, call_records
from voxcall.store.tables import CallRow, MessageRow, ToolRow, ToolUseRow

__all__ = ["SORT_ORDERS", "PublicTool", "ToolRecord", "ToolStore", "ToolUse"]

SORT_ORDERS = ("display", "alphabetic", "reverseAlphabetic", "chronologic", "reverseChronologic", "default")
PUBLIC_CHANGE = ("{name} is a built-in (public) tool and cannot be changed or deleted; "
                 "create a tool of your own with the same name to override it in calls that select it by name")
_PUBLIC_CREATED = datetime(2024, 1, 1, tzinfo=UTC)



_HISTORY = Listing("h", (ToolUseRow.created, ToolUseRow.call_id), descending=True, parsers=(_aware, _text))


@dataclass(frozen=True, slots=True)
class PublicTool:
    """A built-in tool: a fixed id and name, and its definition in wire form."""

    tool_id: str
    name: str
    definition: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolRecord:
    tool_id: str
    name: str
    created: datetime
    definition: dict[str, Any]
    ownership: str
    account_id: str | None = None


@dataclass(frozen=True, slots=True)
class ToolUse:
    """One entry of a tool's history: the call, and how many of the tool's results in it failed."""

    call: CallRecord
    error_count: int


@guarded
class ToolStore:
    """Async repository of durable tools over the store's engine."""

    def __init__(self, engine: AsyncEngine, public: Sequence[PublicTool] = ()) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._public = tuple(public)
        self._seeded = False

    # ------------------------------------------------------------------ tools

    async def create(self, account_id: str, name: str, definition: dict[str, Any]) -> ToolRecord:
        """Store a new private tool. Raises ApiError 409 if the account has a tool of that name."""
        row = ToolRow(tool_id=str(uuid.uuid4()), account_id=account_id, name=name, ownership="private",
                      created=datetime.now(UTC), definition=definition)
        try:
            async with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError as exc:
            raise _duplicate(name) from exc
        return _record(row)

    async def get(self, tool_id: str, account_id: str) -> ToolRecord:
        """A tool the account can see (its own or a public one). Raises NotFound otherwise."""
        await self._seed()
        async with self._sessions() as session:
            return _record(await self._visible(session, tool_id, account_id))

    async def by_name(self, name: str, account_id: str) -> ToolRecord:
        """The account's tool of this name, else the public one. Raises NotFound if neither exists."""
        await self._seed()
        query = (select(ToolRow).where(ToolRow.name == name, _visible_to(account_id))
                 .order_by(case((ToolRow.ownership == "private", 0), else_=1)).limit(1))
        async with self._sessions() as session:
            row = await session.scalar(query)
        if row is None:
            raise NotFound(f"There is no tool named {name!r}.")
        return _record(row)

    async def replace(self, tool_id: str, account_id: str, name: str, definition: dict[str, Any]) -> ToolRecord:
        """Replace name and definition of the account's tool (PUT). 404 unknown, 403 public, 409 name taken."""
        await self._seed()
        try:
            async with self._sessions.begin() as session:
                row = await self._own(session, tool_id, account_id)
                row.name, row.definition = name, definition
        except IntegrityError as exc:
            raise _duplicate(name) from exc
        return _record(row)

    async def delete(self, tool_id: str, account_id: str) -> None:
        """Delete the account's tool (its history goes with it). 404 unknown, 403 public."""
        await self._seed()
        async with self._sessions.begin() as session:
            row = await self._own(session, tool_id, account_id)
            await session.execute(delete(ToolRow).where(ToolRow.tool_id == row.tool_id))

    async def list_tools(
        self, account_id: str, *, ownership: str | None = None, search: str | None = None,
        sort: str = "default", cursor: str | None = None, page_size: int = 100,
    ) -> tuple[list[ToolRecord], str | None, str | None, int]:
        """One page of the tools the account sees: (results, next, previous, total).

        Raises:
            InvalidRequest: an unknown sort order or a cursor this listing did not hand out.
        """
        if sort not in SORT_ORDERS:
            raise InvalidRequest(f"sortOrder must be one of {', '.join(SORT_ORDERS)}")
        if page_size < 1:
            raise InvalidRequest("pageSize must be at least 1")
        await self._seed()
        offset = _decode_offset(cursor, sort) if cursor else 0
        conditions = [_visible_to(account_id)]
        if ownership is not None:
            conditions.append(ToolRow.ownership == ownership)
        if search:
            conditions.append(ToolRow.name.icontains(search, autoescape=True))
        query = select(ToolRow).where(*conditions).order_by(*_order(sort)).offset(offset).limit(page_size + 1)
        async with self._sessions() as session:
            rows = list((await session.scalars(query)).all())
            total = int(await session.scalar(select(func.count()).select_from(ToolRow).where(*conditions)) or 0)
        more = len(rows) > page_size
        after = _encode_offset(sort, offset + page_size) if more else None
        before = _encode_offset(sort, max(0, offset - page_size)) if offset > 0 else None
        return [_record(r) for r in rows[:page_size]], after, before, total

    # ---------------------------------------------------------------- history

    async def record_uses(self, call_id: str, created: datetime, uses: Mapping[str, Sequence[str]]) -> None:
        """Remember that a call selected these durable tools (tool id → its model-facing names there)."""
        if not uses:
            return
        await self._seed()
        async with self._sessions.begin() as session:
            for tool_id, names in uses.items():
                session.add(ToolUseRow(tool_id=tool_id, call_id=call_id, created=created, names=list(names)))

    async def history(
        self, tool_id: str, account_id: str, *, cursor: str | None = None, page_size: int = 100
    ) -> tuple[list[ToolUse], str | None, str | None, int]:
        """The account's calls that selected the tool, newest first, with their failed-result counts."""
        await self._seed()
        async with self._sessions() as session:
            tool = await self._visible(session, tool_id, account_id)
            condition = (ToolUseRow.tool_id == tool.tool_id, CallRow.account_id == account_id)
            query: Select[tuple[ToolUseRow]] = select(ToolUseRow).join(CallRow, CallRow.call_id == ToolUseRow.call_id)
            rows, after, before = await fetch_page(
                session, query.where(*condition), _HISTORY, lambda r: (r.created, r.call_id), cursor=cursor,
                page_size=page_size,
            )
            count = select(func.count()).select_from(ToolUseRow).join(CallRow, CallRow.call_id == ToolUseRow.call_id)
            total = int(await session.scalar(count.where(*condition)) or 0)
            found = await session.scalars(select(CallRow).where(CallRow.call_id.in_([u.call_id for u in rows])))
            calls = {r.call_id: r for r in await call_records(session, list(found))}
            errors = await _error_counts(session, rows)
        return [ToolUse(calls[u.call_id], errors.get(u.call_id, 0)) for u in rows], after, before, total

    # ---------------------------------------------------------------- helpers

    async def _visible(self, session: AsyncSession, tool_id: str, account_id: str) -> ToolRow:
        uid = _uuid(tool_id)
        row = await session.get(ToolRow, uid) if uid is not None else None
        if row is None or (row.ownership != "public" and row.account_id != account_id):
            raise NotFound(NOT_FOUND)
        return row

    async def _own(self, session: AsyncSession, tool_id: str, account_id: str) -> ToolRow:
        row = await self._visible(session, tool_id, account_id)
        if row.ownership == "public":
            raise ApiError(PUBLIC_CHANGE.format(name=row.name), status_code=403)
        return row

    async def _seed(self) -> None:
        """Write the public tools (once per store object; idempotent, so every process may do it)."""
        if self._seeded:
            return
        for tool in self._public:
            try:
                async with self._sessions.begin() as session:
                    row = await session.get(ToolRow, tool.tool_id)
                    if row is None:
                        session.add(ToolRow(tool_id=tool.tool_id, account_id=None, name=tool.name, ownership="public",
                                            created=_PUBLIC_CREATED, definition=tool.definition))
                    elif (row.name, row.definition) != (tool.name, tool.definition):
                        row.name, row.definition = tool.name, tool.definition
            except IntegrityError:
                pass  # another process wrote it at the same moment
        self._seeded = True


def _visible_to(account_id: str) -> Any:
    return or_(ToolRow.account_id == account_id, ToolRow.ownership == "public")


def _order(sort: str) -> list[Any]:
    name = func.lower(ToolRow.name)
    private_first = case((ToolRow.ownership == "private", 0), else_=1)
    public_name = case((ToolRow.ownership == "public", name), else_="")
    orders: dict[str, list[Any]] = {
        "default": [private_first, ToolRow.created.desc(), ToolRow.tool_id.desc()],
        "display": [private_first.desc(), public_name, ToolRow.created.desc(), ToolRow.tool_id.desc()],
        "alphabetic": [name, ToolRow.tool_id],
        "reverseAlphabetic": [name.desc(), ToolRow.tool_id.desc()],
        "chronologic": [ToolRow.created, ToolRow.tool_id],
        "reverseChronologic": [ToolRow.created.desc(), ToolRow.tool_id.desc()],
    }
    return orders[sort]


async def _error_counts(session: AsyncSession, uses: list[ToolUseRow]) -> dict[str, int]:
    """Per call: the tool-result messages of the tool's names there that carry errorDetails."""
    if not uses:
        return {}
    query = (select(MessageRow.call_id, MessageRow.tool_name, func.count())
             .where(MessageRow.call_id.in_([u.call_id for u in uses]), MessageRow.role == "MESSAGE_ROLE_TOOL_RESULT",
                    MessageRow.error_details.is_not(None))
             .group_by(MessageRow.call_id, MessageRow.tool_name))
    names = {u.call_id: set(u.names) for u in uses}
    counts: dict[str, int] = {}
    for call_id, tool_name, count in (await session.execute(query)).all():
        if tool_name in names.get(call_id, ()):
            counts[call_id] = counts.get(call_id, 0) + int(count)
    return counts


def _encode_offset(sort: str, offset: int) -> str:
    raw = json.dumps(["t", sort, offset], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_offset(cursor: str, sort: str) -> int:
    try:
        kind, cursor_sort, offset = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if kind != "t" or not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValueError("not a tools cursor")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidRequest("Invalid cursor") from exc
    if cursor_sort != sort:
        raise InvalidRequest(f"This cursor belongs to sortOrder={cursor_sort}; pass the same sortOrder to follow it.")
    return offset


def _duplicate(name: str) -> ApiError:
    return ApiError(f"You already have a tool named {name!r}; tool names are unique per account.", status_code=409)


def _uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        return None


def _record(row: ToolRow) -> ToolRecord:
    return ToolRecord(tool_id=row.tool_id, name=row.name, created=row.created, definition=row.definition,
                      ownership=row.ownership, account_id=row.account_id)
