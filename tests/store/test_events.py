"""Call events and stale-call clean-up against real SQL: SQLite and PostgreSQL (fixtures in conftest.py)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import inspect, text

from voxcall.errors import InvalidRequest, NotFound
from voxcall.protocol.rest import CallMessage, first_stage_id
from voxcall.store import CallRecord, Store
from voxcall.store.migrate import alembic_config, upgrade

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


async def new_call(store: Store, account_id: str = "a", **fields: object) -> str:
    record = CallRecord(call_id=str(uuid.uuid4()), account_id=account_id, created=T0, request={}, **fields)  # type: ignore[arg-type]
    await store.create_call(record)
    return record.call_id


async def seed(store: Store, call_id: str) -> None:
    """debug, info, warning, error, info: in that order."""
    for i, severity in enumerate(["debug", "info", "warning", "error", "info"]):
        await store.add_event(call_id, type=f"t{i % 2}", text=f"e{i}", severity=severity, call_timestamp=float(i))


# -------------------------------------------------------------------- events


async def test_event_shape(store: Store) -> None:
    call_id = await new_call(store)
    before = datetime.now(UTC)
    await store.add_event(
        call_id, type="audio_underflow", text="Client audio underflow", severity="warning",
        call_timestamp=12.3456, extras={"droppedMs": 40, "nested": {"a": [1, None]}},
    )
    await store.add_event(call_id, type="call_started", text="joined")
    events, after, prev, total = await store.list_events(call_id)
    assert (after, prev, total) == (None, None, 2)
    first, second = events
    assert first.wire() == {
        "callId": call_id, "callStageId": first_stage_id(call_id), "callTimestamp": "12.346s", "severity": "warning",
        "type": "audio_underflow", "text": "Client audio underflow", "extras": {"droppedMs": 40, "nested": {"a": [1, None]}},
        "wallClockTimestamp": first.wall_clock_timestamp,
    }
    assert first.wall_clock_timestamp is not None and first.wall_clock_timestamp.endswith("Z")
    wall = datetime.fromisoformat(first.wall_clock_timestamp)
    assert wall.tzinfo is not None and before - timedelta(seconds=1) <= wall <= datetime.now(UTC)
    assert (second.call_timestamp, second.severity, second.extras) == ("0s", "info", None)


@pytest.mark.parametrize(("seconds", "expected"), [(0.0, "0s"), (2.0, "2s"), (1.2344, "1.234s"), (0.0004, "0s"), (59.9996, "60s")])
async def test_call_timestamp_is_a_duration_in_milliseconds(store: Store, seconds: float, expected: str) -> None:
    call_id = await new_call(store)
    await store.add_event(call_id, type="x", text="x", call_timestamp=seconds)
    [event], _, _, _ = await store.list_events(call_id)
    assert event.call_timestamp == expected


@pytest.mark.parametrize(
    ("minimum", "texts"),
    [("debug", ["e0", "e1", "e2", "e3", "e4"]), ("info", ["e1", "e2", "e3", "e4"]), ("warning", ["e2", "e3"]), ("error", ["e3"])],
)
async def test_minimum_severity(store: Store, minimum: str, texts: list[str]) -> None:
    call_id = await new_call(store)
    await seed(store, call_id)
    events, _, _, total = await store.list_events(call_id, minimum_severity=minimum)
    assert [e.text for e in events] == texts and total == len(texts)


async def test_default_minimum_is_info_and_type_filter(store: Store) -> None:
    call_id = await new_call(store)
    await seed(store, call_id)
    events, _, _, total = await store.list_events(call_id, type="t0")  # e0 (debug), e2, e4
    assert [e.text for e in events] == ["e2", "e4"] and total == 2
    events, _, _, total = await store.list_events(call_id, type="t0", minimum_severity="debug")
    assert [e.text for e in events] == ["e0", "e2", "e4"] and total == 3
    assert (await store.list_events(call_id, type="nope"))[3] == 0


async def test_events_belong_to_their_call(store: Store) -> None:
    first, second = await new_call(store), await new_call(store)
    await seed(store, first)
    await store.add_event(second, type="x", text="other")
    events, _, _, total = await store.list_events(second)
    assert [e.text for e in events] == ["other"] and total == 1 and events[0].call_id == second
    assert (await store.list_events(first.upper()))[3] == 4


async def test_events_page_oldest_first(store: Store) -> None:
    call_id = await new_call(store)
    for i in range(7):
        await store.add_event(call_id, type="n", text=str(i), severity="debug" if i == 3 else "info")
    pages: list[list[str]] = []
    cursor: str | None = None
    befores: list[str | None] = []
    while True:
        events, cursor, before, total = await store.list_events(call_id, cursor=cursor, page_size=2)
        assert total == 6
        pages.append([e.text for e in events])
        befores.append(before)
        if cursor is None:
            break
    assert pages == [["0", "1"], ["2", "4"], ["5", "6"]]
    assert befores[0] is None and all(befores[1:])
    back, after, before, _ = await store.list_events(call_id, cursor=befores[2], page_size=2)
    assert [e.text for e in back] == ["2", "4"] and after and before
    first, _, before, _ = await store.list_events(call_id, cursor=before, page_size=2)
    assert [e.text for e in first] == ["0", "1"] and before is None


async def test_event_cursor_is_not_a_messages_cursor(store: Store) -> None:
    call_id = await new_call(store)
    for _ in range(2):
        await store.add_message(call_id, CallMessage(role="MESSAGE_ROLE_USER", text="x"))
        await store.add_event(call_id, type="x", text="x")
    _, messages_cursor, _, _ = await store.list_messages(call_id, page_size=1)
    _, events_cursor, _, _ = await store.list_events(call_id, page_size=1)
    assert messages_cursor and events_cursor
    with pytest.raises(InvalidRequest, match="Invalid cursor"):
        await store.list_events(call_id, cursor=messages_cursor)
    with pytest.raises(InvalidRequest, match="Invalid cursor"):
        await store.list_messages(call_id, cursor=events_cursor)
    with pytest.raises(InvalidRequest):
        await store.list_events(call_id, page_size=0)


async def test_event_arguments_are_checked(store: Store) -> None:
    call_id = await new_call(store)
    with pytest.raises(ValueError, match="severity"):
        await store.add_event(call_id, type="x", text="x", severity="fatal")
    with pytest.raises(ValueError, match="longer than 50"):
        await store.add_event(call_id, type="x" * 51, text="x")
    await store.add_event(call_id, type="y" * 50, text="x")
    with pytest.raises(InvalidRequest, match="minimum_severity"):
        await store.list_events(call_id, minimum_severity="fatal")
    assert [e.type for e in (await store.list_events(call_id))[0]] == ["y" * 50]


async def test_events_of_unknown_calls(store: Store) -> None:
    for call_id in (str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(NotFound):
            await store.add_event(call_id, type="x", text="x")
        with pytest.raises(NotFound):
            await store.list_events(call_id)


async def test_deleting_a_call_deletes_its_events(store: Store) -> None:
    kept, gone = await new_call(store), await new_call(store)
    await seed(store, kept)
    await seed(store, gone)
    await store.delete_call(gone, "a")
    async with store.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT DISTINCT call_id FROM call_events"))).scalars().all()
    assert rows == [kept]
    with pytest.raises(NotFound):
        await store.add_event(gone, type="x", text="late")


async def test_concurrent_events_are_all_kept(store: Store) -> None:
    call_id = await new_call(store)
    await asyncio.gather(*(store.add_event(call_id, type="n", text=str(i)) for i in range(12)))
    events, _, _, total = await store.list_events(call_id)
    assert total == 12 and sorted(int(e.text) for e in events) == list(range(12))


async def test_migration_0002_downgrades_and_upgrades(store: Store) -> None:
    call_id = await new_call(store)
    await store.add_event(call_id, type="x", text="x")
    async with store.engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0001"))
        tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert "call_events" not in tables and "calls" in tables
    await upgrade(store.engine)
    await store.add_event(call_id, type="x", text="again")
    assert [e.text for e in (await store.list_events(call_id))[0]] == ["again"]


# --------------------------------------------------------------- stale calls


async def test_mark_stale_calls_ended(store: Store) -> None:
    stale_a = await new_call(store, "a", joined=T0)
    stale_b = await new_call(store, "b", joined=T0)
    unjoined = await new_call(store, "a")
    ended = await new_call(store, "a", joined=T0, ended=T0 + timedelta(minutes=1), end_reason="hangup")
    before = datetime.now(UTC)
    assert await store.mark_stale_calls_ended() == 2
    for call_id in (stale_a, stale_b):
        got = await store.get_call(call_id)
        assert got.end_reason == "system_error" and got.ended is not None
        assert before - timedelta(seconds=1) <= got.ended <= datetime.now(UTC)
    assert (await store.get_call(unjoined)).ended is None
    assert (await store.get_call(ended)).end_reason == "hangup"
    assert await store.count_live_calls("a") == 0 and await store.count_live_calls("b") == 0
    assert await store.mark_stale_calls_ended() == 0


async def test_mark_stale_calls_ended_with_a_reason(store: Store) -> None:
    call_id = await new_call(store, joined=T0)
    assert await store.mark_stale_calls_ended(reason="server_restart") == 1
    assert (await store.get_call(call_id)).end_reason == "server_restart"
    assert await store.mark_ended(call_id, reason="hangup", at=T0) is False  # ends once
