"""Tables of the platform resources: agents, webhooks, the webhook outbox, call tombstones.

They share `tables.Base` (and so its metadata and naming convention); the
revision that creates them is `migrations/versions/0004_platform.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from voxcall.store.tables import Base

__all__ = ["AgentRow", "DeliveryRow", "TombstoneRow", "WebhookRow"]


class AgentRow(Base):
    """An agent: a named call template. `call_count` backs `statistics.calls`."""

    __tablename__ = "agents"
    __table_args__ = (Index("ix_agents_account_created", "account_id", "created", "agent_id"),)

    agent_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime]
    updated: Mapped[datetime]
    call_template: Mapped[dict[str, Any] | None]
    call_count: Mapped[int] = mapped_column(Integer, default=0)


class WebhookRow(Base):
    """A webhook subscription and its delivery health (`status`, `recentFailures`)."""

    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_account_created", "account_id", "created", "webhook_id"),)

    webhook_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[str | None] = mapped_column(String(36))
    created: Mapped[datetime]
    url: Mapped[str] = mapped_column(Text)
    secrets: Mapped[list[Any]]
    events: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(16))
    last_status_change: Mapped[datetime | None]
    recent_failures: Mapped[list[Any]]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)


class DeliveryRow(Base):
    """One webhook or callback delivery in the durable outbox.

    `body` is the exact JSON sent (the call as it was at the event). A webhook
    delivery takes its URL and secrets from the webhook when it is sent (and
    goes with the webhook when that is deleted); a per-call callback carries
    its own. `next_attempt` is when it is due; a sender leases a row by moving
    it forward, so a crashed sender's row comes due again.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_status_next_attempt", "status", "next_attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(64))
    webhook_id: Mapped[str | None] = mapped_column(ForeignKey("webhooks.webhook_id", ondelete="CASCADE"), index=True)
    call_id: Mapped[str] = mapped_column(String(36))
    event: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    secrets: Mapped[list[Any]]
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime]
    finished: Mapped[datetime | None]


class TombstoneRow(Base):
    """What is kept of a deleted call (`CallTombstone`), plus the fields its list filters by."""

    __tablename__ = "call_tombstones"
    __table_args__ = (Index("ix_call_tombstones_account_deleted", "account_id", "deletion_time", "call_id"),)

    call_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime]
    deletion_time: Mapped[datetime]
    joined: Mapped[datetime | None]
    ended: Mapped[datetime | None]
    max_duration: Mapped[str] = mapped_column(String(32))
    end_reason: Mapped[str | None] = mapped_column(String(32))
    recording_enabled: Mapped[bool] = mapped_column(Boolean)
    had_summary: Mapped[bool] = mapped_column(Boolean)
    agent_id: Mapped[str | None] = mapped_column(String(36))
    voice: Mapped[str | None] = mapped_column(Text)
    # `metadata` is reserved on declarative classes; the column keeps the wire name.
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata")
