"""The table of call stages (revision 0008, `migrations/versions/0008_call_stages.py`).

A call's first stage is written with the call (its id is `first_stage_id(call_id)`); each
`new-stage` tool result adds the next one. `settings` are the fields the stages changed so far
(wire form: systemPrompt, temperature, voice, languageHint), laid over the call's request;
`tools` are the stage's `CallTool` entries, or None for the call's own. The same revision adds
`stage_index` (callStageMessageIndex) and `initial` to call messages and `call_stage_id` to events.
Revision 0009 adds the prompt token counts the LLM reported (`initialTokenCount`, `latestTokenCount`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from voxcall.store.tables import Base

__all__ = ["CallStageRow"]


class CallStageRow(Base):
    """One stage of a call; `seq` orders a call's stages from 0 (the first)."""

    __tablename__ = "call_stages"
    __table_args__ = (Index("ix_call_stages_call_seq", "call_id", "seq", unique=True),)

    call_stage_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    created: Mapped[datetime]
    settings: Mapped[dict[str, Any]]
    tools: Mapped[list[Any] | None]
    initial_token_count: Mapped[int | None] = mapped_column(Integer)  # 0009
    latest_token_count: Mapped[int | None] = mapped_column(Integer)  # 0009
