"""Phone calls, the REST half: carrier configs, the carriers' REST APIs, and the end of calls voxcall dialled or answered.

`Phone` is built once per process (`Services.phone`). Its `on_ended` hook runs when any
call ends: for a call voxcall placed (`medium.<carrier>.outgoing`) or answered (an agent's
`telephony_xml`), and that voxcall ended (agent hang-up, leaveVoicemail, timeout, a failure,
never joined), it tells the carrier's REST API to hang up, so the phone call ends even
when the media stream alone would not end it (a call still ringing, a stream that never
connected). A call the far end hung up (`hangup`) or that was cold-transferred is left alone.
Every carrier answer that matters is a call event (`GET /api/calls/{id}/events`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from voxcall.config import Settings
from voxcall.server.carriers import CARRIER_NAMES, CarrierApi, CarrierError
from voxcall.store import Store
from voxcall.store.telephony import CarrierCall, TelephonyStore

__all__ = ["LIVE_STATES", "Phone"]

logger = logging.getLogger(__name__)

LIVE_STATES = ("dialing", "placed")
"""States of a carrier call that voxcall may still have to hang up."""
_LEFT_ALONE = ("hangup",)
"""End reasons where the carrier's side is already over (or ends by itself as the stream closes)."""


@dataclass(slots=True)
class Phone:
    """The telephony store and the carriers' REST APIs, plus the hook that hangs up carrier calls."""

    store: TelephonyStore
    api: CarrierApi
    calls: Store

    @classmethod
    def open(cls, store: Store, settings: Settings, api: CarrierApi | None = None) -> Phone:
        return cls(TelephonyStore(store.engine), api or CarrierApi.from_settings(settings), store)

    async def close(self) -> None:
        await self.api.aclose()

    async def event(self, call_id: str, type: str, text: str, severity: str = "info",
                    extras: dict[str, Any] | None = None) -> None:
        """Record a call event; never raises (the call may be gone)."""
        try:
            await self.calls.add_event(call_id, type=type, text=text, severity=severity, extras=extras)
        except Exception:
            logger.warning("could not record a %s event for call %s", type, call_id, exc_info=True)

    async def on_ended(self, call_id: str, reason: str) -> None:
        """`Services.on_ended` hook: hang up the carrier's call when voxcall ended a call it dialled or answered."""
        call = await self.store.move(call_id, "hung_up", from_=LIVE_STATES)
        if call is None or reason in _LEFT_ALONE:
            return  # not a carrier call of ours, already over, failed or transferred; or the far end hung up
        if call.state == "dialing" and not (call.carrier_call_id or call.request_id):
            return  # the carrier has not answered the dial request yet: `place_outgoing` hangs up when it does
        if reason == "unjoined":
            await self.event(call_id, "carrier_no_media", f"{CARRIER_NAMES[call.carrier]} did not connect the call's "
                             "media stream within joinTimeout: the call is ended there too", "warning")
        await self.hang_up(call)

    async def cancel(self, call_id: str) -> None:
        """The call is being deleted: hang up its carrier call if voxcall still has to (ringing, never joined)."""
        call = await self.store.move(call_id, "hung_up", from_=LIVE_STATES)
        if call is not None and (call.carrier_call_id or call.request_id):
            await self.hang_up(call)

    async def hang_up(self, call: CarrierCall) -> None:
        """Tell the carrier to end `call`; the outcome is a call event."""
        name = CARRIER_NAMES[call.carrier]
        if not call.carrier_call_id and not call.request_id:
            await self.event(call.call_id, "carrier_hang_up_failed", f"cannot hang up at {name}: it never said "
                             "which call it placed", "warning")
            return
        config = await self.store.find_config(call.account_id, call.carrier)
        if config is None:
            await self.event(call.call_id, "carrier_hang_up_failed", f"cannot hang up at {name}: the account's "
                             f"{call.carrier} config was deleted", "warning")
            return
        try:
            await self.api.hang_up(call.carrier, config.config, call_id=call.carrier_call_id, request_id=call.request_id)
        except CarrierError as exc:
            logger.warning("hanging up at %s failed: %s", name, exc.detail)
            await self.event(call.call_id, "carrier_hang_up_failed", exc.detail, "warning", exc.extras())
            return
        await self.event(call.call_id, "carrier_hang_up", f"hung up the {name} call {call.carrier_call_id or call.request_id}")
