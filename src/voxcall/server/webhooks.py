"""The /api/webhooks routes (PROTOCOL.md 1.11; delivery in server/deliveries.py).

A webhook created without secrets gets one generated (as the hosted platform
does); PUT replaces url and events and keeps secrets and agentId unless given;
PATCH changes what it is given, and `agentId: null` widens the webhook to
every call of the account.
"""

from __future__ import annotations

import secrets as random_secrets
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse

from voxcall.errors import InvalidRequest, NotFound
from voxcall.protocol.platform import (
    Webhook,
    WebhookFailure,
    WebhookPatch,
    WebhookWrite,
)
from voxcall.server.bodies import given, page, parse_body
from voxcall.server.rest import AccountId, PageSize, Svc
from voxcall.server.services import Services
from voxcall.store.webhooks import WebhookRecord

__all__ = ["router", "webhook_resource"]

router = APIRouter(prefix="/api")
RawBody = Annotated[dict[str, Any] | None, Body()]


def webhook_resource(record: WebhookRecord) -> dict[str, Any]:
    return Webhook(
        webhook_id=record.webhook_id, agent_id=record.agent_id, created=record.created, url=record.url,
        secrets=record.secrets, events=record.events, status=record.status,
        last_status_change=record.last_status_change,
        recent_failures=[WebhookFailure.model_validate(f) for f in record.recent_failures],
    ).wire()


async def _check_agent(svc: Services, account: str, agent_id: str | None) -> str | None:
    if agent_id is None:
        return None
    try:
        return (await svc.platform.agents.get(agent_id, account)).agent_id
    except NotFound as exc:
        raise InvalidRequest([{"loc": ["body", "agentId"], "type": "value_error",
                               "msg": f"no agent {agent_id!r} in this account (GET /api/agents lists them)"}]) from exc


@router.get("/webhooks")
async def list_webhooks(
    request: Request, svc: Svc, account: AccountId, cursor: str | None = None, page_size: PageSize = 100,
    agent_id: Annotated[str | None, Query(alias="agentId")] = None,
) -> dict[str, Any]:
    records, nxt, prev, total = await svc.platform.webhooks.list_webhooks(account, cursor=cursor, page_size=page_size, agent_id=agent_id)
    return page(request, [webhook_resource(r) for r in records], nxt, prev, total)


@router.post("/webhooks", status_code=201)
async def create_webhook(svc: Svc, account: AccountId, raw: RawBody = None) -> JSONResponse:
    body = parse_body(WebhookWrite, raw)
    svc.platform.check_url(body.url, "body", "url")
    agent_id = await _check_agent(svc, account, body.agent_id)
    record = await svc.platform.webhooks.create(
        account, url=body.url, events=list(dict.fromkeys(body.events)), agent_id=agent_id,
        secrets=body.secrets or [random_secrets.token_hex(32)],
    )
    return JSONResponse(webhook_resource(record), status_code=201)


@router.get("/webhooks/{webhook_id}")
async def get_webhook(webhook_id: str, svc: Svc, account: AccountId) -> dict[str, Any]:
    return webhook_resource(await svc.platform.webhooks.get(webhook_id, account))


@router.put("/webhooks/{webhook_id}")
async def replace_webhook(webhook_id: str, svc: Svc, account: AccountId, raw: RawBody = None) -> dict[str, Any]:
    await svc.platform.webhooks.get(webhook_id, account)
    return await _update(webhook_id, svc, account, raw, parse_body(WebhookWrite, raw))


@router.patch("/webhooks/{webhook_id}")
async def update_webhook(webhook_id: str, svc: Svc, account: AccountId, raw: RawBody = None) -> dict[str, Any]:
    await svc.platform.webhooks.get(webhook_id, account)
    return await _update(webhook_id, svc, account, raw, parse_body(WebhookPatch, raw))


async def _update(webhook_id: str, svc: Services, account: str, raw: dict[str, Any] | None, body: WebhookWrite | WebhookPatch) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if body.url is not None:
        svc.platform.check_url(body.url, "body", "url")
        values["url"] = body.url
    if body.events is not None:
        values["events"] = list(dict.fromkeys(body.events))
    if body.secrets is not None:
        values["secrets"] = body.secrets
    has_agent, agent_id = given(raw, "agentId", "agent_id")
    if has_agent:
        values["agent_id"] = await _check_agent(svc, account, agent_id)
    return webhook_resource(await svc.platform.webhooks.update(webhook_id, account, **values))


@router.delete("/webhooks/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: str, svc: Svc, account: AccountId) -> Response:
    await svc.platform.webhooks.delete(webhook_id, account)
    return Response(status_code=204)
