"""The periodic stale-call sweep: end calls that are joined in the database but hosted nowhere.

A host always ends its call in a `finally`, but a host can still be lost
without one (its task killed, its database write failed). Such a call would
stay joined forever: counted in `activeCalls`, never `ended`. Every `interval`
seconds the sweep lists calls joined more than `grace` seconds ago and not yet
ended, asks the `LiveDirectory` which of them some host holds, and ends the
rest as `system_error` (with a call event saying why). The grace period covers
the moment between the join and the registration of the call.

Start-up is different: calls left joined by a crash of the only server are
ended once when it starts (`Store.mark_stale_calls_ended`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from voxcall.errors import NotFound
from voxcall.server.logs import call_context
from voxcall.server.services import Services

__all__ = ["StaleCallSweep"]

logger = logging.getLogger(__name__)

REASON = "system_error"


class StaleCallSweep:
    """Owns the sweep task of one process. `start()` in the lifespan, `await stop()` at its end."""

    def __init__(self, svc: Services, *, interval: float = 60.0, grace: float | None = None) -> None:
        self.svc = svc
        self.interval = interval
        self.grace = interval if grace is None else grace
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run `sweep()` every `interval` seconds; an interval of 0 or less turns the sweep off."""
        if self.interval > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep()
            except Exception:  # the database may be down for a while: try again next time
                logger.exception("stale-call sweep failed")

    async def sweep(self) -> list[str]:
        """End every joined, unended call that was joined over `grace` ago and that no host holds; return their ids."""
        now = datetime.now(UTC)
        candidates = await self.svc.store.joined_unended_calls(joined_before=now - timedelta(seconds=self.grace))
        if not candidates:
            return []
        held = await self.svc.live_directory().held(candidates)
        ended = []
        for call_id in candidates:
            if call_id not in held and await self._end(call_id, now):
                ended.append(call_id)
        return ended

    async def _end(self, call_id: str, now: datetime) -> bool:
        with call_context(call_id):
            if not await self.svc.store.mark_ended(call_id, reason=REASON, at=now):
                return False  # its host ended it meanwhile
            logger.warning("ended a joined call that no server hosts (%s)", REASON)
            with contextlib.suppress(NotFound):
                await self.svc.store.add_event(call_id, type="host_lost", severity="error",
                                               text="The call was joined but no server was hosting it: ended by the sweep")
            await self.svc.notify_ended(call_id, REASON)
            return True
