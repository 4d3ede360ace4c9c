"""The join-URL WebSocket of the `serverWebSocket` medium: check the join, then hand the socket to the call host."""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketState

from voxcall.errors import NotFound, StorageUnavailable
from voxcall.protocol.connection import InboundLimits, ServerConnection, enabled_messages
from voxcall.protocol.media import ServerWebSocketMedia
from voxcall.protocol.rest import StartCallRequest
from voxcall.server.host import POLICY_VIOLATION, host_call, refuse
from voxcall.server.services import Services, ws_services
from voxcall.store.records import CallRecord

__all__ = ["TRY_AGAIN_LATER", "admitted", "check_join", "router"]

logger = logging.getLogger(__name__)
router = APIRouter()

TRY_AGAIN_LATER = 1013
"""RFC 6455 close code 1013: refused for now (draining, or the node is full); the join URL still works elsewhere or later."""


@router.websocket("/calls/{call_id}/server_web_socket")
async def join(websocket: WebSocket, call_id: str) -> None:
    """Join a call: check the signed token and the call, then host the call until it ends."""
    svc = ws_services(websocket)
    if not await admitted(svc, websocket):
        return
    with svc.capacity.slot():
        try:
            await _join(svc, websocket, call_id)
        except StorageUnavailable as exc:  # the token stays unused: the client may join again shortly
            logger.warning("refused a join: %s is unreachable", exc.service)
            await refuse(websocket, TRY_AGAIN_LATER, f"{exc.service} is unreachable: try again in a few seconds",
                         accept=websocket.application_state == WebSocketState.CONNECTING)


async def admitted(svc: Services, websocket: WebSocket) -> bool:
    """Whether this node takes a join now; if not, the socket is refused with 1013 (draining, or full).

    The token stays unused either way: the client may try again later, or on another node.
    """
    refusal = "server shutting down: try again later" if svc.draining else svc.capacity.refusal()
    if refusal is None:
        return True
    logger.warning("refused a join: %s", refusal)
    svc.metrics.refused_join("draining" if svc.draining else "capacity")
    await refuse(websocket, TRY_AGAIN_LATER, refusal, accept=True)
    return False


async def _join(svc: Services, websocket: WebSocket, call_id: str) -> None:
    params = websocket.query_params
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
        settings = svc.settings
        limits = InboundLimits(settings.ws_message_rate, settings.ws_text_byte_rate, settings.ws_audio_frame_rate)
        connection = ServerConnection(enabled_messages(configured, extra), max_text=settings.max_data_message_bytes,
                                      max_depth=settings.max_json_depth, limits=limits)
        return ServerWebSocketMedia(connection, clock=asyncio.get_running_loop().time)

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
