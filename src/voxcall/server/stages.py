"""Call stages on the server: the `StageResolver` a hosted call gets, and the /stages routes.

A `new-stage` result's `selectedTools` resolve exactly as at call creation (durable tools of the
call's account, built-ins, temporary tools: `call_tools.resolve_call_tools`), and its `voice` as
a call's voice is (`VoiceBook`); a problem becomes a `StageError` whose sentence the model gets.

Routes (PROTOCOL.md 1.7, 1.8): the stages of a call (paginated), one stage, its messages (its
initial ones too), its tools (a plain array of `CallTool`), and the audio of one spoken message: its
`wallClockTimespan` cut out of the call's recording (`GET /api/calls/{id}/recording`, which has the user
on the left channel and the agent on the right), as a mono WAV.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from voxcall.audio import wav_excerpt
from voxcall.engine.spec import ToolDef
from voxcall.engine.stages import ResolvedStage, StageError, StageRequest
from voxcall.errors import InvalidRequest, NotFound
from voxcall.protocol.rest import StartCallRequest
from voxcall.protocol.stages import CallStage
from voxcall.protocol.wire import parse_duration
from voxcall.server.call_tools import public_call_tool, resolve_call_tools, tool_def
from voxcall.server.rest import NO_RECORDING, PageSize, _page
from voxcall.server.services import Services, get_services, require_api_key
from voxcall.server.voices import VoiceBook
from voxcall.store.records import CallRecord, StageInfo, laid_over

__all__ = ["ServerStages", "call_stage", "router"]

router = APIRouter(prefix="/api")
AccountId = Annotated[str, Depends(require_api_key)]
Svc = Annotated[Services, Depends(get_services)]


class ServerStages:
    """Resolves what a new stage of one hosted call selects, for the engine (`engine.stages.StageResolver`)."""

    def __init__(self, svc: Services, record: CallRecord) -> None:
        self._svc = svc
        self._record = record

    async def resolve(self, request: StageRequest) -> ResolvedStage:
        tools: tuple[ToolDef, ...] | None = None
        entries = None
        if request.selected_tools is not None:
            body = StartCallRequest.model_validate({"selectedTools": request.selected_tools})
            try:
                entries = await resolve_call_tools(body, self._svc.tool_store, self._record.account_id)
            except InvalidRequest as exc:
                raise StageError(_sentence(exc.detail)) from None
            tools = tuple(tool_def(e) for e in entries)
        voice = None
        if "voice" in request.changes:
            try:
                voice = VoiceBook.of(self._svc.settings, self._svc.voices).check_choice(request.changes["voice"]).voice
            except InvalidRequest as exc:
                raise StageError(_sentence(exc.detail)) from None
        return ResolvedStage(tools=tools, tool_entries=entries, voice=voice)


def _sentence(detail: object) -> str:
    if isinstance(detail, list):
        return "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    return str(detail)


def call_stage(record: CallRecord, stage: StageInfo) -> CallStage:
    """The `CallStage` resource: the call's request with the stage's changes laid over it."""
    wire = laid_over(record.request, stage.settings)
    request = StartCallRequest.model_validate(wire)
    return CallStage(
        call_id=record.call_id, call_stage_id=stage.call_stage_id, created=stage.created,
        inactivity_messages=wire.get("inactivityMessages", []), language_hint=request.language_hint,
        model=request.model or "ultravox-v0.7", system_prompt=request.system_prompt,
        temperature=request.temperature or 0.0, time_exceeded_message=request.time_exceeded_message,
        voice=request.voice, external_voice=wire.get("externalVoice"), voice_overrides=wire.get("voiceOverrides"),
        error_count=stage.error_count, experimental_settings=wire.get("experimentalSettings"),
        initial_state=request.initial_state or {},
        initial_token_count=stage.initial_token_count, latest_token_count=stage.latest_token_count,
    )


@router.get("/calls/{call_id}/stages")
async def list_stages(request: Request, call_id: str, svc: Svc, account: AccountId, cursor: str | None = None,
                      page_size: PageSize = 100) -> dict[str, Any]:
    """The call's stages, first first (PROTOCOL.md 1.8)."""
    record = await svc.store.get_call(call_id, account)
    stages, nxt, prev, total = await svc.store.stages.list_stages(record.call_id, cursor=cursor, page_size=page_size)
    return _page(request, [call_stage(record, s).wire() for s in stages], nxt, prev, total)


@router.get("/calls/{call_id}/stages/{call_stage_id}")
async def get_stage(call_id: str, call_stage_id: str, svc: Svc, account: AccountId) -> dict[str, Any]:
    record = await svc.store.get_call(call_id, account)
    return call_stage(record, await svc.store.stages.get(record.call_id, call_stage_id)).wire()


@router.get("/calls/{call_id}/stages/{call_stage_id}/messages")
async def list_stage_messages(request: Request, call_id: str, call_stage_id: str, svc: Svc, account: AccountId,
                              cursor: str | None = None, page_size: PageSize = 100) -> dict[str, Any]:
    """The stage's messages, its initial ones first."""
    record = await svc.store.get_call(call_id, account)
    stage = await svc.store.stages.get(record.call_id, call_stage_id)
    messages, nxt, prev, total = await svc.store.list_messages(record.call_id, stage_id=stage.call_stage_id,
                                                               cursor=cursor, page_size=page_size)
    return _page(request, [m.wire() for m in messages], nxt, prev, total)


@router.get("/calls/{call_id}/stages/{call_stage_id}/messages/{call_stage_message_index}/audio",
            response_class=Response)
async def message_audio(call_id: str, call_stage_id: str, call_stage_message_index: int, svc: Svc,
                        account: AccountId) -> Response:
    """One spoken user or agent message's audio (`audio/wav`, mono), from the call's recording."""
    record = await svc.store.get_call(call_id, account)
    stage = await svc.store.stages.get(record.call_id, call_stage_id)
    msg = await svc.store.stage_message(record.call_id, stage.call_stage_id, call_stage_message_index)
    channel = _CHANNELS.get(msg.role)
    if channel is None or msg.medium != "MESSAGE_MEDIUM_VOICE":
        raise NotFound("This message has no audio: only spoken user and agent messages have audio.")
    path = svc.recordings.path(record.call_id)
    if path is None:
        raise NotFound(NO_RECORDING)
    span = msg.wall_clock_timespan or {}
    if "start" not in span or "end" not in span:
        raise NotFound("This message has no timespan (it is an initial message, or was stored before voxcall kept them).")
    wav = await asyncio.to_thread(wav_excerpt, str(path), parse_duration(span["start"]), parse_duration(span["end"]), channel)
    return Response(wav, media_type="audio/wav")


_CHANNELS = {"MESSAGE_ROLE_USER": 0, "MESSAGE_ROLE_AGENT": 1}
"""The recording's channel of each speaker (engine/recording.py)."""


@router.get("/calls/{call_id}/stages/{call_stage_id}/tools")
async def list_stage_tools(call_id: str, call_stage_id: str, svc: Svc, account: AccountId) -> list[dict[str, Any]]:
    """The stage's tools as a bare array (not paginated), as GET /api/calls/{id}/tools."""
    record = await svc.store.get_call(call_id, account)
    stage = await svc.store.stages.get(record.call_id, call_stage_id)
    return [public_call_tool(t) for t in (stage.tools if stage.tools is not None else record.tools)]
