"""The /api REST routes. Each handler validates, calls the store or a live call, and shapes the reply."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from voxcall.errors import InvalidRequest, NotFound, ProtocolError
from voxcall.protocol.realtime import ForcedAgentMessage, HangUp, UserTextMessage, parse_client
from voxcall.protocol.rest import Account, CallMessage, ModelAlias, Page, StartCallRequest
from voxcall.server.admission import active_calls, admit_call
from voxcall.server.call_tools import durable_uses, public_call_tool, resolve_call_tools
from voxcall.server.calls import to_call
from voxcall.server.services import Services, get_services, require_api_key
from voxcall.store.records import CallRecord

__all__ = ["router"]

router = APIRouter(prefix="/api")
AccountId = Annotated[str, Depends(require_api_key)]
Svc = Annotated[Services, Depends(get_services)]
PageSize = Annotated[int, Query(alias="pageSize", ge=1, le=1000)]
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
        inherited = await _all_messages(svc, prior.call_id)
        given = {**prior.request, **given}
        body = StartCallRequest.model_validate(given)
    _check_voice(body, svc)
    tools = await resolve_call_tools(body, svc.tool_store, account)
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
    )
    await admit_call(svc, record)  # 429 beyond the account's concurrency or creation rate
    await svc.tool_store.record_uses(call_id, created, durable_uses(tools))
    for message in inherited or list(body.initial_messages or []):
        await svc.store.add_message(call_id, message.model_copy(update={"call_stage_message_index": None}))
    svc.watch_join_timeout(record)
    return JSONResponse(to_call(record).wire(), status_code=201)


def _check_voice(body: StartCallRequest, svc: Services) -> None:
    if body.voice is None:
        return
    installed = [v.voice_id for v in svc.voices]
    if body.voice.lower() not in [v.lower() for v in installed]:
        listing = ", ".join(installed) if installed else "none (start the server with speech and a TTS voice installed)"
        raise InvalidRequest([{"loc": ["body", "voice"], "type": "value_error",
                               "msg": f"Unknown voice {body.voice!r}. Installed voices: {listing}. Leave voice unset for the default."}])


async def _all_messages(svc: Services, call_id: str) -> list[CallMessage]:
    messages: list[CallMessage] = []
    cursor = None
    while True:
        page, cursor, _, _ = await svc.store.list_messages(call_id, cursor=cursor, page_size=1000)
        messages += page
        if not cursor:
            return messages


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
    """End the call if it is live, then delete it, its messages, events and recording."""
    await svc.store.get_call(call_id, account)
    live = svc.live.get(call_id)
    if live is not None:
        live.call.end("hangup")
        try:
            await asyncio.wait_for(live.done.wait(), 10)
        except TimeoutError:
            pass
    await svc.store.delete_call(call_id, account)
    svc.recordings.delete(call_id)
    return Response(status_code=204)


@router.get("/calls/{call_id}/messages")
async def list_messages(
    request: Request, call_id: str, svc: Svc, account: AccountId, cursor: str | None = None, page_size: PageSize = 100
) -> dict[str, Any]:
    await svc.store.get_call(call_id, account)
    messages, nxt, prev, total = await svc.store.list_messages(call_id, cursor=cursor, page_size=page_size)
    return _page(request, [m.wire() for m in messages], nxt, prev, total)


@router.get("/calls/{call_id}/tools")
async def list_call_tools(call_id: str, svc: Svc, account: AccountId) -> list[dict[str, Any]]:
    """The call's tools as a bare array (not paginated), as the hosted API does."""
    return [public_call_tool(t) for t in (await svc.store.get_call(call_id, account)).tools]


@router.post("/calls/{call_id}/send_data_message", status_code=204)
async def send_data_message(call_id: str, svc: Svc, account: AccountId, message: Annotated[dict[str, Any], Body()]) -> Response:
    """Inject forced_agent_message, hang_up or user_text_message into a live call."""
    await svc.store.get_call(call_id, account)
    live = svc.live.get(call_id)
    if live is None:
        raise InvalidRequest("The call is not active: it has not been joined yet, or it has ended.")
    try:
        parsed = parse_client(json.dumps(message))
    except ProtocolError as exc:
        raise InvalidRequest(str(exc)) from exc
    if not isinstance(parsed, DATA_MESSAGE_TYPES):
        raise InvalidRequest("Supported types: forced_agent_message, hang_up, user_text_message.")
    live.call.receive(parsed)
    return Response(status_code=204)


@router.get("/models")
async def list_models(request: Request, svc: Svc, account: AccountId) -> dict[str, Any]:
    names = ["ultravox-v0.7", "fixie-ai/ultravox", svc.llm.name]
    results = [ModelAlias(name=n).wire() for n in dict.fromkeys(names)]
    return _page(request, results, None, None, len(results))


@router.get("/voices")
async def list_voices(request: Request, svc: Svc, account: AccountId) -> dict[str, Any]:
    return _page(request, [v.wire() for v in svc.voices], None, None, len(svc.voices))


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
