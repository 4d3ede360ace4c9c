"""The /api/agents routes: agents (named call templates) and the calls made from them (PROTOCOL.md 1.10)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import JSONResponse

from voxcall.protocol.platform import (
    Agent,
    AgentStatistics,
    AgentWrite,
    StartAgentCallRequest,
)
from voxcall.protocol.rest import StartCallRequest
from voxcall.server.agent_calls import agent_call_request, checked_template
from voxcall.server.bodies import given, page, parse_body
from voxcall.server.calls import to_call
from voxcall.server.rest import AccountId, PageSize, Svc, start_call
from voxcall.server.services import Services
from voxcall.store.agents import AgentRecord
from voxcall.store.records import CallRecord

__all__ = ["agent_resource", "router", "start_agent_call"]

router = APIRouter(prefix="/api")
RawBody = Annotated[dict[str, Any] | None, Body()]


def agent_resource(record: AgentRecord) -> dict[str, Any]:
    """The `Agent` resource; the template's sharedSecrets are write-only and never shown."""
    template = None
    if record.call_template is not None:
        shown = {k: v for k, v in record.call_template.items() if k != "sharedSecrets"}
        template = {"name": record.name, **shown, "created": record.created, "updated": record.updated}
    return Agent(agent_id=record.agent_id, name=record.name, created=record.created, call_template=template,
                 statistics=AgentStatistics(calls=record.call_count)).wire()


@router.get("/agents")
async def list_agents(
    request: Request, svc: Svc, account: AccountId, cursor: str | None = None, page_size: PageSize = 100,
    search: str | None = None, sort: str = "-created",
) -> dict[str, Any]:
    """The account's agents (newest first by default; `sort` also takes created, name, -name)."""
    records, nxt, prev, total = await svc.platform.agents.list_agents(account, cursor=cursor, page_size=page_size, search=search, sort=sort)
    return page(request, [agent_resource(r) for r in records], nxt, prev, total)


@router.post("/agents", status_code=201)
async def create_agent(svc: Svc, account: AccountId, raw: RawBody = None) -> JSONResponse:
    body = parse_body(AgentWrite, raw)
    has_template, template = given(raw, "callTemplate", "call_template")
    stored = checked_template(template) if has_template and template is not None else None
    record = await svc.platform.agents.create(account, body.name or "", stored)
    return JSONResponse(agent_resource(record), status_code=201)


@router.get("/agents/{agent_id}")
async def get_agent(agent_id: str, svc: Svc, account: AccountId) -> dict[str, Any]:
    return agent_resource(await svc.platform.agents.get(agent_id, account))


@router.patch("/agents/{agent_id}")
async def update_agent(agent_id: str, svc: Svc, account: AccountId, raw: RawBody = None) -> dict[str, Any]:
    """Change the name and/or replace the call template (`callTemplate: null` removes it)."""
    body = parse_body(AgentWrite, raw)
    await svc.platform.agents.get(agent_id, account)
    values: dict[str, Any] = {}
    if body.name is not None:
        values["name"] = body.name
    has_template, template = given(raw, "callTemplate", "call_template")
    if has_template:
        values["call_template"] = checked_template(template) if template is not None else None
    return agent_resource(await svc.platform.agents.update(agent_id, account, **values))


@router.delete("/agents/{agent_id}", status_code=204)
async def delete_agent(agent_id: str, svc: Svc, account: AccountId) -> Response:
    await svc.platform.agents.delete(agent_id, account)
    return Response(status_code=204)


@router.get("/agents/{agent_id}/calls")
async def list_agent_calls(
    request: Request, agent_id: str, svc: Svc, account: AccountId, cursor: str | None = None, page_size: PageSize = 100
) -> dict[str, Any]:
    records, nxt, prev, total = await svc.platform.agents.list_calls(agent_id, account, cursor=cursor, page_size=page_size)
    records = [await svc.settle_unjoined(r) for r in records]
    return page(request, [to_call(r).wire() for r in records], nxt, prev, total)


@router.post("/agents/{agent_id}/calls", status_code=201)
async def create_agent_call(request: Request, agent_id: str, svc: Svc, account: AccountId, raw: RawBody = None) -> JSONResponse:
    """Create a call from the agent's template, filled from `templateContext`; 201 `Call` with `agentId` set."""
    agent = await svc.platform.agents.get(agent_id, account)
    record = await start_agent_call(request, svc, agent, parse_body(StartAgentCallRequest, raw))
    return JSONResponse(to_call(record).wire(), status_code=201)


async def start_agent_call(request: Request, svc: Services, agent: AgentRecord, body: StartAgentCallRequest) -> CallRecord:
    """Create a call from `agent` (in the agent's account): its template filled from `body`, then `start_call`."""
    call, fill_tools = agent_call_request(agent.call_template, body)
    start = parse_body(StartCallRequest, call)
    record = await start_call(request, svc, agent.account_id, start, start.wire(), list(start.initial_messages or []),
                              agent=(agent.agent_id, agent.name), prepare_tools=fill_tools)
    await svc.platform.agents.count_call(agent.agent_id)
    return record
