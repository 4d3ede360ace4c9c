"""The one call host: any `MediaConnection` over a WebSocket, from the join to the end of the call.

The route checks the join token; `host_call` claims the join (once, in every
process sharing the database) and from then on runs everything under one
`try/finally`: build the call, register it live, run it, and always end it:
store the end reason, close the socket with a code that says why, run the
`Services.on_ended` hooks, unregister. This `finally` is the one place where a
hosted call ends.

A carrier's media stream first has to say what it is: the call is built once its
`start` has arrived (within START_TIMEOUT), so the engine runs at the stream's sample
rate, and the carrier's ids are written into the call's metadata before anything else.

Close codes (RFC 6455): 1000 after a normal end, 1011 when the call failed
(`system_error`), 1012 when the server is shutting down, 1008 for a refused join,
1003 for a media stream in a format voxcall cannot speak.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from fastapi import WebSocket
from pydantic import BaseModel
from starlette.websockets import WebSocketDisconnect, WebSocketState

from voxcall.engine.call import Call
from voxcall.engine.history import Item
from voxcall.engine.spec import CallSpec, EventRecord
from voxcall.engine.stages import StageRecord, TokenCount
from voxcall.protocol.connection import BadMessage
from voxcall.protocol.media import MediaConnection, MediaStop
from voxcall.protocol.realtime import CallStarted
from voxcall.protocol.rest import StartCallRequest
from voxcall.protocol.telephony import CarrierMedia, MediaRefused, MediaStart
from voxcall.server.calls import build_spec
from voxcall.server.live import NORMAL_CLOSURE, SERVICE_RESTART, LiveCall
from voxcall.server.logs import call_context
from voxcall.server.services import Services
from voxcall.server.stages import ServerStages
from voxcall.server.tools import tool_executors
from voxcall.server.voices import VoiceBook
from voxcall.server.ws_protocol import DIRECT_FRAMES, DirectFrames
from voxcall.store.records import CallRecord

__all__ = ["INTERNAL_ERROR", "POLICY_VIOLATION", "MediaFactory", "host_call", "refuse"]

logger = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011
UNSUPPORTED_DATA = 1003
SHUTTING_DOWN = "server shutting down"
START_TIMEOUT = 10.0
"""Seconds a carrier has, after the socket opens, to send its `start`."""
CARRIER_LEAD = 0.2
"""Seconds of agent audio sent ahead of playback on a carrier (its buffer absorbs network jitter)."""

MediaFactory = Callable[[StartCallRequest], MediaConnection]
"""Builds the call's media connection from its stored request (rates, data messages)."""


async def refuse(websocket: WebSocket, code: int, reason: str, *, accept: bool = False) -> None:
    """Turn a join away. Without `accept` the client sees HTTP 403; with it, a close frame with `code` and `reason`."""
    with contextlib.suppress(Exception):
        if accept:
            await websocket.accept()
        await websocket.close(code=code, reason=reason)


async def host_call(svc: Services, websocket: WebSocket, record: CallRecord, make_media: MediaFactory, *,
                    client_version: str | None = None) -> str | None:
    """Host one call until it ends; returns its end reason, or None when the join was already used.

    Cancellation: the call still ends (as `system_error`) before the cancellation propagates.
    """
    host = _Host(svc, websocket, record.call_id)
    with call_context(record.call_id):
        if not await svc.store.mark_joined(record.call_id, client_version=client_version, at=datetime.now(UTC)):
            logger.info("rejected join: join token already used")
            await refuse(websocket, POLICY_VIOLATION, "join token already used")
            return None
        return await host.run(record, make_media)


class _Host:
    def __init__(self, svc: Services, websocket: WebSocket, call_id: str) -> None:
        self.svc = svc
        self.websocket = websocket
        self.call_id = call_id
        self.media: MediaConnection | None = None
        self.live: LiveCall | None = None
        self._write_lock = asyncio.Lock()
        self._refusal: tuple[int, str] | None = None
        self._carrier_metadata: dict[str, str] = {}
        self._backlog: list[str | bytes] = []  # frames taken from the media by `_take`, not written yet
        self._flush_due = False
        self._flusher: asyncio.Task[None] | None = None
        self._stopped = False  # the media said stop: no more frames are taken
        self._direct: DirectFrames | None = None  # the protocol's direct frame path, under BufferedWebSocketProtocol
        self._writers = 0  # flushes with frames on the usual (awaited) way

    async def run(self, record: CallRecord, make_media: MediaFactory) -> str:
        reason = "system_error"
        reader: asyncio.Task[None] | None = None
        try:
            await self.websocket.accept()
            self._direct = self.websocket.scope.get("extensions", {}).get(DIRECT_FRAMES)
            await self.svc.notify("call.joined", self.call_id)
            self.media = make_media(StartCallRequest.model_validate(record.request))
            if isinstance(self.media, CarrierMedia):
                early = await self._await_start(self.media)
                if early:
                    reason = early
                    return reason  # the `finally` ends the call
                record.system_metadata.update(self._carrier_metadata)
            call = await self._build(record)
            self.live = self.svc.live.add(self.call_id, LiveCall(call))
            await self.send(CallStarted(call_id=self.call_id))
            reader = asyncio.create_task(self._read(call))
            reason = await call.run()
        except Exception:
            logger.exception("call failed before it could run")
        finally:
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
            await self._end(reason)
        return reason

    async def _build(self, record: CallRecord) -> Call:
        svc = self.svc
        history = await svc.store.all_messages(self.call_id)
        request = StartCallRequest.model_validate(record.request)
        voice = VoiceBook.of(svc.settings, svc.voices).choose(request.voice, request.external_voice).voice
        spec = build_spec(record, history, voice)
        spec = replace(spec, voice=replace(spec.voice, preemptive=svc.settings.preemptive_replies))
        log = logging.LoggerAdapter(logging.getLogger("voxcall.call"), {"call_id": self.call_id})
        playback = None
        if isinstance(self.media, CarrierMedia):
            spec, playback = _fit_to_carrier(spec, self.media), self.media.played
        return Call(spec, svc.llm, send=self.send, record=self._record, speech=svc.speech,
                    save_recording=self._save_recording, log=log, tool_executors=tool_executors(svc),
                    playback=playback, stages=ServerStages(svc, record))

    async def _await_start(self, media: CarrierMedia) -> str:
        """Read frames until the carrier's `start`; "" once started, else the end reason of the call."""
        try:
            async with asyncio.timeout(START_TIMEOUT):
                while True:
                    message = await self.websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        return "hangup"
                    frame = message.get("text") if message.get("text") is not None else message.get("bytes")
                    for event in media.receive(frame) if frame is not None else []:
                        if isinstance(event, MediaStart):
                            await self._started(event)
                            return ""
                        if isinstance(event, MediaRefused):
                            logger.warning("refused the media stream: %s", event.reason)
                            self._refusal = (UNSUPPORTED_DATA, event.reason[:120])
                            return "connection_error"
                        if isinstance(event, MediaStop):
                            return "hangup"
                        if isinstance(event, BadMessage):
                            logger.warning("before start: %s", event.reason)
                    await self._flush()
        except TimeoutError:
            logger.warning("no %s start within %gs", media.medium, START_TIMEOUT)
            self._refusal = (POLICY_VIOLATION, f"no start message within {START_TIMEOUT:g}s")
            return "connection_error"
        except (WebSocketDisconnect, RuntimeError):
            return "hangup"

    async def _started(self, start: MediaStart) -> None:
        logger.info("media stream started: %d Hz", start.sample_rate)
        self._carrier_metadata = dict(start.metadata)
        if start.metadata:
            try:
                await self.svc.store.add_system_metadata(self.call_id, start.metadata)
            except Exception:
                logger.exception("could not store the carrier's call metadata")

    # ------------------------------------------------------------ the end

    async def _end(self, reason: str) -> None:
        """Store the end, close the socket, run the end hooks, unregister. Never raises."""
        code, message = self._close_code(reason)
        try:
            ended = await self.svc.store.mark_ended(self.call_id, reason=reason, at=datetime.now(UTC))
        except Exception:  # the stale-call sweep ends it later
            logger.exception("could not store the end of the call")
            ended = False
        logger.info("call ended: %s (close %d)", reason, code)
        self.svc.metrics.ended(reason)
        if self.websocket.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await self.websocket.close(code=code, reason=message)
        if ended:
            await self.svc.notify_ended(self.call_id, reason)
        if self.live is not None:
            self.svc.live.discard(self.call_id, self.live)

    def _close_code(self, reason: str) -> tuple[int, str]:
        if self._refusal is not None:
            return self._refusal
        if self.live is not None and self.live.close_code is not None:
            return self.live.close_code, self.live.close_reason
        if self.svc.stopping:
            return SERVICE_RESTART, SHUTTING_DOWN
        if reason == "system_error":
            return INTERNAL_ERROR, "internal error: the call could not go on"
        return NORMAL_CLOSURE, ""

    # ------------------------------------------------------------ frames

    async def send(self, message: BaseModel | bytes) -> None:
        assert self.media is not None
        self.media.send(message)
        await self._flush()

    async def _flush(self) -> None:
        assert self.media is not None
        # Taken before the lock, which is FIFO: frames still go out in the order they were queued.
        frames, self._backlog = self._backlog + self.media.data_to_send(), []
        if not frames:
            return  # the usual case after an inbound audio frame
        direct = self._direct
        if direct is not None and not self._writers and self.websocket.client_state == WebSocketState.CONNECTED \
                and self.websocket.application_state == WebSocketState.CONNECTED:
            sent = 0
            for frame in frames:  # nothing is on its way the usual way, so these go straight out, in order
                if not direct.write(frame):
                    break
                sent += 1
            frames = frames[sent:]
            if not frames:
                return
        self._writers += 1  # from here until written, later frames must not overtake these
        try:
            async with self._write_lock:
                for frame in frames:
                    if self.websocket.client_state != WebSocketState.CONNECTED:
                        return
                    with contextlib.suppress(Exception):
                        if isinstance(frame, bytes):
                            await self.websocket.send_bytes(frame)
                        else:
                            await self.websocket.send_text(frame)
        finally:
            self._writers -= 1

    async def _read(self, call: Call) -> None:
        """Feed inbound frames to the call; a closed socket or a media stop ends it as `hangup`.

        Under `BufferedWebSocketProtocol` frames come to `_take` straight from the protocol
        (server/ws_protocol.py); what was queued before, and the disconnect, still come here.
        """
        assert self.media is not None
        direct = self._direct
        if direct is not None:
            context = contextvars.copy_context()  # the call's log context, also for frames taken in the protocol
            direct.sink = lambda frame: context.run(self._take, call, frame)
        try:
            while not self._stopped:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                frame = message.get("text") if message.get("text") is not None else message.get("bytes")
                if frame is not None:
                    self._take(call, frame)
                await self._flush()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if direct is not None:
                direct.sink = None
        if not self._stopped:
            call.end("system_error" if self.svc.stopping else "hangup")

    def _take(self, call: Call, frame: str | bytes) -> None:
        """One inbound frame into the call, at once; replies it causes (a pong) are written by a task."""
        assert self.media is not None
        if self._stopped:
            return
        for event in self.media.receive(frame):
            if isinstance(event, MediaStop):
                self._stopped = True
                call.end("hangup")
                break
            call.receive(event)
        out = self.media.data_to_send()
        if out:
            self._backlog += out
            if not self._flush_due:
                self._flush_due = True
                self._flusher = asyncio.get_running_loop().create_task(self._flush_backlog())

    async def _flush_backlog(self) -> None:
        self._flush_due = False  # frames queued from here on need another task: this one takes the backlog now
        await self._flush()

    # ------------------------------------------------------------ storage

    async def _record(self, item: Item) -> None:
        if isinstance(item, StageRecord):
            await self.svc.store.stages.add(self.call_id, item.call_stage_id, settings=item.settings, tools=item.tools,
                                            initial=item.initial_messages)
            return
        if isinstance(item, TokenCount):
            await self.svc.store.stages.count_tokens(self.call_id, item.call_stage_id, item.prompt_tokens)
            return
        self.svc.metrics.recorded(item)
        if isinstance(item, EventRecord):
            await self.svc.store.add_event(self.call_id, type=item.type, text=item.text, severity=item.severity,
                                           call_timestamp=item.call_timestamp, extras=item.extras,
                                           call_stage_id=item.call_stage_id)
        else:
            await self.svc.store.add_message(self.call_id, item)

    async def _save_recording(self, wav: bytes) -> None:
        await asyncio.to_thread(self.svc.recordings.save, self.call_id, wav)


def _fit_to_carrier(spec: CallSpec, media: CarrierMedia) -> CallSpec:
    """The call's audio at the stream's rate, in the carrier's chunk size; DTMF out where it has it."""
    rate = media.sample_rate or spec.voice.input_rate
    voice = replace(spec.voice, input_rate=rate, output_rate=rate, chunk_ms=media.chunk_ms, client_buffer=CARRIER_LEAD)
    return replace(spec, voice=voice, dtmf_out=media.sends_dtmf)

