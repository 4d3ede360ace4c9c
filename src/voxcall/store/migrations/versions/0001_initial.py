"""Initial schema: accounts, api_keys, calls, call_messages, secrets.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Revisions spell their column types out (no imports from `voxcall.store.tables`),
so that history does not change when the models do.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        _timestamp("created"),
        sa.PrimaryKeyConstraint("account_id", name="pk_accounts"),
    )
    op.create_table(
        "api_keys",
        sa.Column("prefix", sa.String(8), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        _timestamp("created"),
        _timestamp("revoked", nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name="fk_api_keys_account_id_accounts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("prefix", name="pk_api_keys"),
    )
    op.create_index("ix_api_keys_account_id", "api_keys", ["account_id"])
    op.create_table(
        "calls",
        sa.Column("call_id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        _timestamp("created"),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("join_url", sa.Text(), nullable=True),
        _timestamp("joined", nullable=True),
        _timestamp("ended", nullable=True),
        sa.Column("end_reason", sa.String(32), nullable=True),
        sa.Column("client_version", sa.Text(), nullable=True),
        sa.Column("tools", sa.JSON(), nullable=False),
        sa.Column("enable_greeting_prompt", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("call_id", name="pk_calls"),
    )
    op.create_index("ix_calls_account_created", "calls", ["account_id", "created", "call_id"])
    op.create_table(
        "call_messages",
        sa.Column("call_id", sa.String(36), nullable=False),
        sa.Column("idx", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("medium", sa.String(32), nullable=True),
        sa.Column("invocation_id", sa.String(200), nullable=True),
        sa.Column("tool_name", sa.String(200), nullable=True),
        sa.Column("error_details", sa.Text(), nullable=True),
        sa.Column("call_stage_id", sa.String(64), nullable=True),
        sa.Column("call_state", sa.JSON(), nullable=True),
        sa.Column("timespan", sa.JSON(), nullable=True),
        sa.Column("wall_clock_timespan", sa.JSON(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        _timestamp("created"),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.call_id"], name="fk_call_messages_call_id_calls", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("call_id", "idx", name="pk_call_messages"),
    )
    op.create_table(
        "secrets",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_secrets"),
    )


def downgrade() -> None:
    op.drop_table("secrets")
    op.drop_table("call_messages")
    op.drop_index("ix_calls_account_created", table_name="calls")
    op.drop_table("calls")
    op.drop_index("ix_api_keys_account_id", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("accounts")
