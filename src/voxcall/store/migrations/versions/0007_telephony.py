"""Phone calls: carrier credentials per account (`/api/telephony_configs/*`) and the carrier side of calls.

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-01

(0005 and 0006 are reserved for other branches: when they land first, this revision
follows the newest of them; set `down_revision` to it.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "telephony_configs",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("carrier", sa.String(16), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="fk_telephony_configs_account_id_accounts",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "carrier", name="pk_telephony_configs"),
    )
    op.create_table(
        "carrier_calls",
        sa.Column("call_id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("carrier", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("carrier_call_id", sa.String(200), nullable=True),
        sa.Column("request_id", sa.String(200), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["calls.call_id"], name="fk_carrier_calls_call_id_calls", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("call_id", name="pk_carrier_calls"),
    )


def downgrade() -> None:
    op.drop_table("carrier_calls")
    op.drop_table("telephony_configs")
