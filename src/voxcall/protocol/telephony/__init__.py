"""Carrier media streams (Twilio, Telnyx, Plivo, Exotel) as sans-I/O `MediaConnection`s.

    media = carrier_media("twilio", query)   # one per join
    events = media.receive(frame)            # MediaStart, AudioIn, DtmfDigit, MediaStop, BadMessage, ...
    media.send(pcm_or_message)               # PCM at media.sample_rate, PlaybackClearBuffer, SendDtmf
    frames = media.data_to_send()
    media.played()                           # seconds of agent audio the carrier says have played
"""

from __future__ import annotations

from collections.abc import Mapping

from voxcall.protocol.telephony.base import CarrierMedia
from voxcall.protocol.telephony.events import DTMF_DIGITS, DtmfDigit, MediaRefused, MediaStart, SendDtmf
from voxcall.protocol.telephony.exotel import ExotelMedia
from voxcall.protocol.telephony.plivo import PlivoMedia
from voxcall.protocol.telephony.telnyx import TelnyxMedia
from voxcall.protocol.telephony.twilio import TwilioMedia

__all__ = [
    "DTMF_DIGITS",
    "CarrierMedia",
    "DtmfDigit",
    "ExotelMedia",
    "MediaRefused",
    "MediaStart",
    "PlivoMedia",
    "SendDtmf",
    "TelnyxMedia",
    "TwilioMedia",
    "carrier_media",
]


def carrier_media(carrier: str, query: Mapping[str, str] | None = None) -> CarrierMedia:
    """The media connection of `carrier` ("twilio", "telnyx", "plivo" or "exotel")."""
    if carrier == "twilio":
        return TwilioMedia()
    if carrier == "telnyx":
        return TelnyxMedia()
    if carrier == "plivo":
        return PlivoMedia()
    if carrier == "exotel":
        return ExotelMedia(query)
    raise ValueError(f"no media connection for {carrier!r}")
