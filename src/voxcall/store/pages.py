"""Keyset (cursor) pagination for the store's list queries.

PROTOCOL.md 1.3: lists are DRF `CursorPagination` plus a total count, with
opaque cursors. A cursor here names a position in a list's fixed order (its
sort key) and a direction, so pages stay stable while rows are added: a new
call appears at the top of page one and never shifts the later pages.

A cursor is URL-safe base64 of a small JSON array
`[kind, "n" | "p", inclusive, *key]`. `kind` binds it to one listing, so a
calls cursor handed to the messages list is refused as invalid.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from voxcall.errors import InvalidRequest

__all__ = ["Cursor", "Listing", "fetch_page"]

R = TypeVar("R")
Key = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in a listing: the page after `key` (forward) or the page before it."""

    forward: bool
    key: Key
    inclusive: bool = False  # the row at `key` belongs to the page (after a page emptied by deletes)


@dataclass(frozen=True, slots=True)
class Listing:
    """How one list is ordered and how its cursors look.

    Args:
        kind: the tag that binds cursors to this listing.
        columns: the sort key columns; together they must be unique.
        descending: True for newest-first lists.
        parsers: one function per key column that turns a JSON value back into
            a key value (raising ValueError or TypeError when it cannot).
    """

    kind: str
    columns: tuple[ColumnElement[Any] | InstrumentedAttribute[Any], ...]
    descending: bool
    parsers: tuple[Callable[[Any], Any], ...]

    def encode(self, cursor: Cursor) -> str:
        key = [k.isoformat() if isinstance(k, datetime) else k for k in cursor.key]
        raw = json.dumps([self.kind, "n" if cursor.forward else "p", cursor.inclusive, *key], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()

    def decode(self, text: str) -> Cursor:
        """Parse a cursor of this listing; anything else raises InvalidRequest("Invalid cursor")."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            kind, direction, inclusive, *key = json.loads(raw)
            if kind != self.kind or direction not in ("n", "p") or not isinstance(inclusive, bool):
                raise ValueError("not a cursor of this list")
            if len(key) != len(self.parsers):
                raise ValueError("wrong key length")
            values = tuple(parse(value) for parse, value in zip(self.parsers, key, strict=True))
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidRequest("Invalid cursor") from exc
        return Cursor(forward=direction == "n", key=values, inclusive=inclusive)

    def beyond(self, cursor: Cursor) -> ColumnElement[bool]:
        """Rows strictly past the cursor key in the cursor's direction (or at it, when inclusive)."""
        greater = cursor.forward != self.descending
        return _lexicographic(self.columns, cursor.key, greater=greater, inclusive=cursor.inclusive)

    def order(self, forward: bool) -> list[ColumnElement[Any]]:
        ascending = forward != self.descending
        return [c.asc() if ascending else c.desc() for c in self.columns]


def _lexicographic(
    columns: Sequence[ColumnElement[Any] | InstrumentedAttribute[Any]], key: Key, *, greater: bool, inclusive: bool
) -> ColumnElement[bool]:
    # (a, b) > (x, y)  ==  a > x OR (a = x AND b > y); spelled out because
    # row-value comparisons are not portable across every SQLite build.
    head, value = columns[0], key[0]
    if len(columns) == 1:
        if greater:
            return cast(ColumnElement[bool], head >= value if inclusive else head > value)
        return cast(ColumnElement[bool], head <= value if inclusive else head < value)
    rest = _lexicographic(columns[1:], key[1:], greater=greater, inclusive=inclusive)
    return or_(head > value if greater else head < value, and_(head == value, rest))


async def fetch_page(
    session: AsyncSession,
    query: Select[tuple[R]],
    listing: Listing,
    key_of: Callable[[R], Key],
    *,
    cursor: str | None,
    page_size: int,
) -> tuple[list[R], str | None, str | None]:
    """One page of `query` in `listing` order, with the next and previous cursors.

    Raises:
        InvalidRequest: a cursor that this listing did not issue, or a page size below 1.
    """
    if page_size < 1:
        raise InvalidRequest("pageSize must be at least 1")
    position = listing.decode(cursor) if cursor else None  # an empty cursor is the first page, as in DRF
    forward = position is None or position.forward
    if position is not None:
        query = query.where(listing.beyond(position))
    rows = list((await session.scalars(query.order_by(*listing.order(forward)).limit(page_size + 1))).all())
    more = len(rows) > page_size
    rows = rows[:page_size]
    if not forward:
        rows.reverse()
    if position is None:
        return rows, (listing.encode(Cursor(True, key_of(rows[-1]))) if more else None), None
    after = listing.encode(_neighbour(rows, position, key_of, forward=True))
    before = listing.encode(_neighbour(rows, position, key_of, forward=False))
    if forward:
        return rows, (after if more else None), before
    return rows, after, (before if more else None)


def _neighbour(rows: list[R], position: Cursor, key_of: Callable[[R], Key], *, forward: bool) -> Cursor:
    """The cursor of the page next to this one, on the given side."""
    if rows:
        return Cursor(forward, key_of(rows[-1] if forward else rows[0]))
    # Only the side we came from can be reached from an empty page (its rows were
    # deleted): point back at the same key, with the key row now on the other side.
    return Cursor(forward, position.key, inclusive=not position.inclusive)
