"""Call stages: one row per stage of a call; messages count within their stage; events name their stage.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

Calls created before this revision have no stage rows: the server shows their one stage from
the call itself, and their messages' callStageMessageIndex is their index in the call.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "call_stages",
        sa.Column("call_stage_id", sa.String(36), nullable=False),
        sa.Column("call_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("tools", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["call_id"], ["calls.call_id"], name="fk_call_stages_call_id_calls", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("call_stage_id", name="pk_call_stages"),
    )
    op.create_index("ix_call_stages_call_seq", "call_stages", ["call_id", "seq"], unique=True)
    with op.batch_alter_table("call_messages") as batch:
        batch.add_column(sa.Column("stage_index", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("initial", sa.Boolean(), nullable=True))
    op.create_index("ix_call_messages_call_id_stage", "call_messages", ["call_id", "call_stage_id", "stage_index"])
    with op.batch_alter_table("call_events") as batch:
        batch.add_column(sa.Column("call_stage_id", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_events") as batch:
        batch.drop_column("call_stage_id")
    op.drop_index("ix_call_messages_call_id_stage", table_name="call_messages")
    with op.batch_alter_table("call_messages") as batch:
        batch.drop_column("initial")
        batch.drop_column("stage_index")
    op.drop_index("ix_call_stages_call_seq", table_name="call_stages")
    op.drop_table("call_stages")
