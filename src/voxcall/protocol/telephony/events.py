"""What a carrier's media stream tells the call, and what the call can ask of it, beyond audio.

Inbound (from `CarrierMedia.receive`, next to `AudioIn`, `BadMessage` and `MediaStop`):
`MediaStart` once the carrier's `start` has said who the call is and how its audio is
encoded, `DtmfDigit` for each key the caller presses, `MediaRefused` when the stream
cannot be spoken at all (an encoding voxcall has no codec for).

Outbound (handed to `send` by the engine, like a server message): `SendDtmf`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

__all__ = ["DTMF_DIGITS", "DtmfDigit", "MediaRefused", "MediaStart", "SendDtmf"]

DTMF_DIGITS = frozenset("0123456789*#ABCD")


@dataclass(frozen=True, slots=True)
class MediaStart:
    """The stream is up: the call's audio runs at `sample_rate` from now on."""

    sample_rate: int
    metadata: dict[str, str] = field(default_factory=dict)
    """System metadata for the call (`ultravox.<carrier>.*`), from the ids in `start`."""
    custom: dict[str, str] = field(default_factory=dict)
    """The carrier's custom parameters (TwiML `<Parameter>`, Plivo `extraHeaders`, ...)."""


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """One key the caller pressed: 0-9, *, # or A-D."""

    digit: str


@dataclass(frozen=True, slots=True)
class MediaRefused:
    """The stream cannot go on (for example an encoding with no codec here); `reason` says why."""

    reason: str


class SendDtmf(BaseModel):
    """Engine output: play these DTMF digits into the call, out of band, where the carrier can."""

    type: Literal["voxcall_send_dtmf"] = "voxcall_send_dtmf"
    digits: str
