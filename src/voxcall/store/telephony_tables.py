"""Tables of phone calls: each account's carrier credentials, and the carrier side of calls voxcall placed or answered.

They share `tables.Base` (its metadata and naming convention); the revision that
creates them is `migrations/versions/0007_telephony.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from voxcall.store.tables import Base

__all__ = ["CarrierCallRow", "TelephonyConfigRow"]


class TelephonyConfigRow(Base):
    """One account's config for one carrier: `settings` as shown (no secrets), `secrets` apart (write-only fields)."""

    __tablename__ = "telephony_configs"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id", ondelete="CASCADE"), primary_key=True)
    carrier: Mapped[str] = mapped_column(String(16), primary_key=True)
    settings: Mapped[dict[str, Any]]
    secrets: Mapped[dict[str, Any]]
    created: Mapped[datetime]
    updated: Mapped[datetime]


class CarrierCallRow(Base):
    """The carrier's call behind a voxcall call it placed (`outgoing`) or answered (`incoming`, telephony_xml).

    `carrier_call_id` is Twilio's CallSid, Telnyx's TeXML CallSid or Plivo's CallUUID (once
    known); `request_id` is Plivo's request_uuid of a call still ringing. `state` is
    `dialing`, `placed`, `failed`, `transferred` or `hung_up`.
    """

    __tablename__ = "carrier_calls"

    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id", ondelete="CASCADE"), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64))
    carrier: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(16))
    carrier_call_id: Mapped[str | None] = mapped_column(String(200))
    request_id: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    created: Mapped[datetime]
