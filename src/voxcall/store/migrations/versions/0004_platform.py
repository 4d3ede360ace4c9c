"""Platform resources: agents, webhooks, the webhook outbox, call tombstones; calls.agent_id, API key expiry.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _agents() -> None:
    op.create_table(
        "agents",
        sa.Column("agent_id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        _timestamp("created"),
        _timestamp("updated"),
        sa.Column("call_template", sa.JSON(), nullable=True),
        sa.Column("call_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", name="pk_agents"),
    )
    op.create_index("ix_agents_account_created", "agents", ["account_id", "created", "agent_id"])


def _webhooks() -> None:
    op.create_table(
        "webhooks",
        sa.Column("webhook_id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.String(36), nullable=True),
        _timestamp("created"),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _timestamp("last_status_change", nullable=True),
        sa.Column("recent_failures", sa.JSON(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("webhook_id", name="pk_webhooks"),
    )
    op.create_index("ix_webhooks_account_created", "webhooks", ["account_id", "created", "webhook_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("webhook_id", sa.String(36), nullable=True),
        sa.Column("call_id", sa.String(36), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _timestamp("next_attempt"),
        sa.Column("last_error", sa.Text(), nullable=True),
        _timestamp("created"),
        _timestamp("finished", nullable=True),
        sa.ForeignKeyConstraint(
            ["webhook_id"], ["webhooks.webhook_id"], name="fk_webhook_deliveries_webhook_id_webhooks", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
    )
    op.create_index("ix_webhook_deliveries_status_next_attempt", "webhook_deliveries", ["status", "next_attempt"])
    op.create_index("ix_webhook_deliveries_webhook_id", "webhook_deliveries", ["webhook_id"])


def _tombstones() -> None:
    op.create_table(
        "call_tombstones",
        sa.Column("call_id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        _timestamp("created"),
        _timestamp("deletion_time"),
        _timestamp("joined", nullable=True),
        _timestamp("ended", nullable=True),
        sa.Column("max_duration", sa.String(32), nullable=False),
        sa.Column("end_reason", sa.String(32), nullable=True),
        sa.Column("recording_enabled", sa.Boolean(), nullable=False),
        sa.Column("had_summary", sa.Boolean(), nullable=False),
        sa.Column("agent_id", sa.String(36), nullable=True),
        sa.Column("voice", sa.Text(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("call_id", name="pk_call_tombstones"),
    )
    op.create_index("ix_call_tombstones_account_deleted", "call_tombstones", ["account_id", "deletion_time", "call_id"])


def upgrade() -> None:
    _agents()
    _webhooks()
    _tombstones()
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("agent_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("agent_name", sa.String(64), nullable=True))
        batch.create_index("ix_calls_agent_created", ["agent_id", "created", "call_id"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(_timestamp("expiry_date", nullable=True))
        batch.add_column(sa.Column("creator", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("creator")
        batch.drop_column("expiry_date")
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_agent_created")
        batch.drop_column("agent_name")
        batch.drop_column("agent_id")
    op.drop_index("ix_call_tombstones_account_deleted", table_name="call_tombstones")
    op.drop_table("call_tombstones")
    op.drop_index("ix_webhook_deliveries_webhook_id", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_status_next_attempt", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhooks_account_created", table_name="webhooks")
    op.drop_table("webhooks")
    op.drop_index("ix_agents_account_created", table_name="agents")
    op.drop_table("agents")
