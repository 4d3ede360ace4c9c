"""`Store.joined_unended_calls`, the stale-call sweep's query, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from voxcall.store import DEFAULT_ACCOUNT_ID, CallRecord, Store

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


async def new_call(store: Store, account_id: str = DEFAULT_ACCOUNT_ID) -> str:
    record = CallRecord(call_id=str(uuid.uuid4()), account_id=account_id, created=T0, request={"systemPrompt": "x"})
    await store.create_call(record)
    return record.call_id


async def test_joined_unended_calls_before_a_cutoff_oldest_first_over_every_account(store: Store) -> None:
    late, early, fresh, ended, unjoined = [await new_call(store) for _ in range(5)]
    other_account = await new_call(store, "another-account")
    joins = {late: T0 + timedelta(seconds=20), early: T0 + timedelta(seconds=10),
             other_account: T0 + timedelta(seconds=15), fresh: T0 + timedelta(seconds=100), ended: T0}
    for call_id, at in joins.items():
        assert await store.mark_joined(call_id, client_version=None, at=at)
    await store.mark_ended(ended, reason="hangup", at=T0 + timedelta(seconds=1))
    cutoff = T0 + timedelta(seconds=60)
    assert await store.joined_unended_calls(joined_before=cutoff) == [early, other_account, late]
    assert await store.joined_unended_calls(joined_before=cutoff, limit=2) == [early, other_account]
    assert await store.joined_unended_calls(joined_before=T0 + timedelta(seconds=10)) == []  # strictly before
    assert unjoined not in await store.joined_unended_calls(joined_before=T0 + timedelta(days=1))
