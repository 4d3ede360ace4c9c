"""Incoming phone calls: `POST /api/agents/{agent_id}/telephony_xml`, the voice webhook a carrier calls.

Point a Twilio, Telnyx or Plivo number's voice webhook at this URL (ultravox-openapi.yaml
`agents_telephony_xml`; Ultravox docs telephony/telephony-platforms). The carrier's form (or
JSON) post is taken only when it is signed by the agent's account's stored credentials
(`protocol.carrier_signatures`): which carrier it is comes from its signature header;
without one, or with a signature that does not match, the answer is 403 with the reason.
Then the config must allow the agent (`callCreationAllowAllAgents`, or the agent among
`callCreationAllowedAgentIds`), the request's fields are mapped into the call's
`templateContext` (`requestContextMapping`), and the call is created from the agent like
`POST /api/agents/{id}/calls` does (so `call.started` goes to the webhooks), with the
carrier's medium. The answer is the carrier's XML that streams the call to its join URL.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import APIRouter, Request, Response

from voxcall.errors import ApiError, NotFound
from voxcall.protocol.carrier_signatures import (
    SIGNATURE_HEADERS,
    SignatureError,
    SignedRequest,
    signing_carrier,
    verify,
)
from voxcall.protocol.carrier_xml import XML_MEDIA_TYPE, stream_xml
from voxcall.protocol.platform import StartAgentCallRequest
from voxcall.protocol.telephony_configs import map_context
from voxcall.server.agents import start_agent_call
from voxcall.server.carrier_requests import signed_request
from voxcall.server.carriers import CALL_ID_FIELDS, CARRIER_NAMES
from voxcall.server.services import Services, get_services
from voxcall.store.agents import AgentRecord
from voxcall.store.telephony import CarrierCall

__all__ = ["request_fields", "router"]

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api")
_SECRETS = {"twilio": "authToken", "telnyx": "publicKey", "plivo": "authToken"}
_UNSIGNED = ("Unsigned request: this URL takes only voice webhooks signed by Twilio (X-Twilio-Signature), Telnyx "
             "(telnyx-signature-ed25519 and telnyx-timestamp) or Plivo (X-Plivo-Signature-V3).")


def _refused(message: str) -> ApiError:
    return ApiError(message, status_code=403)


def request_fields(signed: SignedRequest) -> dict[str, Any]:
    """The carrier's request fields: the form (first value of each) or the JSON object."""
    if "json" in signed.content_type.lower():
        try:
            loaded = json.loads(signed.body or b"{}")
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    fields: dict[str, Any] = {}
    for name, value in signed.form():
        fields.setdefault(name, value)
    return fields


@router.post("/agents/{agent_id}/telephony_xml", tags=["agents"], operation_id="agents_telephony_xml",
             response_class=Response, responses={200: {"content": {XML_MEDIA_TYPE: {}}}})
async def telephony_xml(request: Request, agent_id: str) -> Response:
    """Allows supported telephony providers to create incoming calls with an agent, returning XML instructions."""
    svc: Services = get_services(request)
    signed = await signed_request(request, svc.settings.public_url)
    carrier = signing_carrier(signed)
    if carrier is None:
        raise _refused(_UNSIGNED)
    agent = await svc.platform.agents.find(agent_id)
    if agent is None:
        raise NotFound(f"No agent {agent_id!r}: check the voice webhook URL configured at {CARRIER_NAMES[carrier]}.")
    config = await _verified(svc, agent, carrier, signed)
    fields = request_fields(signed)
    body = StartAgentCallRequest(template_context=map_context(fields, config.get("requestContextMapping") or {}),
                                 medium=_medium(agent, carrier))
    record = await start_agent_call(request, svc, agent, body)
    carrier_call_id = str(fields.get(CALL_ID_FIELDS[carrier]) or "") or None
    await svc.phone.store.add_call(CarrierCall(record.call_id, agent.account_id, carrier, "incoming", "placed",
                                               carrier_call_id=carrier_call_id))
    await svc.phone.event(record.call_id, "carrier_call_answered", f"answered the {CARRIER_NAMES[carrier]} call "
                          f"{carrier_call_id or '(no call id)'} from {fields.get('From', 'an unknown number')}")
    logger.info("incoming %s call for agent %s", carrier, agent.agent_id)
    return Response(stream_xml(carrier, record.join_url or ""), media_type=XML_MEDIA_TYPE)


async def _verified(svc: Services, agent: AgentRecord, carrier: str, signed: SignedRequest) -> dict[str, Any]:
    """The account's config for `carrier`, once the request's signature and the agent's allowance are checked."""
    name = CARRIER_NAMES[carrier]
    stored = await svc.phone.store.find_config(agent.account_id, carrier)
    if stored is None:
        raise _refused(f"The request is signed by {name} ({SIGNATURE_HEADERS[carrier]}), but the agent's account has no "
                       f"{carrier} config to check it with: POST /api/telephony_configs/{carrier} first.")
    config = stored.config
    try:
        verify(carrier, signed, config[_SECRETS[carrier]], now=time.time())
    except SignatureError as exc:
        logger.warning("refused a %s webhook for agent %s: %s", carrier, agent.agent_id, exc)
        raise _refused(f"Refused: {exc}.") from None
    if not config.get("callCreationAllowAllAgents") and agent.agent_id not in (config.get("callCreationAllowedAgentIds") or []):
        raise _refused(f"Agent {agent.agent_id} may not take {name} calls: add it to callCreationAllowedAgentIds of "
                       f"/api/telephony_configs/{carrier}, or set callCreationAllowAllAgents to true.")
    return config


def _medium(agent: AgentRecord, carrier: str) -> dict[str, Any]:
    """The carrier's medium, keeping the template's settings for that carrier (dtmfHandling), never its `outgoing`."""
    template = ((agent.call_template or {}).get("medium") or {}).get(carrier)
    kept = {k: v for k, v in template.items() if k != "outgoing"} if isinstance(template, dict) else {}
    return {carrier: kept}
