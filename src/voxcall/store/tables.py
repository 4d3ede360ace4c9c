"""SQLAlchemy 2.0 typed declarative tables of the store.

Every timestamp is stored in UTC and comes back as an aware UTC datetime, on
SQLite (which keeps naive text) as on PostgreSQL (`timestamptz`). Change a table
here only together with a new revision under `migrations/versions/`; a test
checks that the migrated schema and this metadata agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "MESSAGES",
    "AccountRow",
    "ApiKeyRow",
    "Base",
    "CallEventRow",
    "CallRow",
    "MessageRow",
    "SecretRow",
    "ToolRow",
    "ToolUseRow",
    "UTCDateTime",
]

# Deterministic constraint names, so migrations can refer to them on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC; naive values are refused rather than guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware datetime (UTC)")
        value = value.astimezone(UTC)
        # SQLite keeps text without an offset: strip it after converting to UTC.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}  # noqa: RUF012 (SQLAlchemy reads it from the class)


class AccountRow(Base):
    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created: Mapped[datetime]


class ApiKeyRow(Base):
    """An API key: the 8-character prefix finds it, the SHA-256 of the whole key proves it."""

    __tablename__ = "api_keys"

    prefix: Mapped[str] = mapped_column(String(8), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id", ondelete="CASCADE"), index=True)
    created: Mapped[datetime]
    revoked: Mapped[datetime | None]
    expiry_date: Mapped[datetime | None]  # no use after this instant (0004)
    creator: Mapped[str | None] = mapped_column(String(200))  # prefix of the key that created it (0004)


class CallRow(Base):
    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_account_created", "account_id", "created", "call_id"),
        Index("ix_calls_agent_created", "agent_id", "created", "call_id"),
    )

    call_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime]
    request: Mapped[dict[str, Any]]
    join_url: Mapped[str | None] = mapped_column(Text)
    joined: Mapped[datetime | None]
    ended: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))
    client_version: Mapped[str | None] = mapped_column(Text)
    tools: Mapped[list[Any]]
    enable_greeting_prompt: Mapped[bool] = mapped_column(Boolean)
    agent_id: Mapped[str | None] = mapped_column(String(36))  # the agent it was created from (0004)
    agent_name: Mapped[str | None] = mapped_column(String(64))


class MessageRow(Base):
    """One `ultravox.v1.Message` of a call; `idx` orders the call's messages (dense from 0), `stage_index`
    is the callStageMessageIndex (dense from 0 within `call_stage_id`; None before 0008: then `idx`), and
    `initial` marks a stage's initial messages (given, or copied from the previous stage)."""

    __tablename__ = "call_messages"
    __table_args__ = (Index("ix_call_messages_call_id_stage", "call_id", "call_stage_id", "stage_index"),)

    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id", ondelete="CASCADE"), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    role: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    medium: Mapped[str | None] = mapped_column(String(32))
    invocation_id: Mapped[str | None] = mapped_column(String(200))
    tool_name: Mapped[str | None] = mapped_column(String(200))
    error_details: Mapped[str | None] = mapped_column(Text)
    call_stage_id: Mapped[str | None] = mapped_column(String(64))
    call_state: Mapped[dict[str, Any] | None]
    timespan: Mapped[dict[str, Any] | None]
    wall_clock_timespan: Mapped[dict[str, Any] | None]
    # `metadata` is reserved on declarative classes; the column keeps the wire name.
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    created: Mapped[datetime]
    stage_index: Mapped[int | None] = mapped_column(Integer)  # 0008
    initial: Mapped[bool | None] = mapped_column(Boolean)  # 0008


MESSAGES = cast(Table, MessageRow.__table__)
"""The messages table, typed for Core inserts (bulk and RETURNING)."""


class CallEventRow(Base):
    """One `CallEvent` of a call (PROTOCOL.md 1.8); `id` orders a call's events oldest first."""

    __tablename__ = "call_events"
    __table_args__ = (Index("ix_call_events_call_id_id", "call_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id", ondelete="CASCADE"))
    created: Mapped[datetime]
    call_timestamp: Mapped[float] = mapped_column(Float)  # seconds since the call was joined
    severity: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(50))
    text: Mapped[str] = mapped_column(Text)
    extras: Mapped[dict[str, Any] | None]
    call_stage_id: Mapped[str | None] = mapped_column(String(36))  # 0008


class SecretRow(Base):
    """Server-side secrets (e.g. the join-token signing key), created once and shared by every process."""

    __tablename__ = "secrets"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ToolRow(Base):
    """A durable tool (PROTOCOL.md 1.9.1): an account's own (`private`), or a built-in (`public`, no account)."""

    __tablename__ = "tools"
    __table_args__ = (
        UniqueConstraint("account_id", "name", name="uq_tools_account_id_name"),
        Index("ix_tools_account_created", "account_id", "created", "tool_id"),
    )

    tool_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(40))
    ownership: Mapped[str] = mapped_column(String(16))
    created: Mapped[datetime]
    definition: Mapped[dict[str, Any]]


class ToolUseRow(Base):
    """A call that selected a durable tool, under the model-facing `names` it had there (tool history)."""

    __tablename__ = "tool_uses"
    __table_args__ = (Index("ix_tool_uses_tool_created", "tool_id", "created", "call_id"),)

    tool_id: Mapped[str] = mapped_column(ForeignKey("tools.tool_id", ondelete="CASCADE"), primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id", ondelete="CASCADE"), primary_key=True)
    created: Mapped[datetime]
    names: Mapped[list[Any]]
