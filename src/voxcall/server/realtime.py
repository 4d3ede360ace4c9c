"""The join-URL WebSocket: wires frames between a ServerConnection and an engine Call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel
from starlette.websockets import WebSocketDisconnect, WebSocketState

from voxcall.engine.call import Call
from voxcall.engine.spec import EventRecord
from voxcall.errors import NotFound
from voxcall.protocol.connection import ServerConnection, enabled_messages
from voxcall.protocol.realtime import CallStarted
from voxcall.protocol.rest import CallMessage, StartCallRequest
from voxcall.server.calls import build_spec
from voxcall.server.services import LiveCall, Services, ws_services
from voxcall.server.voices import VoiceBook

__all__ = ["router"]

logger = logging.getLogger(__name__)
router = APIRouter()

POLICY_VIOLATION = 1008


@router.websocket("/calls/{call_id}/server_web_socket")
async def join(websocket: WebSocket, call_id: str) -> None:
    """Join a call: check the single-use token, then run the call until it ends."""
    svc = ws_services(websocket)
    params = websocket.query_params
    problem = svc.tokens.check(call_id, params.get("token"), time.time())
    record = None
    if problem is None:
        try:
            record = await svc.store.get_call(call_id)
        except NotFound:
            problem = "unknown call"
    if problem is None and record is not None:
        if record.ended is not None:
            problem = "the call has ended"
        elif not await svc.store.mark_joined(call_id, client_version=params.get("clientVersion"), at=datetime.now(UTC)):
            problem = "join token already used"
    if problem is not None or record is None:
        logger.info("rejected join of call %s: %s", call_id, problem)
        await websocket.close(code=POLICY_VIOLATION, reason=problem or "rejected")
        return
    request = StartCallRequest.model_validate(record.request)
    extra = params.getlist("experimentalMessages") + params.getlist("additionalMessages")
    connection = ServerConnection(enabled_messages(request.medium.data_messages if request.medium else None, extra))
    await websocket.accept()
    reason = await _run(websocket, svc, connection, record.call_id, await _history(svc, call_id))
    await svc.store.mark_ended(call_id, reason=reason, at=datetime.now(UTC))
    logger.info("call %s ended: %s", call_id, reason)


async def _history(svc: Services, call_id: str) -> list[CallMessage]:
    messages, cursor = [], None
    while True:
        page, cursor, _, _ = await svc.store.list_messages(call_id, cursor=cursor, page_size=1000)
        messages += page
        if not cursor:
            return messages


async def _run(websocket: WebSocket, svc: Services, connection: ServerConnection, call_id: str, history: list[CallMessage]) -> str:
    write_lock = asyncio.Lock()

    async def flush() -> None:
        async with write_lock:
            for frame in connection.data_to_send():
                if websocket.client_state != WebSocketState.CONNECTED:
                    return
                with contextlib.suppress(Exception):
                    if isinstance(frame, bytes):
                        await websocket.send_bytes(frame)
                    else:
                        await websocket.send_text(frame)

    async def send(message: BaseModel | bytes) -> None:
        connection.send(message)
        await flush()

    async def record(item: CallMessage | EventRecord) -> None:
        if isinstance(item, EventRecord):
            await svc.store.add_event(call_id, type=item.type, text=item.text, severity=item.severity,
                                      call_timestamp=item.call_timestamp, extras=item.extras)
        else:
            await svc.store.add_message(call_id, item)

    async def save_recording(wav: bytes) -> None:
        await asyncio.to_thread(svc.recordings.save, call_id, wav)

    record_row = await svc.store.get_call(call_id)
    request = StartCallRequest.model_validate(record_row.request)
    voice = VoiceBook.of(svc.settings, svc.voices).choose(request.voice, request.external_voice).voice
    call = Call(build_spec(record_row, history, voice), svc.llm, send=send, record=record, speech=svc.speech,
                save_recording=save_recording, log=logging.LoggerAdapter(logging.getLogger("voxcall.call"), {"call_id": call_id}))
    live = svc.live[call_id] = LiveCall(call)
    await send(CallStarted(call_id=call_id))
    reader = asyncio.create_task(_read(websocket, connection, call, flush))
    try:
        reason = await call.run()
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        svc.live.pop(call_id, None)
        live.done.set()
    if websocket.client_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await websocket.close(code=1000)
    return reason


async def _read(websocket: WebSocket, connection: ServerConnection, call: Call, flush: object) -> None:
    """Feed client frames to the call; a closed socket ends the call as `hangup`."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("text") is not None:
                connection.receive_text(message["text"])
            elif message.get("bytes") is not None:
                connection.receive_bytes(message["bytes"])
            for event in connection.events_received():
                call.receive(event)
            await flush()  # type: ignore[operator]
    except (WebSocketDisconnect, RuntimeError):
        pass
    call.end("hangup")
