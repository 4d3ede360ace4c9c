"""Admitting a new call: the account's concurrent-call limit and call-creation rate (429 beyond them).

What counts as a concurrent call: every call of the account that was created and has not
ended, whether joined or still waiting to be joined within its joinTimeout. That is how the
hosted API counts ("when you create a call, we dedicate resources to it for its entire
lifespan", docs.ultravox.ai "Scaling & Call Concurrency"): a created call holds its slot from
the moment POST /api/calls answers 201. A call that nobody joins gives its slot back at its
join deadline, when it ends `unjoined`. `GET /api/accounts/me` reports this same count as
`activeCalls` and the limit as `allowedConcurrentCalls`.
"""

from __future__ import annotations

import time

from voxcall.errors import RateLimited
from voxcall.protocol.rest import StartCallRequest
from voxcall.server.limits import enforce, retry_after_header
from voxcall.server.services import Services
from voxcall.store.records import CallRecord

__all__ = ["CONCURRENCY_RETRY_MAX", "active_calls", "admit_call"]

CONCURRENCY_RETRY_MAX = 5.0
"""The longest Retry-After for a full account, in seconds: a live call may end at any moment."""


async def active_calls(svc: Services, account_id: str) -> list[CallRecord]:
    """The account's calls that count against its concurrency limit.

    Unjoined calls past their join deadline are settled (ended `unjoined`) on the way, so a
    call whose join timer was lost (a restarted node) does not hold a slot for ever.
    """
    records = [await svc.settle_unjoined(r) for r in await svc.store.list_open_calls(account_id)]
    return [r for r in records if r.ended is None]


async def admit_call(svc: Services, record: CallRecord) -> None:
    """Store `record` as a new call if its account is within its limits.

    Raises:
        RateLimited: the account has `max_calls` calls open, or created calls too fast.
    """
    settings = svc.settings
    async with svc.limits.account_lock(record.account_id):
        if settings.max_calls:
            open_calls = await active_calls(svc, record.account_id)
            if len(open_calls) >= settings.max_calls:
                wait = _soonest_end(svc, open_calls) - time.time()
                wait = min(max(wait, 0.0), CONCURRENCY_RETRY_MAX)
                raise RateLimited(
                    f"This account has {len(open_calls)} calls open, its limit (allowedConcurrentCalls) is "
                    f"{settings.max_calls}: end a call (DELETE /api/calls/{{callId}}) or retry after "
                    f"{retry_after_header(wait)} s.",
                    retry_after=wait,
                )
        rates = [f"{n} per {unit}" for n, unit in ((settings.calls_per_second, "second"), (settings.calls_per_minute, "minute")) if n]
        await enforce(svc.limits.creations, record.account_id, f"Too many calls created by this account (at most {' and '.join(rates)}).")
        await svc.store.create_call(record)


def _soonest_end(svc: Services, records: list[CallRecord]) -> float:
    """The soonest wall-clock time one of these calls is sure to have ended: join deadline or maxDuration."""
    ends = []
    for record in records:
        if record.joined is None:
            ends.append(svc.join_deadline(record))
        else:
            duration = StartCallRequest.model_validate(record.request).max_duration or 3600.0
            ends.append(record.joined.timestamp() + duration)
    return min(ends)
