"""Webhooks, their delivery health, and the durable outbox of deliveries.

The outbox is a table: a delivery is written before anything is sent, and a
sender leases a due row by moving its `next_attempt` forward in one
conditional UPDATE. A sender that dies mid-attempt leaves the row to come due
again when the lease ends, so a restart loses nothing (a receiver may see a
delivery twice, which the hosted documentation also warns of).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from voxcall.errors import NotFound
from voxcall.store.outage import guarded
from voxcall.store.pages import Listing, fetch_page
from voxcall.store.platform_tables import DeliveryRow, WebhookRow
from voxcall.store.repository import _aware, _call_uuid, _text

__all__ = ["RECENT_FAILURES", "UNHEALTHY_AFTER", "Delivery", "NewDelivery", "Outbox", "PendingDelivery", "WebhookRecord", "WebhookStore"]

RECENT_FAILURES = 10
"""How many failures a webhook's `recentFailures` keeps (newest last)."""
UNHEALTHY_AFTER = 3
"""A webhook is `unhealthy` after this many failed attempts in a row, `normal` again after a success."""


_WEBHOOKS = Listing("w", (WebhookRow.created, WebhookRow.webhook_id), descending=True, parsers=(_aware, _text))


@dataclass(slots=True)
class WebhookRecord:
    webhook_id: str
    account_id: str
    agent_id: str | None
    created: datetime
    url: str
    secrets: list[str]
    events: list[str]
    status: str = "normal"
    last_status_change: datetime | None = None
    recent_failures: list[dict[str, str]] = field(default_factory=list)


def _record(row: WebhookRow) -> WebhookRecord:
    return WebhookRecord(
        webhook_id=row.webhook_id, account_id=row.account_id, agent_id=row.agent_id, created=row.created, url=row.url,
        secrets=list(row.secrets), events=list(row.events), status=row.status,
        last_status_change=row.last_status_change, recent_failures=list(row.recent_failures),
    )


def _not_found(webhook_id: str) -> NotFound:
    return NotFound(f"No webhook {webhook_id!r} in this account: list your webhooks with GET /api/webhooks.")


@guarded
class WebhookStore:
    """Webhooks of every account."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def create(self, account_id: str, *, url: str, events: list[str], secrets: list[str], agent_id: str | None) -> WebhookRecord:
        row = WebhookRow(
            webhook_id=str(uuid.uuid4()), account_id=account_id, agent_id=agent_id, created=datetime.now(UTC), url=url,
            secrets=secrets, events=events, status="normal", last_status_change=None, recent_failures=[],
            consecutive_failures=0,
        )
        async with self._sessions.begin() as session:
            session.add(row)
        return _record(row)

    async def get(self, webhook_id: str, account_id: str) -> WebhookRecord:
        """The webhook. Raises NotFound for an unknown id, another account's webhook, or a non-UUID."""
        uid = _call_uuid(webhook_id)
        async with self._sessions() as session:
            row = await session.get(WebhookRow, uid) if uid else None
        if row is None or row.account_id != account_id:
            raise _not_found(webhook_id)
        return _record(row)

    async def list_webhooks(
        self, account_id: str, *, cursor: str | None, page_size: int, agent_id: str | None = None
    ) -> tuple[list[WebhookRecord], str | None, str | None, int]:
        """One page of the account's webhooks, newest first (only those of `agent_id`, if given)."""
        conditions = [WebhookRow.account_id == account_id]
        if agent_id is not None:
            conditions.append(WebhookRow.agent_id == agent_id)
        async with self._sessions() as session:
            rows, after, before = await fetch_page(
                session, select(WebhookRow).where(*conditions), _WEBHOOKS, lambda r: (r.created, r.webhook_id),
                cursor=cursor, page_size=page_size,
            )
            total = await session.scalar(select(func.count()).select_from(WebhookRow).where(*conditions))
        return [_record(r) for r in rows], after, before, int(total or 0)

    async def update(self, webhook_id: str, account_id: str, **values: Any) -> WebhookRecord:
        """Set the given fields among url, events, secrets and agent_id. Raises NotFound."""
        record = await self.get(webhook_id, account_id)
        if not values:  # an empty PATCH changes nothing (and an UPDATE without SET is not SQL)
            return record
        async with self._sessions.begin() as session:
            await session.execute(update(WebhookRow).where(WebhookRow.webhook_id == webhook_id).values(**values))
        return await self.get(webhook_id, account_id)

    async def delete(self, webhook_id: str, account_id: str) -> None:
        """Delete the webhook and its undelivered deliveries. Raises NotFound."""
        record = await self.get(webhook_id, account_id)
        async with self._sessions.begin() as session:
            # The outbox's foreign key cascades; deleting explicitly also covers a SQLite without FK enforcement.
            await session.execute(delete(DeliveryRow).where(DeliveryRow.webhook_id == record.webhook_id))
            await session.execute(delete(WebhookRow).where(WebhookRow.webhook_id == record.webhook_id))

    async def subscribed(self, account_id: str, event: str, agent_id: str | None) -> list[WebhookRecord]:
        """The account's webhooks for `event` that cover a call of `agent_id` (unscoped ones always do)."""
        async with self._sessions() as session:
            rows = await session.scalars(select(WebhookRow).where(WebhookRow.account_id == account_id))
            return [_record(r) for r in rows if event in r.events and r.agent_id in (None, agent_id)]

    async def record_attempt(self, webhook_id: str, *, at: datetime, failure: str | None) -> None:
        """Update a webhook's health after one delivery attempt (`failure` None means it succeeded)."""
        async with self._sessions.begin() as session:
            lock = select(WebhookRow).where(WebhookRow.webhook_id == webhook_id).with_for_update()
            row = (await session.scalars(lock)).first()
            if row is None:
                return  # deleted meanwhile
            if failure is None:
                row.consecutive_failures = 0
                status = "normal"
            else:
                row.consecutive_failures += 1
                entry = {"timestamp": at.isoformat().replace("+00:00", "Z"), "failure": failure}
                row.recent_failures = [*row.recent_failures, entry][-RECENT_FAILURES:]
                status = "unhealthy" if row.consecutive_failures >= UNHEALTHY_AFTER else row.status
            if status != row.status:
                row.status, row.last_status_change = status, at


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A delivery to queue: a webhook's (url and secrets read when sent) or a callback's (its own)."""

    account_id: str
    call_id: str
    event: str
    body: str
    webhook_id: str | None = None
    url: str = ""
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Delivery:
    """A leased delivery, ready to send: the URL and secrets are the current ones."""

    id: int
    webhook_id: str | None
    call_id: str
    event: str
    url: str
    secrets: tuple[str, ...]
    body: str
    attempts: int


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    id: int
    call_id: str
    event: str
    attempts: int
    next_attempt: datetime
    last_error: str | None


@guarded
class Outbox:
    """The durable queue of webhook and callback deliveries."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def add(self, deliveries: list[NewDelivery], *, at: datetime) -> None:
        """Queue deliveries, due at once, in one transaction."""
        if not deliveries:
            return
        async with self._sessions.begin() as session:
            session.add_all(
                DeliveryRow(
                    account_id=d.account_id, webhook_id=d.webhook_id, call_id=d.call_id, event=d.event, url=d.url,
                    secrets=list(d.secrets), body=d.body, status="pending", attempts=0, next_attempt=at,
                    last_error=None, created=at, finished=None,
                )
                for d in deliveries
            )

    async def lease_due(self, *, now: datetime, until: datetime, limit: int) -> list[Delivery]:
        """Lease up to `limit` due deliveries until `until`; each is leased by one sender only."""
        async with self._sessions() as session:
            due = (await session.execute(
                select(DeliveryRow.id, DeliveryRow.next_attempt)
                .where(DeliveryRow.status == "pending", DeliveryRow.next_attempt <= now)
                .order_by(DeliveryRow.next_attempt, DeliveryRow.id).limit(limit)
            )).all()
        leased = []
        for delivery_id, seen in due:
            async with self._sessions.begin() as session:
                claim = (
                    update(DeliveryRow)
                    .where(DeliveryRow.id == delivery_id, DeliveryRow.status == "pending", DeliveryRow.next_attempt == seen)
                    .values(next_attempt=until)
                    .execution_options(synchronize_session=False)
                )
                if not (await session.execute(claim)).rowcount:  # type: ignore[attr-defined]
                    continue  # another sender took it
                delivery = await self._ready(session, delivery_id)
            if delivery is not None:
                leased.append(delivery)
        return leased

    @staticmethod
    async def _ready(session: Any, delivery_id: int) -> Delivery | None:
        row = await session.get(DeliveryRow, delivery_id)
        if row is None:
            return None
        url, secrets = row.url, tuple(row.secrets)
        if row.webhook_id is not None:
            hook = await session.get(WebhookRow, row.webhook_id)
            if hook is None:
                return None
            url, secrets = hook.url, tuple(hook.secrets)
        return Delivery(id=row.id, webhook_id=row.webhook_id, call_id=row.call_id, event=row.event, url=url,
                        secrets=secrets, body=row.body, attempts=row.attempts)

    async def delivered(self, delivery_id: int, *, at: datetime) -> None:
        await self._finish(delivery_id, status="delivered", finished=at, attempts=DeliveryRow.attempts + 1)

    async def failed(self, delivery_id: int, *, error: str, retry_at: datetime | None, at: datetime) -> None:
        """Record a failed attempt: due again at `retry_at`, or given up when that is None."""
        if retry_at is None:
            await self._finish(delivery_id, status="failed", finished=at, attempts=DeliveryRow.attempts + 1, last_error=error)
        else:
            await self._finish(delivery_id, next_attempt=retry_at, attempts=DeliveryRow.attempts + 1, last_error=error)

    async def _finish(self, delivery_id: int, **values: Any) -> None:
        async with self._sessions.begin() as session:
            await session.execute(update(DeliveryRow).where(DeliveryRow.id == delivery_id).values(**values))

    async def next_due(self) -> datetime | None:
        """When the earliest pending delivery is due, or None when none is pending."""
        async with self._sessions() as session:
            due: datetime | None = await session.scalar(select(func.min(DeliveryRow.next_attempt)).where(DeliveryRow.status == "pending"))
        return due

    async def pending(self) -> list[PendingDelivery]:
        """Every pending delivery, earliest due first (for operators and tests)."""
        query = select(DeliveryRow).where(DeliveryRow.status == "pending").order_by(DeliveryRow.next_attempt, DeliveryRow.id)
        async with self._sessions() as session:
            return [PendingDelivery(r.id, r.call_id, r.event, r.attempts, r.next_attempt, r.last_error) for r in await session.scalars(query)]

    async def counts(self, call_id: str | None = None) -> dict[str, int]:
        """How many deliveries are in each status (of one call, if given)."""
        query = select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status)
        if call_id is not None:
            query = query.where(DeliveryRow.call_id == call_id)
        async with self._sessions() as session:
            return {status: int(n) for status, n in (await session.execute(query)).all()}
