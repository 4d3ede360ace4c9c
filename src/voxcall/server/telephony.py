"""The join-URL WebSocket of the carrier media (`twilio`, `telnyx`, `plivo`, `exotel`).

`wss://HOST/calls/{callId}/telephony/{token}`: the join token is in the path, because
Twilio refuses query strings in `<Stream url>`. Query parameters a carrier adds (Exotel's
`sample-rate`, for one) are read, never required. The token and the call are checked
before the socket is accepted, so a bad join never gets to send audio; a call of another
medium is refused with a close reason that says where it is joined.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, WebSocket

from voxcall.protocol.rest import StartCallRequest
from voxcall.protocol.telephony import CarrierMedia, carrier_media
from voxcall.server.host import POLICY_VIOLATION, host_call, refuse
from voxcall.server.realtime import admitted, check_join
from voxcall.server.services import Services, ws_services

__all__ = ["router"]

logger = logging.getLogger(__name__)
router = APIRouter()


@router.websocket("/calls/{call_id}/telephony/{token}")
async def join(websocket: WebSocket, call_id: str, token: str) -> None:
    """A carrier joins a call: check the token and the medium, then host the call until it ends."""
    svc = ws_services(websocket)
    if not await admitted(svc, websocket):
        return
    with svc.capacity.slot():
        await _join(svc, websocket, call_id, token)


async def _join(svc: Services, websocket: WebSocket, call_id: str, token: str) -> None:
    problem, record = await check_join(svc, call_id, token)
    if record is None:
        logger.info("rejected telephony join of call %r: %s", call_id, problem)
        await refuse(websocket, POLICY_VIOLATION, problem)
        return
    medium = StartCallRequest.model_validate(record.request).medium
    carrier = medium.carrier if medium else None
    if carrier is None:
        given = next(iter(medium.wire()), "webRtc") if medium else "webRtc"
        logger.info("rejected a telephony join of a %s call", given)
        await refuse(websocket, POLICY_VIOLATION, f"this is a {given} call, not a telephony one: join it at its joinUrl",
                     accept=True)
        return
    query = dict(websocket.query_params)

    def media(request: StartCallRequest) -> CarrierMedia:
        return carrier_media(carrier, query)

    await host_call(svc, websocket, record, media, client_version=query.get("clientVersion"))
