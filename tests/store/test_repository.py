"""The Store against real SQL: SQLite and PostgreSQL (fixtures in conftest.py)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from voxcall.errors import InvalidRequest, NotFound
from voxcall.protocol.rest import CallMessage, first_stage_id
from voxcall.store import DEFAULT_ACCOUNT_ID, CallRecord, Store, open_store
from voxcall.store.migrate import alembic_config
from voxcall.store.tables import Base

KEY = re.compile(r"^[A-Za-z0-9]{8}\.[A-Za-z0-9]{32}$")
T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def call(account_id: str, *, created: datetime = T0, **fields: object) -> CallRecord:
    return CallRecord(
        call_id=str(uuid.uuid4()), account_id=account_id, created=created, request={"systemPrompt": "hi"}, **fields
    )  # type: ignore[arg-type]


async def dump_table(store: Store, table: str) -> str:
    async with store.engine.connect() as conn:
        return repr((await conn.execute(text(f"SELECT * FROM {table}"))).all())


# ------------------------------------------------------------------ api keys


async def test_create_key_format_and_authenticate(store: Store) -> None:
    key, info = await store.create_api_key("ci")
    assert KEY.match(key)
    assert info.prefix == key[:8] and info.name == "ci" and not info.revoked
    assert info.created.tzinfo == UTC
    assert await store.authenticate(key) == info.account_id == DEFAULT_ACCOUNT_ID
    assert await store.get_account_name(info.account_id) == "default"


async def test_key_is_stored_as_sha256_only(store: Store) -> None:
    key, _ = await store.create_api_key()
    dumped = await dump_table(store, "api_keys")
    assert key not in dumped and key[9:] not in dumped
    assert hashlib.sha256(key.encode()).hexdigest() in dumped


@pytest.mark.parametrize(
    "bad", ["", "nonsense", "ABCDEFGH.0123456789abcdef0123456789abcdef", "ABCDEFG.0123456789abcdef0123456789abcdefg"]
)
async def test_authenticate_rejects_unknown_and_malformed_keys(store: Store, bad: str) -> None:
    await store.create_api_key()
    assert await store.authenticate(bad) is None


async def test_authenticate_needs_the_whole_key(store: Store) -> None:
    key, _ = await store.create_api_key()
    forged = key[:9] + ("A" if key[9] != "A" else "B") + key[10:]
    assert await store.authenticate(forged) is None


async def test_revoke(store: Store) -> None:
    key, info = await store.create_api_key()
    other, _ = await store.create_api_key("second")
    assert await store.count_active_api_keys() == 2
    assert await store.revoke_api_key(info.prefix) is True
    assert await store.revoke_api_key(info.prefix) is True  # idempotent
    assert await store.revoke_api_key("nope1234") is False
    assert await store.authenticate(key) is None
    assert await store.authenticate(other) == DEFAULT_ACCOUNT_ID
    assert await store.count_active_api_keys() == 1
    listed = {k.prefix: k for k in await store.list_api_keys()}
    assert listed[info.prefix].revoked and listed[info.prefix].name == "default"
    assert not listed[other[:8]].revoked


async def test_accounts(store: Store) -> None:
    _, first = await store.create_api_key()
    _, second = await store.create_api_key()
    _, mine = await store.create_api_key(account_id="acct-2")
    assert first.account_id == second.account_id == DEFAULT_ACCOUNT_ID
    assert mine.account_id == "acct-2"
    assert await store.get_account_name("acct-2") == "acct-2"
    with pytest.raises(NotFound):
        await store.get_account_name("missing")


async def test_secret_created_once(store: Store) -> None:
    values = await asyncio.gather(*(store.get_or_create_secret("join") for _ in range(8)))
    assert len(set(values)) == 1 and len(values[0]) >= 43
    assert await store.get_or_create_secret("join") == values[0]
    assert await store.get_or_create_secret("other") != values[0]


# --------------------------------------------------------------------- calls


async def test_call_round_trip(store: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    record = call(
        "a",
        created=datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=plus_two),
        join_url="wss://x/calls/1",
        tools=[{"name": "t", "definition": {"x": [1, 2]}}],
        enable_greeting_prompt=False,
    )
    record.request = {"systemPrompt": "hé", "metadata": {"k": "v"}, "temperature": 0.5}
    await store.create_call(record)
    got = await store.get_call(record.call_id, "a")
    assert got.created == record.created and got.created.tzinfo == UTC and got.created.hour == 10
    assert (got.request, got.tools, got.join_url) == (record.request, record.tools, record.join_url)
    assert got.enable_greeting_prompt is False and got.joined is None and got.ended is None
    assert await store.get_call(record.call_id.upper()) == got  # account check is optional


async def test_get_call_not_found(store: Store) -> None:
    record = call("a")
    await store.create_call(record)
    for call_id, account in [(record.call_id, "b"), (str(uuid.uuid4()), "a"), ("not-a-uuid", "a"), ("", None)]:
        with pytest.raises(NotFound, match="Not found."):
            await store.get_call(call_id, account)


async def test_create_call_needs_a_uuid(store: Store) -> None:
    record = call("a")
    record.call_id = "abc"
    with pytest.raises(InvalidRequest):
        await store.create_call(record)


async def test_list_calls_pages_newest_first(store: Store) -> None:
    records = [call("a", created=T0 + timedelta(seconds=i // 2)) for i in range(8)]  # pairs share `created`
    for record in records:
        await store.create_call(record)
    await store.create_call(call("b"))
    expected = [r.call_id for r in sorted(records, key=lambda r: (r.created, r.call_id), reverse=True)]

    pages: list[list[str]] = []
    cursor: str | None = None
    previous: list[str | None] = []
    while True:
        results, cursor, before, total = await store.list_calls("a", cursor=cursor, page_size=3)
        assert total == 8
        pages.append([r.call_id for r in results])
        previous.append(before)
        if cursor is None:
            break
    assert pages == [expected[0:3], expected[3:6], expected[6:8]]
    assert previous[0] is None and all(previous[1:])

    # Walk back from the last page with `previous`.
    back, after, before, _ = await store.list_calls("a", cursor=previous[2], page_size=3)
    assert [r.call_id for r in back] == expected[3:6] and after is not None and before is not None
    first, _, before, _ = await store.list_calls("a", cursor=before, page_size=3)
    assert [r.call_id for r in first] == expected[0:3] and before is None
    again, _, _, _ = await store.list_calls("a", cursor=after, page_size=3)
    assert [r.call_id for r in again] == expected[6:8]


async def test_new_calls_do_not_shift_later_pages(store: Store) -> None:
    for i in range(4):
        await store.create_call(call("a", created=T0 + timedelta(seconds=i)))
    page1, cursor, _, _ = await store.list_calls("a", page_size=2)
    await store.create_call(call("a", created=T0 + timedelta(hours=1)))
    page2, _, _, total = await store.list_calls("a", cursor=cursor, page_size=2)
    assert total == 5
    assert [r.created for r in page1 + page2] == [T0 + timedelta(seconds=s) for s in (3, 2, 1, 0)]


async def test_page_emptied_by_deletes_still_links_back(store: Store) -> None:
    records = [call("a", created=T0 + timedelta(seconds=i)) for i in range(4)]
    for record in records:
        await store.create_call(record)
    _, cursor, _, _ = await store.list_calls("a", page_size=2)
    for record in records[:2]:  # the second page, oldest first
        await store.delete_call(record.call_id, "a")
    empty, after, before, total = await store.list_calls("a", cursor=cursor, page_size=2)
    assert (empty, after, total) == ([], None, 2)
    back, _, _, _ = await store.list_calls("a", cursor=before, page_size=2)
    assert [r.call_id for r in back] == [records[3].call_id, records[2].call_id]


@pytest.mark.parametrize("cursor", ["garbage!", "bm9wZQ", "WyJtIiwibiIsZmFsc2UsMV0"])  # last: a messages cursor
async def test_list_calls_rejects_bad_cursors(store: Store, cursor: str) -> None:
    with pytest.raises(InvalidRequest, match="Invalid cursor"):
        await store.list_calls("a", cursor=cursor)


async def test_an_empty_cursor_is_the_first_page(store: Store) -> None:
    """`?cursor=` reads as no cursor, as DRF's CursorPagination reads it."""
    for i in range(3):
        await store.create_call(call("a", created=T0 + timedelta(seconds=i)))
    assert await store.list_calls("a", cursor="", page_size=2) == await store.list_calls("a", page_size=2)


async def test_list_calls_rejects_page_size_zero(store: Store) -> None:
    with pytest.raises(InvalidRequest):
        await store.list_calls("a", page_size=0)


async def test_delete_call_removes_messages(store: Store) -> None:
    kept, gone = call("a"), call("a")
    for record in (kept, gone):
        await store.create_call(record)
        await store.add_message(record.call_id, CallMessage(role="MESSAGE_ROLE_USER", text="x"))
    with pytest.raises(NotFound):
        await store.delete_call(gone.call_id, "b")
    await store.delete_call(gone.call_id, "a")
    with pytest.raises(NotFound):
        await store.get_call(gone.call_id)
    with pytest.raises(NotFound):
        await store.delete_call(gone.call_id, "a")
    with pytest.raises(NotFound):
        await store.delete_call("not-a-uuid", "a")
    async with store.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT call_id FROM call_messages"))).scalars().all()
    assert rows == [kept.call_id]


async def test_mark_joined_once(store: Store) -> None:
    record = call("a")
    await store.create_call(record)
    at = T0 + timedelta(seconds=5)
    assert await store.mark_joined(record.call_id, client_version="web_0.4.1", at=at) is True
    assert await store.mark_joined(record.call_id, client_version="other", at=at + timedelta(seconds=1)) is False
    got = await store.get_call(record.call_id)
    assert (got.joined, got.client_version) == (at, "web_0.4.1")
    assert await store.mark_joined(str(uuid.uuid4()), client_version=None, at=at) is False
    assert await store.mark_joined("nope", client_version=None, at=at) is False


async def test_mark_joined_concurrently_exactly_once(store: Store) -> None:
    record = call("a")
    await store.create_call(record)
    results = await asyncio.gather(
        *(store.mark_joined(record.call_id, client_version=str(i), at=T0) for i in range(10))
    )
    assert sorted(results) == [False] * 9 + [True]


async def test_mark_ended_once_and_live_calls(store: Store) -> None:
    live, unjoined, other = call("a"), call("a"), call("b")
    for record in (live, unjoined, other):
        await store.create_call(record)
    await store.mark_joined(live.call_id, client_version=None, at=T0)
    await store.mark_joined(other.call_id, client_version=None, at=T0)
    assert await store.count_live_calls("a") == 1

    end = T0 + timedelta(minutes=1)
    assert await store.mark_ended(live.call_id, reason="hangup", at=end) is True
    assert await store.mark_ended(live.call_id, reason="timeout", at=end + timedelta(seconds=1)) is False
    assert await store.mark_ended(unjoined.call_id, reason="unjoined", at=end) is True
    assert await store.mark_joined(unjoined.call_id, client_version=None, at=end) is False  # ended: no join
    got = await store.get_call(live.call_id)
    assert (got.ended, got.end_reason) == (end, "hangup")
    assert await store.count_live_calls("a") == 0 and await store.count_live_calls("b") == 1


# ------------------------------------------------------------------ messages


async def test_messages_dense_ordered_and_complete(store: Store) -> None:
    first, second = call("a"), call("a")
    for record in (first, second):
        await store.create_call(record)
    full = CallMessage(
        role="MESSAGE_ROLE_TOOL_RESULT", text='{"ok": true}', invocation_id="inv-1", tool_name="lookup",
        error_details="none", medium="MESSAGE_MEDIUM_TEXT", call_stage_id=first_stage_id(first.call_id), call_state={"n": 1},
        timespan={"start": "1s", "end": "2s"}, wall_clock_timespan={"start": "0s"}, metadata={"m": "x"},
    )
    user = [CallMessage(role="MESSAGE_ROLE_USER", text=str(i)) for i in range(3)]
    stored = [await store.add_message(first.call_id, message) for message in user]
    stored.append(await store.add_message(first.call_id, full))
    other = await store.add_message(second.call_id, CallMessage(role="MESSAGE_ROLE_AGENT", text="x"))
    assert [m.call_stage_message_index for m in stored] == [0, 1, 2, 3]
    assert other.call_stage_message_index == 0
    assert stored[3] == full.model_copy(update={"call_stage_message_index": 3})

    results, after, before, total = await store.list_messages(first.call_id)
    assert results == stored and (after, before, total) == (None, None, 4)
    page, after, before, _ = await store.list_messages(first.call_id, page_size=3)
    assert [m.text for m in page] == ["0", "1", "2"] and before is None
    rest, end, before, _ = await store.list_messages(first.call_id, cursor=after, page_size=3)
    assert rest == [stored[3]] and end is None
    back, _, _, _ = await store.list_messages(first.call_id, cursor=before, page_size=3)
    assert back == page


async def test_messages_of_unknown_calls(store: Store) -> None:
    message = CallMessage(role="MESSAGE_ROLE_USER", text="x")
    for call_id in (str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(NotFound):
            await store.add_message(call_id, message)
        with pytest.raises(NotFound):
            await store.list_messages(call_id)


async def test_message_cursor_is_not_a_calls_cursor(store: Store) -> None:
    record = call("a")
    await store.create_call(record)
    for _ in range(2):
        await store.add_message(record.call_id, CallMessage(role="MESSAGE_ROLE_USER", text="x"))
    await store.create_call(call("a"))
    _, calls_cursor, _, _ = await store.list_calls("a", page_size=1)
    assert calls_cursor is not None
    with pytest.raises(InvalidRequest, match="Invalid cursor"):
        await store.list_messages(record.call_id, cursor=calls_cursor)


async def test_concurrent_messages_get_dense_indexes(store: Store) -> None:
    record = call("a")
    await store.create_call(record)
    stored = await asyncio.gather(
        *(store.add_message(record.call_id, CallMessage(role="MESSAGE_ROLE_USER", text=str(i))) for i in range(12))
    )
    assert sorted(m.call_stage_message_index for m in stored) == list(range(12))  # type: ignore[type-var]
    listed, _, _, total = await store.list_messages(record.call_id)
    assert total == 12 and [m.call_stage_message_index for m in listed] == list(range(12))


# ---------------------------------------------------------------- migrations


async def test_migrations_are_idempotent_on_reopen(store: Store, store_url: str) -> None:
    key, _ = await store.create_api_key()
    again = await open_store(store_url)
    try:
        assert await again.authenticate(key) == DEFAULT_ACCOUNT_ID
        async with again.engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert versions == [head] and head is not None
    finally:
        await again.close()


async def test_migrated_schema_matches_the_models(store: Store) -> None:
    async with store.engine.connect() as conn:
        diff = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
    assert diff == []


async def test_open_store_sqlite_variants(tmp_path: object) -> None:
    from pathlib import Path

    nested = Path(str(tmp_path)) / "a" / "b" / "v.db"
    for url in (f"sqlite:///{nested}", "sqlite+aiosqlite:///:memory:"):
        store = await open_store(url)
        try:
            key, _ = await store.create_api_key()
            assert await store.authenticate(key) == DEFAULT_ACCOUNT_ID
        finally:
            await store.close()
    assert nested.exists()
    with pytest.raises(ValueError, match="unsupported"):
        await open_store("mysql://u:p@localhost/x")


async def test_in_memory_store_takes_turns() -> None:
    # One connection holds a `:memory:` database; concurrent sessions must not interleave on it.
    store = await open_store("sqlite+aiosqlite:///:memory:")
    try:
        records = [call("a") for _ in range(4)]
        for record in records:
            await store.create_call(record)

        async def talk(call_id: str) -> int:
            for i in range(5):
                await store.add_message(call_id, CallMessage(role="MESSAGE_ROLE_USER", text=str(i)))
                await store.list_calls("a")
            return (await store.list_messages(call_id))[3]

        assert await asyncio.gather(*(talk(r.call_id) for r in records)) == [5] * 4
    finally:
        await store.close()
