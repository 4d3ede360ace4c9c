"""Outgoing phone calls: `medium.<carrier>.outgoing` makes voxcall ask the carrier to dial, and the carrier's answer URL.

At creation (`prepare_outgoing`, before anything is stored) the outgoing parameters are
checked and the account's carrier config looked up: a 422 says what is missing. Once the
call is stored, `place_outgoing` asks the carrier's REST API to dial, with the call's join
URL in the carrier's XML: inline TwiML for Twilio; for Telnyx and Plivo, which fetch their
instructions, an answer URL of this server, `/calls/{id}/telephony_xml/{token}`, that
returns the XML (after checking the token and the carrier's signature). The create
request waits for the carrier's answer (at most VOXCALL_CARRIER_TIMEOUT):
- accepted: the call goes on; the carrier's call id is kept and shown as a call event;
- refused or unreachable: the call ends as `connection_error`, the carrier's error is a call event;
- accepted, but no media stream within joinTimeout: the call ends as `unjoined`, and the
  carrier's call is hung up (`Phone.on_ended`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from voxcall.errors import ApiError, InvalidRequest, NotFound
from voxcall.protocol.carrier_signatures import SignatureError, verify
from voxcall.protocol.carrier_xml import XML_MEDIA_TYPE, stream_xml
from voxcall.protocol.rest import StartCallRequest
from voxcall.protocol.telephony_configs import OutgoingParams
from voxcall.server.carrier_requests import signed_request
from voxcall.server.carriers import CALL_ID_FIELDS, CARRIER_NAMES, CarrierError
from voxcall.server.services import Services, get_services
from voxcall.store.records import CallRecord
from voxcall.store.telephony import CarrierCall

__all__ = ["Outgoing", "answer_url", "outgoing_of", "place_outgoing", "prepare_outgoing", "router"]

logger = logging.getLogger(__name__)
router = APIRouter()
HANG_UP_XML = '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>'


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A checked `outgoing` request and the account's config for its carrier."""

    carrier: str
    params: OutgoingParams
    config: dict[str, Any]


def outgoing_of(request: StartCallRequest) -> tuple[str, Any] | None:
    """(carrier, raw `outgoing` object) when the call's medium asks voxcall to dial, else None."""
    if request.medium is None:
        return None
    for carrier in CARRIER_NAMES:
        medium = getattr(request.medium, carrier, None)
        raw = medium.get("outgoing") if isinstance(medium, dict) else getattr(medium, "outgoing", None)
        if raw is not None:
            return carrier, raw
    return None


async def prepare_outgoing(svc: Services, account: str, request: StartCallRequest) -> Outgoing | None:
    """The outgoing call to place for this request, or None. Raises InvalidRequest (422) naming the problem."""
    found = outgoing_of(request)
    if found is None:
        return None
    carrier, raw = found
    loc = ["body", "medium", carrier, "outgoing"]
    try:
        params = OutgoingParams.model_validate(raw)
    except ValidationError as exc:
        raise InvalidRequest([{"loc": [*loc, *e["loc"]], "msg": e["msg"], "type": e["type"]}
                              for e in exc.errors(include_url=False)]) from exc
    stored = await svc.phone.store.find_config(account, carrier)
    if stored is None:
        raise InvalidRequest([{"loc": loc, "type": "value_error",
                               "msg": f"{CARRIER_NAMES[carrier]} is not configured for this account: import your "
                                      f"credentials with POST /api/telephony_configs/{carrier} first"}])
    return Outgoing(carrier, params, stored.config)


def answer_url(join_url: str, call_id: str, token: str) -> str:
    """The HTTP(S) URL, on the join URL's host and path prefix, where the carrier fetches the call's XML."""
    parts = urlsplit(join_url)
    scheme = {"wss": "https", "ws": "http"}.get(parts.scheme, parts.scheme)
    marker = parts.path.find(f"/calls/{call_id}")
    prefix = parts.path[:marker] if marker > 0 else ""
    return urlunsplit((scheme, parts.netloc, f"{prefix}/calls/{call_id}/telephony_xml/{token}", "", ""))


async def place_outgoing(svc: Services, record: CallRecord, outgoing: Outgoing) -> None:
    """Ask the carrier to dial; on failure end the call (`connection_error`) and update `record`. Never raises."""
    phone, call_id, carrier = svc.phone, record.call_id, outgoing.carrier
    await phone.store.add_call(CarrierCall(call_id, record.account_id, carrier, "outgoing", "dialing"))
    token = svc.tokens.mint(call_id, svc.join_deadline(record))
    params = outgoing.params
    try:
        placed = await phone.api.place(carrier, outgoing.config, to=params.to, from_=params.from_,
                                       stream_xml=stream_xml(carrier, record.join_url or ""),
                                       answer_url=answer_url(record.join_url or "", call_id, token),
                                       extra=params.additional_params or {})
    except CarrierError as exc:
        await _failed(svc, record, exc)
        return
    ids = {k: v for k, v in (("carrier_call_id", placed.carrier_call_id), ("request_id", placed.request_id)) if v}
    if ids:
        await phone.store.set_call(call_id, **ids)
    await phone.event(call_id, "carrier_call_placed", f"{CARRIER_NAMES[carrier]} is calling {params.to} "
                      f"(call {placed.carrier_call_id or placed.request_id or 'id not given'})", extras={"response": placed.response})
    if await phone.store.move(call_id, "placed", from_=("dialing",)) is None:
        ended = await phone.store.get_call(call_id)  # the call ended while the carrier was dialling
        if ended is not None and ended.state == "hung_up":
            await phone.hang_up(ended)


async def _failed(svc: Services, record: CallRecord, exc: CarrierError) -> None:
    logger.warning("the carrier did not place call %s: %s", record.call_id, exc.detail)
    await svc.phone.store.set_call(record.call_id, state="failed")
    kind = "carrier_refused" if exc.status is not None else "carrier_unreachable"
    await svc.phone.event(record.call_id, kind, exc.detail, "error", exc.extras())
    now = datetime.now(UTC)
    if await svc.store.mark_ended(record.call_id, reason="connection_error", at=now):
        record.ended, record.end_reason = now, "connection_error"
        await svc.notify_ended(record.call_id, "connection_error")


# ---------------------------------------------------------------------- the answer URL


@router.api_route("/calls/{call_id}/telephony_xml/{token}", methods=["GET", "POST"], include_in_schema=False)
async def answer(request: Request, call_id: str, token: str) -> Response:
    """The carrier (Telnyx, Plivo) fetches the XML of a call voxcall placed: the stream to its join URL."""
    svc: Services = get_services(request)
    problem = svc.tokens.check(call_id, token, time.time())
    if problem is not None:
        raise ApiError(f"This answer URL is not valid: {problem}.", status_code=403)
    carrier_call = await svc.phone.store.get_call(call_id)
    try:
        record = await svc.store.get_call(call_id)
    except NotFound:
        record = None
    if record is None or carrier_call is None:
        raise NotFound("No such call placed by voxcall.")
    config = await svc.phone.store.find_config(carrier_call.account_id, carrier_call.carrier)
    if config is None:
        raise ApiError(f"The account's {carrier_call.carrier} config was deleted: the call cannot be verified.", status_code=403)
    signed = await signed_request(request, svc.settings.public_url)
    secret = config.config["publicKey" if carrier_call.carrier == "telnyx" else "authToken"]
    try:
        verify(carrier_call.carrier, signed, secret, now=time.time())
    except SignatureError as exc:
        raise ApiError(f"Refused: {exc}", status_code=403) from None
    if record.ended is not None or carrier_call.state not in ("dialing", "placed"):
        return Response(HANG_UP_XML, media_type=XML_MEDIA_TYPE)
    given = dict(signed.form()).get(CALL_ID_FIELDS[carrier_call.carrier])
    if given and given != carrier_call.carrier_call_id:
        await svc.phone.store.set_call(call_id, carrier_call_id=given)
    return Response(stream_xml(carrier_call.carrier, record.join_url or ""), media_type=XML_MEDIA_TYPE)
