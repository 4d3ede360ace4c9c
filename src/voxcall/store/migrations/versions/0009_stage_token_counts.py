"""Call stages: the prompt's length in tokens, at the stage's first and latest model request.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

Both are null until the LLM reports a count (the embedded model always does; an OpenAI-compatible
server when it answers `stream_options.include_usage`), and stay null for older stages.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_stages") as batch:
        batch.add_column(sa.Column("initial_token_count", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("latest_token_count", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_stages") as batch:
        batch.drop_column("latest_token_count")
        batch.drop_column("initial_token_count")
