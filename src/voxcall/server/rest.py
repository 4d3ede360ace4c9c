"""The /api REST routes. Each handler validates, calls the store or a live call, and shapes the reply."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from pydantic import AfterValidator, ValidationError

from voxcall.errors import InvalidRequest, NotFound, ProtocolError
from voxcall.protocol.realtime import ForcedAgentMessage, HangUp, UserTextMessage, parse_client
from voxcall.protocol.rest import Account, CallMessage, MessageListMode, ModelAlias, Page, StartCallRequest
from voxcall.server.admission import active_calls, admit_call
from voxcall.server.call_tools import durable_uses, public_call_tool, resolve_call_tools
from voxcall.server.calls import to_call
from voxcall.server.outgoing import place_outgoing, prepare_outgoing
from voxcall.server.services import Services, get_services, require_api_key
from voxcall.server.voices import VOICE_EVENT, VoiceBook
from voxcall.store.records import CallRecord

__all__ = ["router", "start_call"]

router = APIRouter(prefix="/api")
AccountId = Annotated[str, Depends(require_api_key)]
Svc = Annotated[Services, Depends(get_services)]
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000


def _page_size(size: int) -> int:
    """DRF's CursorPagination rule: a pageSize below 1 means the default, one above the maximum the maximum."""
    return DEFAULT_PAGE_SIZE if size < 1 else min(size, MAX_PAGE_SIZE)


PageSize = Annotated[int, AfterValidator(_page_size), Query(alias="pageSize")]
DATA_MESSAGE_TYPES = (ForcedAgentMessage, HangUp, UserTextMessage)


def _page(request: Request, results: list[Any], next_cursor: str | None, prev: str | None, total: int) -> dict[str, Any]:
    def link(cursor: str | None) -> str | None:
        return str(request.url.include_query_params(cursor=cursor)) if cursor else None

    return Page[Any](next=link(next_cursor), previous=link(prev), results=results, total=total).wire()


def _join_url(request: Request, svc: Services, call_id: str, token: str, carrier: str | None = None) -> str:
    if svc.settings.public_url:
        base = svc.settings.public_url.rstrip("/")
    else:
        base = f"{request.url.scheme}://{request.url.netloc}"
    base = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    if carrier:  # the token goes in the path: Twilio refuses a query string in <Stream url>
        return f"{base}/calls/{call_id}/telephony/{token}"
    return f"{base}/calls/{call_id}/server_web_socket?token={token}"


@router.post("/calls", status_code=201)
async def create_call(
    request: Request,
    svc: Svc,
    account: AccountId,
    body: Annotated[StartCallRequest | None, Body()] = None,
    enable_greeting_prompt: Annotated[bool, Query(alias="enableGreetingPrompt")] = True,
    prior_call_id: Annotated[str | None, Query(alias="priorCallId")] = None,
) -> JSONResponse:
    """Create a call; the reply's `joinUrl` is where a client joins it."""
    body = body or StartCallRequest()
    given = body.wire()
    inherited: list[CallMessage] = []
    if prior_call_id:
        if body.initial_messages is not None:
            raise InvalidRequest("Set either priorCallId or initialMessages, not both.")
        prior = await svc.store.get_call(prior_call_id, account)
        inherited = await svc.store.all_messages(prior.call_id)
        given = _inherit(prior.latest_request(), given)  # the prior call as its last stage left it
        try:
            body = StartCallRequest.model_validate(given)
        except ValidationError as exc:
            raise InvalidRequest(json.loads(exc.json(include_url=False, include_context=False))) from exc
    initial = inherited or list(body.initial_messages or [])
    record = await start_call(request, svc, account, body, given, initial, enable_greeting_prompt=enable_greeting_prompt)
    return JSONResponse(to_call(record).wire(), status_code=201)


async def start_call(
    request: Request,
    svc: Services,
    account: str,
    body: StartCallRequest,
    given: dict[str, Any],
    initial: list[CallMessage],
    *,
    enable_greeting_prompt: bool = True,
    agent: tuple[str, str] | None = None,
    prepare_tools: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
) -> CallRecord:
    """Create a call (POST /api/calls and POST /api/agents/{id}/calls): check, store, watch its join window, emit call.started.

    `given` is the request as stored; `agent` the (id, name) it comes from; `prepare_tools`
    may rework the resolved CallTools (agent templates) and raise InvalidRequest.
    """
    voice = VoiceBook.of(svc.settings, svc.voices).check_choice(body.voice, body.external_voice)
    svc.platform.check_callbacks(body)
    outgoing = await prepare_outgoing(svc, account, body)  # 422 unless the account has the carrier's config
    tools = await resolve_call_tools(body, svc.tool_store, account)
    if prepare_tools is not None:
        tools = prepare_tools(tools)
    call_id = str(uuid.uuid4())
    created = datetime.now(UTC)
    expires = created.timestamp() + (body.join_timeout or 30.0)
    record = CallRecord(
        call_id=call_id,
        account_id=account,
        created=created,
        request=given,
        join_url=_join_url(request, svc, call_id, svc.tokens.mint(call_id, expires),
                           body.medium.carrier if body.medium else None),
        tools=tools,
        enable_greeting_prompt=enable_greeting_prompt,
        agent_id=agent[0] if agent else None,
        agent_name=agent[1] if agent else None,
    )
    await admit_call(svc, record)  # 429 beyond the account's concurrency or creation rate
    await svc.tool_store.record_uses(call_id, created, durable_uses(tools))
    await svc.store.add_messages(call_id, list(initial), initial=True)
    if voice.substituted:
        await svc.store.add_event(call_id, type=VOICE_EVENT, text=voice.warning() or "", severity="warning", extras=voice.extras())
    svc.watch_join_timeout(record)
    await svc.notify("call.started", call_id)
    if outgoing is not None:
        await place_outgoing(svc, record, outgoing)  # the carrier dials; a refusal ends the call (connection_error)
    return record


_ALTERNATIVES = (("firstSpeaker", "firstSpeakerSettings"), ("voice", "externalVoice"))


def _inherit(prior: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The prior call's request with this body's fields in place of its own (priorCallId).

    A field given here also replaces the prior call's alternative to it (firstSpeaker and
    firstSpeakerSettings, voice and externalVoice), so the two never contradict each other.
    """
    merged = dict(prior)
    for group in _ALTERNATIVES:
        if any(key in given for key in group):
            for key in group:
                merged.pop(key, None)
    return {**merged, **given}



@router.get("/calls")
async def list_calls(
    request: Request, svc: Svc, account: AccountId, cursor: str | None = None, page_size: PageSize = 100
) -> dict[str, Any]:
    records, nxt, prev, total = await svc.store.list_calls(account, cursor=cursor, page_size=page_size)
    records = [await svc.settle_unjoined(r) for r in records]
    return _page(request, [to_call(r).wire() for r in records], nxt, prev, total)


@router.get("/calls/{call_id}")
async def get_call(call_id: str, svc: Svc, account: AccountId) -> dict[str, Any]:
    record = await svc.settle_unjoined(await svc.store.get_call(call_id, account))
    return to_call(record).wire()


@router.delete("/calls/{call_id}", status_code=204)
async def delete_call(call_id: str, svc: Svc, account: AccountId) -> Response:
    """End the call if it is live, then delete it, its messages, events and recording, leaving a tombstone."""
    await svc.store.get_call(call_id, account)
    await svc.cluster.end(call_id, "hangup", wait=10)  # on whichever node hosts it
    await svc.phone.cancel(call_id)  # a call voxcall dialled that is still ringing: hang it up at the carrier
    await svc.platform.tombstones.bury(call_id, account)
    svc.recordings.delete(call_id)
    return Response(status_code=204)


@router.get("/calls/{call_id}/messages")
async def list_messages(
    request: Request, call_id: str, svc: Svc, account: AccountId, cursor: str | None = None, page_size: PageSize = 100,
    mode: MessageListMode = "last_stage",
) -> dict[str, Any]:
    """`last_stage`: the newest stage's messages with its initial ones; `in_call`: every stage's, without initial ones."""
    await svc.store.get_call(call_id, account)
    messages, nxt, prev, total = await svc.store.list_messages(call_id, cursor=cursor, page_size=page_size, mode=mode)
    return _page(request, [m.wire() for m in messages], nxt, prev, total)


@router.get("/calls/{call_id}/tools")
async def list_call_tools(call_id: str, svc: Svc, account: AccountId) -> list[dict[str, Any]]:
    """The tools of the call's last stage as a bare array (not paginated), as the hosted API does."""
    return [public_call_tool(t) for t in (await svc.store.get_call(call_id, account)).latest_tools()]


@router.post("/calls/{call_id}/send_data_message", status_code=204)
async def send_data_message(call_id: str, svc: Svc, account: AccountId, message: Annotated[dict[str, Any], Body()]) -> Response:
    """Inject forced_agent_message, hang_up or user_text_message into a live call."""
    await svc.store.get_call(call_id, account)
    try:
        parsed = parse_client(json.dumps(message))
    except ProtocolError as exc:
        raise InvalidRequest(str(exc)) from exc
    if not isinstance(parsed, DATA_MESSAGE_TYPES):
        raise InvalidRequest("Supported types: forced_agent_message, hang_up, user_text_message.")
    if not await svc.cluster.send(call_id, message):  # to whichever node hosts it
        raise InvalidRequest("The call is not active: it has not been joined yet, or it has ended.")
    return Response(status_code=204)


@router.get("/models")
async def list_models(request: Request, svc: Svc, account: AccountId) -> dict[str, Any]:
    names = ["ultravox-v0.7", "fixie-ai/ultravox", svc.llm.name]
    results = [ModelAlias(name=n).wire() for n in dict.fromkeys(names)]
    return _page(request, results, None, None, len(results))


@router.get("/accounts/me")
async def account_me(svc: Svc, account: AccountId) -> dict[str, Any]:
    name = await svc.store.get_account_name(account)
    live = len(await active_calls(svc, account))  # the count POST /api/calls enforces the limit on
    return Account(account_id=account, name=name, active_calls=live, allowed_concurrent_calls=svc.settings.max_calls or None).wire()


@router.get("/schema/", include_in_schema=False)
async def schema(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


NO_RECORDING = "No recording: recordingEnabled was false for this call, or it has not ended yet."
Severity = Literal["debug", "info", "warning", "error"]


@router.get("/calls/{call_id}/events")
async def list_events(
    request: Request,
    call_id: str,
    svc: Svc,
    account: AccountId,
    minimum_severity: Severity = "info",
    event_type: Annotated[str | None, Query(alias="type")] = None,
    cursor: str | None = None,
    page_size: PageSize = 100,
) -> dict[str, Any]:
    """The call's events, oldest first (PROTOCOL.md 1.8)."""
    record = await svc.store.get_call(call_id, account)
    events, nxt, prev, total = await svc.store.list_events(
        record.call_id, cursor=cursor, page_size=page_size, minimum_severity=minimum_severity, type=event_type
    )
    return _page(request, [e.wire() for e in events], nxt, prev, total)


@router.get("/calls/{call_id}/recording", response_class=FileResponse)
async def get_recording(call_id: str, svc: Svc, account: AccountId) -> FileResponse:
    """The call's recording as `audio/wav` (written when a call with recordingEnabled ends)."""
    record = await svc.store.get_call(call_id, account)
    path = svc.recordings.path(record.call_id)
    if path is None:
        raise NotFound(NO_RECORDING)
    return FileResponse(path, media_type="audio/wav")
