"""The Store: every query voxcall makes, behind one small async API.

Rows never leave this module: callers get `CallRecord`, `ApiKeyInfo`,
`CallMessage` and `CallEvent` values. Rules that must hold across processes (a join token is
used once, a call ends once, message indexes are dense) are enforced by single
conditional statements in the database, not by locks in Python.

Every method opens its own short transaction, so each is cancellation-safe in
the usual sense: cancelled before the commit, nothing is written.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import string
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Insert, Table, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from voxcall.errors import InvalidRequest, NotFound
from voxcall.protocol.rest import CallEvent, CallMessage, first_stage_id
from voxcall.protocol.wire import format_duration
from voxcall.store.message_rows import in_stage, insert_message, message, message_values
from voxcall.store.outage import guarded
from voxcall.store.pages import Listing, fetch_page
from voxcall.store.records import ApiKeyInfo, CallRecord
from voxcall.store.serving import ServingLock
from voxcall.store.stage_tables import CallStageRow
from voxcall.store.stages import StageStore, first_stage_row, last_stage_id, later_stages
from voxcall.store.tables import (
    MESSAGES,
    AccountRow,
    ApiKeyRow,
    CallEventRow,
    CallRow,
    MessageRow,
    SecretRow,
)

__all__ = ["DEFAULT_ACCOUNT_ID", "DEFAULT_ACCOUNT_NAME", "KEY_PATTERN", "SEVERITIES", "Store", "call_records"]

logger = logging.getLogger(__name__)

# PROTOCOL.md 1.1: "8 characters, `.`, 32 characters", both alphanumeric.
KEY_PATTERN = re.compile(r"[A-Za-z0-9]{8}\.[A-Za-z0-9]{32}")
_ALPHABET = string.ascii_letters + string.digits
# A fixed UUID, so that every process agrees on the default account without coordination.
DEFAULT_ACCOUNT_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "voxcall:account:default"))
DEFAULT_ACCOUNT_NAME = "default"
NOT_FOUND = "Not found."
_KEY_DRAWS = 5  # 62**8 prefixes: a collision is already unlikely once
# Event severities from least to most severe (PROTOCOL.md 1.8 `minimum_severity`).
SEVERITIES = ("debug", "info", "warning", "error")
_EVENT_TYPE_LENGTH = 50
_SYSTEM_METADATA = "voxcall.systemMetadata"
"""Where a call's system metadata lives inside the stored request (no request field has this name)."""


def _aware(value: Any) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("naive datetime")
    return parsed


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("expected an integer")
    return value


_CALLS = Listing("c", (CallRow.created, CallRow.call_id), descending=True, parsers=(_aware, _text))
_MESSAGES = Listing("m", (MessageRow.idx,), descending=False, parsers=(_integer,))
_EVENTS = Listing("e", (CallEventRow.id,), descending=False, parsers=(_integer,))


@guarded
class Store:
    """Async repository over one SQLAlchemy engine (SQLite via aiosqlite, or PostgreSQL via asyncpg).

    Build it with `voxcall.store.open_store(url)`, which also migrates the schema.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._serving: ServingLock | None = None
        self.stages = StageStore(engine)
        """The calls' stages (list, get, and the start of a new one)."""

    @property
    def engine(self) -> AsyncEngine:
        """The underlying engine (for tests and tooling)."""
        return self._engine

    async def close(self) -> None:
        """Close every pooled connection (and stop serving, if `start_serving` was called)."""
        if self._serving is not None:
            await self._serving.release()
        await self._engine.dispose()

    async def start_serving(self) -> int:
        """Register this process as a server of this database until `close()`; returns how many stale calls it ended.

        When no other server is running on the database (SQLite or PostgreSQL), every
        call still joined and not ended was left so by a crash and is ended now as
        `system_error`; calls of other live servers are never touched (`ServingLock`).
        """
        if self._serving is None:
            self._serving = ServingLock(self._engine)
            if await self._serving.acquire():
                return await self.mark_stale_calls_ended()
            logger.info("another server is serving calls on this database: its live calls are left alone")
        return 0

    async def ping(self) -> None:
        """Run `SELECT 1`: raises when the database cannot be reached (readiness checks)."""
        async with self._sessions() as session:
            await session.execute(select(1))

    # ------------------------------------------------------ accounts and keys

    async def create_api_key(
        self, name: str = "default", account_id: str | None = None, *, expiry_date: datetime | None = None,
        creator: str | None = None,
    ) -> tuple[str, ApiKeyInfo]:
        """Create an API key and return it in plain text, the only time it is ever available.

        Only the SHA-256 of the key is stored. Without `account_id` the key goes to
        the default account; an unknown `account_id` creates that account. A key
        with `expiry_date` stops working at that instant.
        """
        account_id = account_id or DEFAULT_ACCOUNT_ID
        account_name = DEFAULT_ACCOUNT_NAME if account_id == DEFAULT_ACCOUNT_ID else account_id
        for _ in range(_KEY_DRAWS):
            key = _random(8) + "." + _random(32)
            info = ApiKeyInfo(prefix=key[:8], name=name, account_id=account_id, created=_now(),
                              expiry_date=expiry_date, creator=creator)
            try:
                async with self._sessions.begin() as session:
                    await session.execute(
                        self._insert_ignore(AccountRow, account_id=account_id, name=account_name, created=info.created)
                    )
                    session.add(
                        ApiKeyRow(
                            prefix=info.prefix, key_hash=_digest(key), name=name,
                            account_id=account_id, created=info.created, expiry_date=expiry_date, creator=creator,
                        )
                    )
                logger.info("created API key %s for account %s", info.prefix, account_id)
                return key, info
            except IntegrityError:
                continue  # the random prefix is taken: draw again
        raise RuntimeError("could not draw an unused API key prefix")

    async def list_api_keys(self) -> list[ApiKeyInfo]:
        """Every key of every account, revoked ones included, oldest first."""
        async with self._sessions() as session:
            rows = await session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created, ApiKeyRow.prefix))
            return [_key_info(row) for row in rows]

    async def revoke_api_key(self, prefix: str) -> bool:
        """Revoke a key by its prefix; False if no key has that prefix. Revoking twice is harmless."""
        async with self._sessions.begin() as session:
            row = await session.get(ApiKeyRow, prefix)
            if row is None:
                return False
            if row.revoked is None:
                row.revoked = _now()
                logger.info("revoked API key %s", prefix)
            return True

    async def count_active_api_keys(self) -> int:
        """How many keys are not revoked."""
        async with self._sessions() as session:
            query = select(func.count()).select_from(ApiKeyRow).where(ApiKeyRow.revoked.is_(None))
            return int(await session.scalar(query) or 0)

    async def authenticate(self, key: str) -> str | None:
        """The account id of a valid, unrevoked key, else None (the hash is compared in constant time)."""
        if not KEY_PATTERN.fullmatch(key):
            return None
        async with self._sessions() as session:
            row = await session.get(ApiKeyRow, key[:8])
        expected = row.key_hash if row is not None else _digest("0" * 8 + "." + "0" * 32)
        matches = hmac.compare_digest(expected, _digest(key))
        if row is None or not matches or row.revoked is not None:
            return None
        if row.expiry_date is not None and row.expiry_date <= _now():
            return None
        return row.account_id

    async def get_account_name(self, account_id: str) -> str:
        """The account's display name. Raises NotFound for an unknown account."""
        async with self._sessions() as session:
            name = await session.scalar(select(AccountRow.name).where(AccountRow.account_id == account_id))
        if name is None:
            raise NotFound(NOT_FOUND)
        return name

    async def get_or_create_secret(self, name: str) -> str:
        """A random 32-byte URL-safe secret, created on first use and the same in every process after."""
        async with self._sessions.begin() as session:
            await session.execute(self._insert_ignore(SecretRow, name=name, value=secrets.token_urlsafe(32)))
        async with self._sessions() as session:
            value = await session.scalar(select(SecretRow.value).where(SecretRow.name == name))
        assert value is not None  # inserted above, never deleted
        return value

    # ------------------------------------------------------------------ calls

    async def create_call(self, record: CallRecord) -> None:
        """Store a new call and its first stage. Raises InvalidRequest if `record.call_id` is not a UUID."""
        call_id = _call_uuid(record.call_id)
        if call_id is None:
            raise InvalidRequest("callId must be a UUID")
        async with self._sessions.begin() as session:
            session.add(
                CallRow(
                    call_id=call_id, account_id=record.account_id, created=record.created,
                    request=_with_system_metadata(record.request, record.system_metadata),
                    join_url=record.join_url, joined=record.joined,
                    ended=record.ended, end_reason=record.end_reason, client_version=record.client_version,
                    tools=record.tools, enable_greeting_prompt=record.enable_greeting_prompt,
                    agent_id=record.agent_id, agent_name=record.agent_name,
                )
            )
            await session.flush()
            session.add(first_stage_row(call_id, record.created))

    async def get_call(self, call_id: str, account_id: str | None = None) -> CallRecord:
        """One call; with `account_id`, only if that account owns it.

        Raises:
            NotFound: no such call, another account's call, or an id that is not a UUID.
        """
        async with self._sessions() as session:
            row = await self._call_row(session, call_id, account_id)
            return (await call_records(session, [row]))[0]

    async def list_calls(
        self, account_id: str, *, cursor: str | None = None, page_size: int = 100
    ) -> tuple[list[CallRecord], str | None, str | None, int]:
        """One page of the account's calls, newest first: (results, next, previous, total).

        Raises:
            InvalidRequest: a cursor this listing did not hand out ("Invalid cursor").
        """
        async with self._sessions() as session:
            query = select(CallRow).where(CallRow.account_id == account_id)
            rows, after, before = await fetch_page(
                session, query, _CALLS, lambda r: (r.created, r.call_id), cursor=cursor, page_size=page_size
            )
            count = select(func.count()).select_from(CallRow).where(CallRow.account_id == account_id)
            total = await session.scalar(count)
            records = await call_records(session, rows)
        return records, after, before, int(total or 0)

    async def delete_call(self, call_id: str, account_id: str) -> None:
        """Delete a call of this account and its messages. Raises NotFound if there is none."""
        uid = _call_uuid(call_id)
        async with self._sessions.begin() as session:
            # Messages go by ON DELETE CASCADE (SQLite enforces it: open_store turns foreign keys on).
            done = uid is not None and await self._changed(
                session, delete(CallRow).where(CallRow.call_id == uid, CallRow.account_id == account_id)
            )
        if not done:
            raise NotFound(NOT_FOUND)

    async def mark_joined(self, call_id: str, *, client_version: str | None, at: datetime) -> bool:
        """Record the first join; True only for that one, in every process (join tokens are single-use)."""
        condition = (CallRow.joined.is_(None), CallRow.ended.is_(None))
        return await self._update_call(call_id, condition, joined=at, client_version=client_version)

    async def add_system_metadata(self, call_id: str, values: dict[str, str]) -> None:
        """Merge `ultravox.*` metadata into a call (e.g. a carrier's ids from its `start`). Raises NotFound."""
        async with self._sessions.begin() as session:
            row = await self._call_row(session, call_id, None)
            merged = {**row.request.get(_SYSTEM_METADATA, {}), **values}
            row.request = _with_system_metadata(row.request, merged)

    async def mark_ended(self, call_id: str, *, reason: str, at: datetime) -> bool:
        """Record the end of a call; True only the first time."""
        return await self._update_call(call_id, (CallRow.ended.is_(None),), ended=at, end_reason=reason)

    async def mark_stale_calls_ended(self, reason: str = "system_error") -> int:
        """Mark every call that was joined and never ended as ended now; return how many.

        For server start-up after a crash: a call left "live" in the database has no
        process serving it any more. There is deliberately no cutoff: every joined,
        unended call of every account is ended, so run this only when no other
        process is serving calls on this database (`start_serving` checks that).
        Run with other workers live, it would end their calls.
        """
        statement = (
            update(CallRow)
            .where(CallRow.joined.is_not(None), CallRow.ended.is_(None))
            .values(ended=_now(), end_reason=reason)
            .execution_options(synchronize_session=False)
        )
        async with self._sessions.begin() as session:
            count = int((await session.execute(statement)).rowcount)  # type: ignore[attr-defined]
        if count:
            logger.warning("marked %d stale call(s) ended (%s)", count, reason)
        return count

    async def joined_unended_calls(self, *, joined_before: datetime, limit: int = 1000) -> list[str]:
        """Ids of calls (of every account) joined before `joined_before` and not ended, oldest join first."""
        query = (
            select(CallRow.call_id)
            .where(CallRow.joined.is_not(None), CallRow.joined < joined_before, CallRow.ended.is_(None))
            .order_by(CallRow.joined)
            .limit(limit)
        )
        async with self._sessions() as session:
            return [str(call_id) for call_id in await session.scalars(query)]

    async def list_open_calls(self, account_id: str) -> list[CallRecord]:
        """Calls of the account that are not ended (joined, or not yet joined), oldest first."""
        query = select(CallRow).where(CallRow.account_id == account_id, CallRow.ended.is_(None)).order_by(CallRow.created)
        async with self._sessions() as session:
            return await call_records(session, list(await session.scalars(query)))

    async def count_live_calls(self, account_id: str) -> int:
        """Calls of the account that are joined and not ended."""
        query = select(func.count()).select_from(CallRow).where(
            CallRow.account_id == account_id, CallRow.joined.is_not(None), CallRow.ended.is_(None)
        )
        async with self._sessions() as session:
            return int(await session.scalar(query) or 0)

    # --------------------------------------------------------------- messages

    async def add_message(self, call_id: str, msg: CallMessage) -> CallMessage:
        """Append a message to a call and return the stored copy with its callStageMessageIndex (and callStageId).

        Indexes are dense from 0 per call, and per stage, even with writers in several processes.
        A message without a callStageId belongs to the call's first stage.

        Raises:
            NotFound: the call does not exist.
        """
        uid = _call_uuid(call_id)
        if uid is None:
            raise NotFound(NOT_FOUND)
        try:  # the usual case, one writer: one statement in autocommit, no BEGIN/lock/COMMIT round trips
            async with self._engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                stored = (await conn.execute(*insert_message(uid, msg))).one()
        except IntegrityError:  # another writer took that index meanwhile, or there is no such call
            stored = await self._add_message_in_turn(uid, msg)
        return msg.model_copy(update={"call_stage_message_index": stored.stage_index,
                                      "call_stage_id": msg.call_stage_id or first_stage_id(uid)})

    async def _add_message_in_turn(self, uid: str, msg: CallMessage) -> Any:
        for _ in range(3):
            try:
                async with self._sessions.begin() as session:
                    # PostgreSQL: the call's row lock makes writers of one call take turns.
                    # SQLite: the INSERT below computes the index under the database write lock.
                    lock = select(CallRow.call_id).where(CallRow.call_id == uid).with_for_update(key_share=True)
                    if await session.scalar(lock) is None:
                        raise NotFound(NOT_FOUND)
                    return (await session.execute(*insert_message(uid, msg))).one()
            except IntegrityError:
                continue  # the call was deleted after the check (SQLite): the next check says so
        raise RuntimeError(f"could not append a message to call {uid}")

    async def add_messages(self, call_id: str, messages: list[CallMessage], *, initial: bool = False) -> int:
        """Append messages to the call's first stage in one transaction and one multi-row INSERT; returns how many.

        The indexes continue densely from the call's last message, as with `add_message`. With
        `initial` they are the stage's initial messages (`mode=in_call` leaves them out); their own
        callStageId (e.g. a prior call's) is replaced by the first stage's.

        Raises:
            NotFound: the call does not exist.
        """
        if not messages:
            return 0
        uid = _call_uuid(call_id)
        for _ in range(3):
            try:
                async with self._sessions.begin() as session:
                    lock = select(CallRow.call_id).where(CallRow.call_id == uid).with_for_update(key_share=True)
                    if uid is None or await session.scalar(lock) is None:
                        raise NotFound(NOT_FOUND)
                    last = await session.scalar(select(func.max(MessageRow.idx)).where(MessageRow.call_id == uid))
                    stage = first_stage_id(uid)
                    first = await session.scalar(select(func.max(func.coalesce(MessageRow.stage_index, MessageRow.idx)))
                                                 .where(in_stage(uid, stage)))
                    start, at, now = (0 if last is None else last + 1), (0 if first is None else first + 1), _now()
                    rows = [message_values(uid, m, start + i, now, stage=stage, stage_index=at + i, initial=initial)
                            for i, m in enumerate(messages)]
                    await session.execute(insert(MESSAGES), rows)
            except IntegrityError:
                continue  # another writer took those indexes (SQLite), or the call was deleted: check again
            return len(rows)
        raise RuntimeError(f"could not append messages to call {uid}")

    async def all_messages(self, call_id: str) -> list[CallMessage]:
        """Every message of the call's last stage (its initial ones too), oldest first: what its model saw."""
        messages: list[CallMessage] = []
        cursor = None
        while True:
            page, cursor, _, _ = await self.list_messages(call_id, cursor=cursor, page_size=1000)
            messages += page
            if not cursor:
                return messages

    async def list_messages(
        self, call_id: str, *, cursor: str | None = None, page_size: int = 100, mode: str = "last_stage",
        stage_id: str | None = None,
    ) -> tuple[list[CallMessage], str | None, str | None, int]:
        """One page of a call's messages, oldest first: (results, next, previous, total).

        `mode` (PROTOCOL.md 1.7.1): `last_stage`, every message of the call's newest stage with its
        initial ones; `in_call`, the messages of every stage without their initial ones. With
        `stage_id`, the messages of that stage (its initial ones too).

        Raises:
            NotFound: the call does not exist.
            InvalidRequest: a cursor this listing did not hand out ("Invalid cursor").
        """
        async with self._sessions() as session:
            row = await self._call_row(session, call_id, None)
            if stage_id is None and mode == "in_call":
                condition = and_(MessageRow.call_id == row.call_id, MessageRow.initial.is_not(True))
            else:
                condition = in_stage(row.call_id, stage_id or await last_stage_id(session, row.call_id))
            rows, after, before = await fetch_page(
                session, select(MessageRow).where(condition), _MESSAGES, lambda r: (r.idx,), cursor=cursor,
                page_size=page_size,
            )
            total = await session.scalar(select(func.count()).select_from(MessageRow).where(condition))
        return [message(r) for r in rows], after, before, int(total or 0)

    async def stage_message(self, call_id: str, stage_id: str, index: int) -> CallMessage:
        """The message with callStageMessageIndex `index` of one stage of a call.

        Raises:
            NotFound: no such call, or no such message in that stage.
        """
        async with self._sessions() as session:
            row = await self._call_row(session, call_id, None)
            found = await session.scalar(select(MessageRow).where(
                in_stage(row.call_id, stage_id), func.coalesce(MessageRow.stage_index, MessageRow.idx) == index))
        if found is None:
            raise NotFound(f"This call stage has no message {index}.")
        return message(found)

    # ----------------------------------------------------------------- events

    async def add_event(
        self,
        call_id: str,
        *,
        type: str,
        text: str,
        severity: str = "info",
        call_timestamp: float = 0.0,
        extras: dict[str, Any] | None = None,
        call_stage_id: str | None = None,
    ) -> None:
        """Append an event to a call's event log (PROTOCOL.md 1.8); without `call_stage_id`, in the first stage.

        Args:
            type: a short tag, at most 50 characters (e.g. "audio_underflow").
            severity: one of debug, info, warning, error.
            call_timestamp: seconds since the call was joined.
            extras: JSON-serialisable details, or None.

        Raises:
            ValueError: an unknown severity or a type longer than 50 characters.
            NotFound: the call does not exist.
        """
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
        if len(type) > _EVENT_TYPE_LENGTH:
            raise ValueError(f"event type longer than {_EVENT_TYPE_LENGTH} characters: {type!r}")
        uid = _call_uuid(call_id)
        if uid is None:
            raise NotFound(NOT_FOUND)
        row = {"call_id": uid, "created": _now(), "call_timestamp": float(call_timestamp), "severity": severity,
               "type": type, "text": text, "extras": extras, "call_stage_id": call_stage_id}
        try:  # one statement in autocommit: no BEGIN/COMMIT round trips, no ORM unit of work
            async with self._engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(insert(CallEventRow.__table__), row)  # type: ignore[arg-type]
        except IntegrityError as exc:  # the foreign key: no such call (or deleted meanwhile)
            raise NotFound(NOT_FOUND) from exc

    async def list_events(
        self,
        call_id: str,
        *,
        cursor: str | None = None,
        page_size: int = 100,
        minimum_severity: str = "info",
        type: str | None = None,
    ) -> tuple[list[CallEvent], str | None, str | None, int]:
        """One page of a call's events, oldest first: (results, next, previous, total).

        Only events at `minimum_severity` or above (debug < info < warning < error)
        and, with `type`, of that type are listed and counted.

        Raises:
            NotFound: the call does not exist.
            InvalidRequest: an unknown severity, or a cursor this listing did not hand out.
        """
        if minimum_severity not in SEVERITIES:
            raise InvalidRequest(f"minimum_severity must be one of {', '.join(SEVERITIES)}")
        async with self._sessions() as session:
            row = await self._call_row(session, call_id, None)
            conditions = [
                CallEventRow.call_id == row.call_id,
                CallEventRow.severity.in_(SEVERITIES[SEVERITIES.index(minimum_severity):]),
            ]
            if type is not None:
                conditions.append(CallEventRow.type == type)
            rows, after, before = await fetch_page(
                session, select(CallEventRow).where(*conditions), _EVENTS, lambda r: (r.id,),
                cursor=cursor, page_size=page_size,
            )
            total = await session.scalar(select(func.count()).select_from(CallEventRow).where(*conditions))
        return [_event(r) for r in rows], after, before, int(total or 0)

    # ---------------------------------------------------------------- helpers

    async def _call_row(self, session: AsyncSession, call_id: str, account_id: str | None) -> CallRow:
        uid = _call_uuid(call_id)
        row = await session.get(CallRow, uid) if uid is not None else None
        if row is None or (account_id is not None and row.account_id != account_id):
            raise NotFound(NOT_FOUND)
        return row

    async def _update_call(self, call_id: str, condition: tuple[Any, ...], **values: Any) -> bool:
        uid = _call_uuid(call_id)
        if uid is None:
            return False
        async with self._sessions.begin() as session:
            statement = update(CallRow).where(CallRow.call_id == uid, *condition).values(**values)
            return await self._changed(session, statement)

    @staticmethod
    async def _changed(session: AsyncSession, statement: Any) -> bool:
        result = await session.execute(statement.execution_options(synchronize_session=False))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _insert_ignore(self, entity: type[Any], **values: Any) -> Insert:
        """INSERT that does nothing when the primary key exists (race-free get-or-create)."""
        table: Table = entity.__table__
        if self._engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table).values(**values).on_conflict_do_nothing()
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).values(**values).on_conflict_do_nothing()


def _now() -> datetime:
    return datetime.now(UTC)


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _call_uuid(call_id: str) -> str | None:
    try:
        return str(uuid.UUID(call_id))
    except (ValueError, TypeError, AttributeError):
        return None


def _key_info(row: ApiKeyRow) -> ApiKeyInfo:
    return ApiKeyInfo(
        prefix=row.prefix, name=row.name, account_id=row.account_id, created=row.created,
        revoked=row.revoked is not None, expiry_date=row.expiry_date, creator=row.creator,
    )


async def call_records(session: AsyncSession, rows: Sequence[CallRow]) -> list[CallRecord]:
    """The records of these calls, each with what its last stage changed (one query for all of them)."""
    later = await later_stages(session, [r.call_id for r in rows])
    return [_call_record(r, later.get(r.call_id)) for r in rows]


def _call_record(row: CallRow, stage: CallStageRow | None = None) -> CallRecord:
    request = dict(row.request)
    system = request.pop(_SYSTEM_METADATA, None) or {}
    return CallRecord(
        call_id=row.call_id, account_id=row.account_id, created=row.created, request=request,
        join_url=row.join_url, joined=row.joined, ended=row.ended, end_reason=row.end_reason,
        client_version=row.client_version, tools=row.tools, enable_greeting_prompt=row.enable_greeting_prompt,
        agent_id=row.agent_id, agent_name=row.agent_name,
        system_metadata=dict(system),
        stage_settings=dict(stage.settings or {}) if stage is not None else {},
        stage_tools=stage.tools if stage is not None else None,
    )


def _with_system_metadata(request: dict[str, Any], system: dict[str, str]) -> dict[str, Any]:
    plain = {k: v for k, v in request.items() if k != _SYSTEM_METADATA}
    return {**plain, _SYSTEM_METADATA: system} if system else plain


def _event(row: CallEventRow) -> CallEvent:
    return CallEvent(
        call_id=row.call_id,
        call_stage_id=row.call_stage_id or first_stage_id(str(row.call_id)),
        call_timestamp=format_duration(round(row.call_timestamp, 3)),
        severity=row.severity,
        type=row.type,
        text=row.text,
        extras=row.extras,
        wall_clock_timestamp=row.created.isoformat().replace("+00:00", "Z"),
    )
