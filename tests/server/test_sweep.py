"""The periodic stale-call sweep: joined calls that no host holds are ended; hosted and fresh ones are not."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.server.inprocess import build_services
from voxcall.providers.fake import ScriptedLLM
from voxcall.server.live import LiveCalls
from voxcall.server.services import Services
from voxcall.server.sweep import StaleCallSweep
from voxcall.store import DEFAULT_ACCOUNT_ID, CallRecord


class Directory:
    """A `LiveDirectory` that another node could answer: these ids are hosted somewhere."""

    def __init__(self, held: set[str]) -> None:
        self.ids = held
        self.asked: list[set[str]] = []

    async def held(self, call_ids: Iterable[str]) -> set[str]:
        asked = set(call_ids)
        self.asked.append(asked)
        return asked & self.ids


async def joined_call(svc: Services, joined_ago: float) -> str:
    now = datetime.now(UTC)
    record = CallRecord(call_id=str(uuid.uuid4()), account_id=DEFAULT_ACCOUNT_ID, created=now - timedelta(seconds=joined_ago + 1),
                        request={"systemPrompt": "sweep"})
    await svc.store.create_call(record)
    assert await svc.store.mark_joined(record.call_id, client_version=None, at=now - timedelta(seconds=joined_ago))
    return record.call_id


async def test_the_sweep_ends_only_joined_calls_that_no_host_holds_past_the_grace(tmp_path: Path) -> None:
    svc = await build_services(tmp_path, ScriptedLLM([]))
    ended: list[tuple[str, str]] = []

    async def hook(call_id: str, reason: str) -> None:
        ended.append((call_id, reason))

    svc.on_ended.append(hook)
    orphan, hosted, fresh = await joined_call(svc, 300), await joined_call(svc, 300), await joined_call(svc, 1)
    finished = await joined_call(svc, 300)
    await svc.store.mark_ended(finished, reason="hangup", at=datetime.now(UTC))
    svc.directory = directory = Directory({hosted})
    try:
        assert await StaleCallSweep(svc, interval=60, grace=60).sweep() == [orphan]
        assert directory.asked == [{orphan, hosted}]  # neither the fresh nor the finished call was a candidate
        assert ended == [(orphan, "system_error")]
        assert (await svc.store.get_call(orphan)).end_reason == "system_error"
        for call_id in (hosted, fresh):
            assert (await svc.store.get_call(call_id)).ended is None
        assert (await svc.store.get_call(finished)).end_reason == "hangup"
        events, _, _, _ = await svc.store.list_events(orphan, minimum_severity="error")
        assert [e.type for e in events] == ["host_lost"]
        assert await StaleCallSweep(svc, interval=60, grace=60).sweep() == []  # ends a call once
    finally:
        await svc.close()


async def test_the_sweep_runs_periodically_and_by_default_asks_this_process_registry(tmp_path: Path) -> None:
    svc = await build_services(tmp_path, ScriptedLLM([]))
    assert isinstance(svc.live_directory(), LiveCalls)
    orphan = await joined_call(svc, 5)
    sweep = StaleCallSweep(svc, interval=0.1, grace=1)
    sweep.start()
    try:
        async with asyncio.timeout(5):
            while (await svc.store.get_call(orphan)).ended is None:
                await asyncio.sleep(0.05)
        assert (await svc.store.get_call(orphan)).end_reason == "system_error"
    finally:
        await sweep.stop()
        await svc.close()


async def test_an_interval_of_zero_turns_the_sweep_off(tmp_path: Path) -> None:
    svc = await build_services(tmp_path, ScriptedLLM([]))
    orphan = await joined_call(svc, 300)
    sweep = StaleCallSweep(svc, interval=0)
    sweep.start()
    await asyncio.sleep(0.2)
    await sweep.stop()
    assert (await svc.store.get_call(orphan)).ended is None
    await svc.close()
