"""Plain records the repository hands out (no ORM rows leave `voxcall.store`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["ApiKeyInfo", "CallRecord", "StageInfo", "laid_over"]


def laid_over(request: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """A call's request (wire form) with a stage's changed settings laid over it.

    A stage that names a `voice` drops the call's `externalVoice`: the two are alternatives.
    """
    wire = {**request, **settings}
    if "voice" in settings:
        wire.pop("externalVoice", None)
    return wire


@dataclass(slots=True)
class CallRecord:
    """One call as stored.

    `request` is the accepted StartCallRequest in its compact wire form
    (camelCase, nulls left out); `tools` are the resolved `CallTool`s in wire form.
    Both are the call as created (its first stage); `stage_settings` and `stage_tools` are what
    its later stages changed, as of its last stage (`latest_request`, `latest_tools`).
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
    stage_settings: dict[str, Any] = field(default_factory=dict)
    """The settings the call's last stage has (cumulative, wire form); empty while it is in its first."""
    stage_tools: list[dict[str, Any]] | None = None
    """The last stage's `CallTool`s when a stage selected tools; None: `tools`."""

    def latest_request(self) -> dict[str, Any]:
        """The request as the call's last stage has it: `request` with `stage_settings` laid over it."""
        return laid_over(self.request, self.stage_settings) if self.stage_settings else self.request

    def latest_tools(self) -> list[dict[str, Any]]:
        """The tools of the call's last stage."""
        return self.stage_tools if self.stage_tools is not None else self.tools


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
    initial_token_count: int | None = None
    """The prompt's length in tokens at the stage's first model request (None: the model did not say)."""
    latest_token_count: int | None = None
    """The prompt's length in tokens at the stage's latest model request."""
