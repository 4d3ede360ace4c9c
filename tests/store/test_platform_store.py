"""The platform stores (agents, webhooks and outbox, tombstones, usage) against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from voxcall.errors import NotFound
from voxcall.store import DEFAULT_ACCOUNT_ID, CallRecord, Store
from voxcall.store.agents import AgentStore
from voxcall.store.tombstones import TombstoneStore
from voxcall.store.usage import UsageStore
from voxcall.store.webhooks import UNHEALTHY_AFTER, NewDelivery, Outbox, WebhookStore

T0 = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


async def make_call(store: Store, **fields: object) -> CallRecord:
    record = CallRecord(call_id=str(uuid.uuid4()), account_id=DEFAULT_ACCOUNT_ID, created=T0,
                        request={"voice": "joe", "metadata": {"team": "a"}, "maxDuration": "90s", "recordingEnabled": True},
                        **fields)  # type: ignore[arg-type]
    await store.create_call(record)
    return record


async def test_each_due_delivery_is_leased_by_one_sender(store: Store) -> None:
    hooks = WebhookStore(store.engine)
    hook = await hooks.create(DEFAULT_ACCOUNT_ID, url="https://h.example.com/", events=["call.started"], secrets=["s"], agent_id=None)
    outbox = Outbox(store.engine)
    await outbox.add([NewDelivery(DEFAULT_ACCOUNT_ID, str(uuid.uuid4()), "call.started", f'{{"n":{i}}}', webhook_id=hook.webhook_id)
                      for i in range(6)], at=T0)
    now = datetime.now(UTC)
    senders = [Outbox(store.engine) for _ in range(3)]
    leased = await asyncio.gather(*(s.lease_due(now=now, until=now + timedelta(seconds=60), limit=6) for s in senders))
    ids = [d.id for batch in leased for d in batch]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 6
    assert all(d.url == "https://h.example.com/" and d.secrets == ("s",) for batch in leased for d in batch)
    assert await outbox.lease_due(now=now, until=now, limit=10) == []  # all leased until later
    assert await outbox.next_due() == now + timedelta(seconds=60)
    first = leased[0][0] if leased[0] else next(b[0] for b in leased if b)
    await outbox.failed(first.id, error="HTTP 500", retry_at=now + timedelta(seconds=1), at=now)
    [again] = await outbox.lease_due(now=now + timedelta(seconds=2), until=now + timedelta(seconds=70), limit=10)
    assert again.id == first.id and again.attempts == 1
    await outbox.delivered(again.id, at=now)
    assert await outbox.counts() == {"pending": 5, "delivered": 1}


async def test_webhook_health(store: Store) -> None:
    hooks = WebhookStore(store.engine)
    hook = await hooks.create(DEFAULT_ACCOUNT_ID, url="https://h.example.com/", events=["call.ended"], secrets=["s"], agent_id=None)
    for n in range(UNHEALTHY_AFTER + 9):
        await hooks.record_attempt(hook.webhook_id, at=T0 + timedelta(seconds=n), failure=f"HTTP {500 + n}")
        status = (await hooks.get(hook.webhook_id, DEFAULT_ACCOUNT_ID)).status
        assert status == ("unhealthy" if n + 1 >= UNHEALTHY_AFTER else "normal")
    sick = await hooks.get(hook.webhook_id, DEFAULT_ACCOUNT_ID)
    assert len(sick.recent_failures) == 10 and sick.recent_failures[-1]["failure"] == f"HTTP {500 + UNHEALTHY_AFTER + 8}"
    assert sick.last_status_change == T0 + timedelta(seconds=UNHEALTHY_AFTER - 1)
    await hooks.record_attempt(hook.webhook_id, at=T0 + timedelta(minutes=5), failure=None)
    well = await hooks.get(hook.webhook_id, DEFAULT_ACCOUNT_ID)
    assert well.status == "normal" and well.last_status_change == T0 + timedelta(minutes=5)
    assert [h.webhook_id for h in await hooks.subscribed(DEFAULT_ACCOUNT_ID, "call.ended", None)] == [hook.webhook_id]
    assert await hooks.subscribed(DEFAULT_ACCOUNT_ID, "call.started", None) == []
    assert await hooks.subscribed("someone-else", "call.ended", None) == []


async def test_bury_moves_a_call_to_its_tombstone(store: Store) -> None:
    record = await make_call(store, joined=T0, ended=T0 + timedelta(seconds=30), end_reason="hangup", agent_id=str(uuid.uuid4()))
    tombstones = TombstoneStore(store.engine)
    with pytest.raises(NotFound):
        await tombstones.bury(record.call_id, "another-account")
    tomb = await tombstones.bury(record.call_id, DEFAULT_ACCOUNT_ID)
    assert (tomb.created, tomb.joined, tomb.end_reason, tomb.max_duration, tomb.recording_enabled) == (T0, T0, "hangup", "90s", True)
    assert tomb.agent_id == record.agent_id and tomb.voice == "joe" and tomb.metadata == {"team": "a"}
    with pytest.raises(NotFound):
        await store.get_call(record.call_id)
    with pytest.raises(NotFound):
        await tombstones.bury(record.call_id, DEFAULT_ACCOUNT_ID)
    assert await tombstones.get(record.call_id, DEFAULT_ACCOUNT_ID) == tomb
    page, nxt, prev, total = await tombstones.list_tombstones(DEFAULT_ACCOUNT_ID, cursor=None, page_size=10, agent_ids=[record.agent_id])
    assert page == [tomb] and total == 1 and nxt is None and prev is None


async def test_usage_samples_of_live_and_deleted_calls(store: Store) -> None:
    live = await make_call(store)
    gone = await make_call(store, joined=T0, ended=T0 + timedelta(seconds=5), end_reason="hangup")
    await TombstoneStore(store.engine).bury(gone.call_id, DEFAULT_ACCOUNT_ID)
    samples = await UsageStore(store.engine).samples(DEFAULT_ACCOUNT_ID)
    assert sorted((s.ended is not None, s.voice, s.metadata["team"]) for s in samples) == [(False, "joe", "a"), (True, "joe", "a")]
    assert await UsageStore(store.engine).samples(DEFAULT_ACCOUNT_ID, live_at_or_after=T0 + timedelta(seconds=10)) == [
        s for s in samples if s.ended is None]
    assert live.call_id  # still there


async def test_agent_call_count_is_safe_under_concurrency(store: Store) -> None:
    agents = AgentStore(store.engine)
    agent = await agents.create(DEFAULT_ACCOUNT_ID, "a", {"systemPrompt": "x"})
    await asyncio.gather(*(agents.count_call(agent.agent_id) for _ in range(10)))
    assert (await agents.get(agent.agent_id, DEFAULT_ACCOUNT_ID)).call_count == 10
    with pytest.raises(NotFound):
        await agents.get(agent.agent_id, "another-account")
