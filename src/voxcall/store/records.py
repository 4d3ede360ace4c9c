"""Plain records the repository hands out (no ORM rows leave `voxcall.store`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["ApiKeyInfo", "CallRecord", "StageInfo"]


@dataclass(slots=True)
class CallRecord:
    """One call as stored.

    `request` is the accepted StartCallRequest in its compact wire form
    (camelCase, nulls left out); `tools` are the resolved `CallTool`s in wire form.
    `system_metadata` holds the `ultravox.*` metadata the server adds (e.g. a carrier's
    call and stream ids), which a request may not set itself.
    """

    call_id: str
    account_id: str
    created: datetime
    request: dict[str, Any]
    join_url: str | None = None
    joined: datetime | None = None
    ended: datetime | None = None
    end_reason: str | None = None
    client_version: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    enable_greeting_prompt: bool = True
    agent_id: str | None = None
    agent_name: str | None = None
    system_metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key without its secret: the 8-character prefix identifies it."""

    prefix: str
    name: str
    account_id: str
    created: datetime
    revoked: bool = False
    expiry_date: datetime | None = None
    creator: str | None = None


@dataclass(frozen=True, slots=True)
class StageInfo:
    """One stage of a call as stored: `settings` (wire form) lie over the call's request; `tools` None = the call's."""

    call_id: str
    call_stage_id: str
    seq: int
    created: datetime
    settings: dict[str, Any] = field(default_factory=dict)
    tools: list[dict[str, Any]] | None = None
    error_count: int = 0
