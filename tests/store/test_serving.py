"""Start-up ends calls a crash left live, but never those of another live server: SQLite and PostgreSQL."""

from __future__ import annotations

from tests.store.test_events import T0, new_call
from voxcall.store import Store, open_store


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
