"""The join-URL WebSocket of the `serverWebSocket` medium: check the join, then hand the socket to the call host."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, WebSocket

from voxcall.errors import NotFound
from voxcall.protocol.connection import ServerConnection, enabled_messages
from voxcall.protocol.media import ServerWebSocketMedia
from voxcall.protocol.rest import StartCallRequest
from voxcall.server.host import POLICY_VIOLATION, host_call, refuse
from voxcall.server.services import Services, ws_services
from voxcall.store.records import CallRecord

__all__ = ["TRY_AGAIN_LATER", "check_join", "router"]

logger = logging.getLogger(__name__)
router = APIRouter()

TRY_AGAIN_LATER = 1013
"""RFC 6455 close code 1013: refused for now (the server is draining); the join URL still works elsewhere or later."""


@router.websocket("/calls/{call_id}/server_web_socket")
async def join(websocket: WebSocket, call_id: str) -> None:
    """Join a call: check the signed token and the call, then host the call until it ends."""
    svc = ws_services(websocket)
    params = websocket.query_params
    if svc.draining:
        logger.info("refused a join while shutting down")
        await refuse(websocket, TRY_AGAIN_LATER, "server shutting down: try again later", accept=True)
        return
    problem, record = await check_join(svc, call_id, params.get("token"))
    if record is None:
        logger.info("rejected join of call %r: %s", call_id, problem)
        await refuse(websocket, POLICY_VIOLATION, problem)
        return
    carrier = _carrier(record)
    if carrier is not None:
        logger.info("rejected a serverWebSocket join of a %s call", carrier)
        await refuse(websocket, POLICY_VIOLATION, f"this is a {carrier} call: give its joinUrl to the carrier; "
                     "it cannot be joined as serverWebSocket", accept=True)
        return
    extra = params.getlist("experimentalMessages") + params.getlist("additionalMessages")

    def media(request: StartCallRequest) -> ServerWebSocketMedia:
        configured = request.medium.data_messages if request.medium else None
        return ServerWebSocketMedia(ServerConnection(enabled_messages(configured, extra)))

    await host_call(svc, websocket, record, media, client_version=params.get("clientVersion"))


def _carrier(record: CallRecord) -> str | None:
    medium = StartCallRequest.model_validate(record.request).medium
    return medium.carrier if medium else None


async def check_join(svc: Services, call_id: str, token: str | None) -> tuple[str, CallRecord | None]:
    """The stored call if the token is good and the call can still be joined, else why not."""
    problem = svc.tokens.check(call_id, token, time.time())
    if problem is not None:
        return problem, None
    try:
        record = await svc.store.get_call(call_id)
    except NotFound:
        return "unknown call", None
    if record.ended is not None:
        return "the call has ended", None
    return "", record
