"""Start-up ends calls a crash left live, but never those of another live server: SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from tests.store.test_events import T0, new_call
from voxcall.store import Store, open_store
from voxcall.store.serving import ADVISORY_KEY, CHECK_INTERVAL, CHECK_TIMEOUT


async def test_start_serving_ends_stale_calls_only_when_no_other_server_runs(store: Store, store_url: str) -> None:
    crashed = await new_call(store, joined=T0)  # joined, never ended: its process died
    unjoined = await new_call(store)
    first = await open_store(store_url)
    second = await open_store(store_url)
    third = await open_store(store_url)
    try:
        assert await first.start_serving() == 1
        assert (await store.get_call(crashed)).end_reason == "system_error"
        assert (await store.get_call(unjoined)).ended is None
        live = await new_call(store, joined=T0)  # a call the first server is serving
        assert await second.start_serving() == 0  # the first server is running: its call is left alone
        assert (await store.get_call(live)).ended is None
        assert await second.start_serving() == 0  # idempotent
        await first.close()  # the first server goes away without ending its call
        assert await third.start_serving() == 0  # the second still runs
        await second.close()
        await third.close()
        fourth = await open_store(store_url)
        try:
            assert await fourth.start_serving() == 1  # nobody else serves: the call is over
        finally:
            await fourth.close()
        ended = await store.get_call(live)
        assert ended.end_reason == "system_error" and ended.ended is not None
    finally:
        for other in (first, second, third):
            await other.close()


async def test_a_serving_server_does_not_block_another_start_up(store: Store, store_url: str) -> None:
    """The serving lock is not the migration lock: a second node (or `voxcall keys`) still migrates and opens."""
    serving = await open_store(store_url)
    try:
        await serving.start_serving()
        later = await asyncio.wait_for(open_store(store_url), 30)  # runs the migrations under their own lock
        await later.close()
    finally:
        await serving.close()


POSTGRES_ONLY = pytest.mark.parametrize("store_url", [pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)],
                                        indirect=True)


async def _holders(store: Store) -> set[int]:
    """The backend pids holding the serving lock of this database (a bigint key shows as classid, objid)."""
    query = text("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
                 "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                 "AND classid::bigint = :hi AND objid::bigint = :lo")
    async with store.engine.connect() as conn:
        rows = await conn.execute(query, {"hi": ADVISORY_KEY >> 32, "lo": ADVISORY_KEY & 0xFFFFFFFF})
        return {int(row[0]) for row in rows}


@POSTGRES_ONLY
async def test_the_serving_lock_is_taken_again_when_its_session_is_killed(store: Store, store_url: str) -> None:
    first = await open_store(store_url)
    second: Store | None = None
    try:
        await first.start_serving()
        live = await new_call(store, joined=T0)  # a call the first server is serving
        (holder,) = await _holders(store)
        async with store.engine.connect() as conn:  # what a PostgreSQL restart or failover does to the session
            assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": holder}) is True
        loop = asyncio.get_running_loop()
        killed = loop.time()
        holders: set[int] = set()
        while loop.time() - killed < 10 * CHECK_INTERVAL:
            holders = await _holders(store)
            if holders - {holder}:
                break
            await asyncio.sleep(0.05)
        assert holders and holder not in holders, "the lock was not taken again"
        assert loop.time() - killed < CHECK_INTERVAL + CHECK_TIMEOUT
        second = await open_store(store_url)
        assert await second.start_serving() == 0  # the first server is known to be running again
        assert (await store.get_call(live)).ended is None
    finally:
        for other in (first, second):
            if other is not None:
                await other.close()
    for _ in range(100):  # closing a store ends the lock's session: the backend exits just after
        if not await _holders(store):
            break
        await asyncio.sleep(0.05)
    assert await _holders(store) == set()
