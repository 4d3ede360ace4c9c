"""ToolStore against real SQL: SQLite and PostgreSQL (fixtures in conftest.py)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import inspect

from voxcall.errors import ApiError, InvalidRequest, NotFound
from voxcall.protocol.rest import CallMessage
from voxcall.store import CallRecord, Store
from voxcall.store.migrate import alembic_config, upgrade
from voxcall.store.tools import PublicTool, ToolStore

BUILT_IN = PublicTool(str(uuid.uuid5(uuid.NAMESPACE_URL, "test:hangUp")), "hangUp", {"modelToolName": "hangUp"})
DEF = {"modelToolName": "t", "client": {}}
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def tools(store: Store) -> ToolStore:
    return ToolStore(store.engine, [BUILT_IN])


async def new_call(store: Store, account_id: str, minutes: int = 0) -> CallRecord:
    record = CallRecord(call_id=str(uuid.uuid4()), account_id=account_id, created=T0 + timedelta(minutes=minutes), request={})
    await store.create_call(record)
    return record


async def test_create_get_replace_delete(tools: ToolStore) -> None:
    created = await tools.create("a", "weather", DEF)
    assert (await tools.get(created.tool_id, "a")) == created and created.ownership == "private"
    replaced = await tools.replace(created.tool_id, "a", "forecast", {**DEF, "description": "x"})
    assert (replaced.name, replaced.definition["description"], replaced.created) == ("forecast", "x", created.created)
    await tools.delete(created.tool_id, "a")
    with pytest.raises(NotFound):
        await tools.get(created.tool_id, "a")


async def test_accounts_names_and_the_public_tools(tools: ToolStore) -> None:
    mine = await tools.create("a", "weather", DEF)
    await tools.create("b", "weather", DEF)  # names are unique per account only
    with pytest.raises(ApiError) as dup:
        await tools.create("a", "weather", DEF)
    assert dup.value.status_code == 409
    other = await tools.create("a", "other", DEF)
    with pytest.raises(ApiError) as taken:
        await tools.replace(other.tool_id, "a", "weather", DEF)
    assert taken.value.status_code == 409 and (await tools.get(other.tool_id, "a")).name == "other"
    for call in (tools.get(mine.tool_id, "b"), tools.delete(mine.tool_id, "b"), tools.replace(mine.tool_id, "b", "x", DEF),
                 tools.get("not-a-uuid", "a")):
        with pytest.raises(NotFound):
            await call
    public = await tools.get(BUILT_IN.tool_id, "b")
    assert (public.name, public.ownership, public.account_id) == ("hangUp", "public", None)
    with pytest.raises(ApiError) as forbidden:
        await tools.delete(BUILT_IN.tool_id, "a")
    assert forbidden.value.status_code == 403
    assert (await tools.by_name("hangUp", "a")).tool_id == BUILT_IN.tool_id
    shadow = await tools.create("a", "hangUp", DEF)
    assert (await tools.by_name("hangUp", "a")).tool_id == shadow.tool_id
    assert (await tools.by_name("hangUp", "b")).tool_id == BUILT_IN.tool_id
    with pytest.raises(NotFound, match="no tool named 'nope'"):
        await tools.by_name("nope", "a")


async def test_public_tools_are_written_once_by_any_number_of_stores(store: Store) -> None:
    stores = [ToolStore(store.engine, [BUILT_IN]) for _ in range(4)]
    await asyncio.gather(*(s.list_tools("a") for s in stores))
    updated = PublicTool(BUILT_IN.tool_id, "hangUp", {"modelToolName": "hangUp", "description": "new"})
    tools, _, _, total = await ToolStore(store.engine, [updated]).list_tools("a", ownership="public")
    assert total == 1 and tools[0].definition["description"] == "new"


async def test_list_orders_filters_and_pages(tools: ToolStore) -> None:
    for name in ("b_tool", "A%tool", "c_tool"):
        await tools.create("a", name, DEF)
        await asyncio.sleep(0.01)
    await tools.create("b", "elsewhere", DEF)

    async def names(**kw: object) -> list[str]:
        return [t.name for t in (await tools.list_tools("a", **kw))[0]]  # type: ignore[arg-type]

    assert await names() == ["c_tool", "A%tool", "b_tool", "hangUp"]
    assert await names(sort="display") == ["hangUp", "c_tool", "A%tool", "b_tool"]
    assert await names(sort="alphabetic") == ["A%tool", "b_tool", "c_tool", "hangUp"]
    assert await names(sort="reverseAlphabetic") == ["hangUp", "c_tool", "b_tool", "A%tool"]
    assert await names(sort="chronologic") == ["hangUp", "b_tool", "A%tool", "c_tool"]
    assert await names(sort="reverseChronologic") == ["c_tool", "A%tool", "b_tool", "hangUp"]
    assert await names(search="%") == ["A%tool"]  # LIKE wildcards are literal
    assert await names(search="_T") == ["c_tool", "b_tool"]
    assert await names(ownership="public") == ["hangUp"]
    first, after, before, total = await tools.list_tools("a", sort="alphabetic", page_size=3)
    assert total == 4 and before is None and after is not None and len(first) == 3
    second, after2, before2, _ = await tools.list_tools("a", sort="alphabetic", page_size=3, cursor=after)
    assert [t.name for t in second] == ["hangUp"] and after2 is None and before2 is not None
    back, _, _, _ = await tools.list_tools("a", sort="alphabetic", page_size=3, cursor=before2)
    assert back == first
    with pytest.raises(InvalidRequest, match="sortOrder=alphabetic"):
        await tools.list_tools("a", cursor=after)
    for bad in ("!!", "W10", after + "x"):
        with pytest.raises(InvalidRequest):
            await tools.list_tools("a", sort="alphabetic", cursor=bad)
    with pytest.raises(InvalidRequest, match="sortOrder must be one of"):
        await tools.list_tools("a", sort="sideways")


async def test_history_pages_counts_errors_and_follows_deletes(store: Store, tools: ToolStore) -> None:
    tool = await tools.create("a", "weather", DEF)
    calls = [await new_call(store, "a", minutes=i) for i in range(3)]
    for record in calls:
        await tools.record_uses(record.call_id, record.created, {tool.tool_id: ["w1", "w2"]})
    theirs = await new_call(store, "b", minutes=9)
    await tools.record_uses(theirs.call_id, theirs.created, {BUILT_IN.tool_id: ["hangUp"]})
    for name, error in [("w1", "HTTP 500"), ("w2", "timed out"), ("w1", None), ("other", "boom")]:
        await store.add_message(calls[0].call_id, CallMessage(role="MESSAGE_ROLE_TOOL_RESULT", tool_name=name, text="x",
                                                               error_details=error))
    page, after, before, total = await tools.history(tool.tool_id, "a", page_size=2)
    assert total == 3 and before is None and [u.call.call_id for u in page] == [calls[2].call_id, calls[1].call_id]
    rest, after2, _, _ = await tools.history(tool.tool_id, "a", page_size=2, cursor=after)
    assert [(u.call.call_id, u.error_count) for u in rest] == [(calls[0].call_id, 2)] and after2 is None
    assert [u.error_count for u in page] == [0, 0]
    assert (await tools.history(BUILT_IN.tool_id, "a"))[3] == 0  # b's use of the built-in is b's
    assert (await tools.history(BUILT_IN.tool_id, "b"))[3] == 1
    with pytest.raises(NotFound):
        await tools.history(tool.tool_id, "b")
    await store.delete_call(calls[2].call_id, "a")
    assert (await tools.history(tool.tool_id, "a"))[3] == 2
    await tools.delete(tool.tool_id, "a")
    with pytest.raises(NotFound):
        await tools.history(tool.tool_id, "a")


async def test_migration_0003_downgrades_and_upgrades(store: Store, tools: ToolStore) -> None:
    await tools.create("a", "weather", DEF)
    async with store.engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0002"))
        names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert "tools" not in names and "tool_uses" not in names and "call_events" in names
    await upgrade(store.engine)
    fresh = ToolStore(store.engine, [BUILT_IN])
    assert [t.name for t in (await fresh.list_tools("a"))[0]] == ["hangUp"]
