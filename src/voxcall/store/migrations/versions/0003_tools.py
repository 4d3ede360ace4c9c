"""Durable tools and the calls that used them (PROTOCOL.md 1.9.1, `GET /api/tools/{id}/history`).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "tools",
        sa.Column("tool_id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=True),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("ownership", sa.String(16), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("tool_id", name="pk_tools"),
        sa.UniqueConstraint("account_id", "name", name="uq_tools_account_id_name"),
    )
    op.create_index("ix_tools_account_created", "tools", ["account_id", "created", "tool_id"])
    op.create_table(
        "tool_uses",
        sa.Column("tool_id", sa.String(36), nullable=False),
        sa.Column("call_id", sa.String(36), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["tool_id"], ["tools.tool_id"], name="fk_tool_uses_tool_id_tools", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["call_id"], ["calls.call_id"], name="fk_tool_uses_call_id_calls", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tool_id", "call_id", name="pk_tool_uses"),
    )
    op.create_index("ix_tool_uses_tool_created", "tool_uses", ["tool_id", "created", "call_id"])


def downgrade() -> None:
    op.drop_index("ix_tool_uses_tool_created", table_name="tool_uses")
    op.drop_table("tool_uses")
    op.drop_index("ix_tools_account_created", table_name="tools")
    op.drop_table("tools")
