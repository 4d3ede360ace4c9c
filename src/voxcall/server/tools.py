"""The /api/tools routes: durable tools CRUD, their history, and test runs (PROTOCOL.md 1.9.1).

Bodies are read here rather than by FastAPI so that every failure has a message a person
can act on: 415 for a body that is not JSON (the OpenAPI-file upload is not supported),
422 for malformed JSON or a field that does not validate (in FastAPI's `detail` list form).
Unknown ids and other accounts' ids are 404; built-in tools cannot be changed (403).
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from voxcall.engine.http_tool import HttpToolExecutor
from voxcall.engine.tool_params import ToolContext
from voxcall.engine.tools import HangUp, NewStage, ToolExecutor, ToolOutcome, ToolRunner
from voxcall.errors import ApiError, InvalidRequest
from voxcall.protocol.rest import Page, StartCallRequest
from voxcall.protocol.tools import SelectedTool, ToolBody, ToolResource, ToolTestRequest
from voxcall.providers.base import ToolCall
from voxcall.server.call_tools import build_call_tools, tool_def
from voxcall.server.calls import to_call
from voxcall.server.phone_tools import ColdTransferExecutor
from voxcall.server.rest import PageSize  # DRF's rule: below 1 the default, above 1000 the maximum
from voxcall.server.services import Services, get_services, require_api_key
from voxcall.store.tools import ToolRecord

__all__ = ["OPERATIONS", "router", "tool_executors"]

router = APIRouter(prefix="/api")
AccountId = Annotated[str, Depends(require_api_key)]
Svc = Annotated[Services, Depends(get_services)]
SortOrder = Literal["display", "alphabetic", "reverseAlphabetic", "chronologic", "reverseChronologic", "default"]
M = TypeVar("M", bound=BaseModel)
OPERATIONS = (
    ("GET", "/api/tools"), ("POST", "/api/tools"), ("GET", "/api/tools/{tool_id}"), ("PUT", "/api/tools/{tool_id}"),
    ("DELETE", "/api/tools/{tool_id}"), ("GET", "/api/tools/{tool_id}/history"), ("POST", "/api/tools/{tool_id}/test"),
)
_MAX_BODY = 256 * 1024


def tool_executors(svc: Services) -> dict[str, ToolExecutor]:
    """The executors a call gets beyond the engine's own: HTTP tools over the shared outbound client, coldTransfer."""
    executors: dict[str, ToolExecutor] = {"cold_transfer": ColdTransferExecutor(svc.phone)}
    if svc.outbound is not None:
        executors["http"] = HttpToolExecutor(svc.outbound)
    return executors


def _resource(record: ToolRecord) -> dict[str, Any]:
    return ToolResource(tool_id=record.tool_id, name=record.name, created=record.created, definition=record.definition,
                        ownership=record.ownership).wire()


def _page(request: Request, results: list[Any], next_cursor: str | None, prev: str | None, total: int) -> dict[str, Any]:
    def link(cursor: str | None) -> str | None:
        return str(request.url.include_query_params(cursor=cursor)) if cursor else None

    return Page[Any](next=link(next_cursor), previous=link(prev), results=results, total=total).wire()


async def _body(request: Request, model: type[M], *, optional: bool = False) -> M:
    """The JSON body as `model`: 415 if it is not JSON, 422 if malformed or invalid."""
    raw = await request.body()
    if optional and not raw.strip():
        return model()
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        raise ApiError(f"Send the body as application/json, not {kind or 'no content type'}; "
                       "creating tools from an uploaded OpenAPI file is not supported.", status_code=415)
    if len(raw) > _MAX_BODY:
        raise ApiError(f"The body is larger than {_MAX_BODY} bytes.", status_code=413)
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        for error in errors:
            error["loc"] = ("body", *error["loc"])
            error.pop("ctx", None)  # may hold exception objects, which are not JSON
        raise RequestValidationError(errors) from None


@router.get("/tools")
async def list_tools(
    request: Request,
    svc: Svc,
    account: AccountId,
    ownership: Literal["private", "public"] | None = None,
    search: Annotated[str | None, Query(min_length=1)] = None,
    sort_order: Annotated[SortOrder, Query(alias="sortOrder")] = "default",
    cursor: str | None = None,
    page_size: PageSize = 100,
) -> dict[str, Any]:
    """The account's tools and the built-in ones (`ownership=public`), paginated."""
    tools, nxt, prev, total = await svc.tool_store.list_tools(account, ownership=ownership, search=search, sort=sort_order,
                                                        cursor=cursor, page_size=page_size)
    return _page(request, [_resource(t) for t in tools], nxt, prev, total)


@router.post("/tools", status_code=201)
async def create_tool(request: Request, svc: Svc, account: AccountId) -> JSONResponse:
    body = await _body(request, ToolBody)
    record = await svc.tool_store.create(account, body.name, body.definition.wire())
    return JSONResponse(_resource(record), status_code=201)


@router.get("/tools/{tool_id}")
async def get_tool(tool_id: str, svc: Svc, account: AccountId) -> dict[str, Any]:
    return _resource(await svc.tool_store.get(tool_id, account))


@router.put("/tools/{tool_id}")
async def replace_tool(tool_id: str, request: Request, svc: Svc, account: AccountId) -> dict[str, Any]:
    """Full replacement of name and definition (there is no PATCH)."""
    await svc.tool_store.get(tool_id, account)  # 404 before 422: an unknown id is the first thing to fix
    body = await _body(request, ToolBody)
    return _resource(await svc.tool_store.replace(tool_id, account, body.name, body.definition.wire()))


@router.delete("/tools/{tool_id}", status_code=204)
async def delete_tool(tool_id: str, svc: Svc, account: AccountId) -> Response:
    await svc.tool_store.delete(tool_id, account)
    return Response(status_code=204)


@router.get("/tools/{tool_id}/history")
async def tool_history(
    request: Request, tool_id: str, svc: Svc, account: AccountId, cursor: str | None = None, page_size: PageSize = 100
) -> dict[str, Any]:
    """The account's calls that selected this tool, newest first, with their failed-result counts."""
    uses, nxt, prev, total = await svc.tool_store.history(tool_id, account, cursor=cursor, page_size=page_size)
    return _page(request, [{"call": to_call(u.call).wire(), "errorCount": u.error_count} for u in uses], nxt, prev, total)


@router.post("/tools/{tool_id}/test")
async def test_tool(tool_id: str, request: Request, svc: Svc, account: AccountId) -> dict[str, Any]:
    """Run the tool once with `{parameters, authTokens?, parameterOverrides?, callState?}`; 200 with the outcome.

    A tool that fails (bad status, timeout, refused target) is still a 200: the answer says
    what the model would have heard (`result`) and why (`errorDetails`).
    """
    record = await svc.tool_store.get(tool_id, account)
    body = await _body(request, ToolTestRequest, optional=True)
    selected = SelectedTool(tool_id=record.tool_id, auth_tokens=body.auth_tokens, parameter_overrides=body.parameter_overrides)
    tool = tool_def(build_call_tools(StartCallRequest(selected_tools=[selected]), {0: record})[0])
    if tool.kind in ("client", "data_connection") and tool.static_response is None:
        raise InvalidRequest(f"{record.name} is implemented by the client; test it in a call, where the client answers it.")

    async def nowhere(message: BaseModel) -> None:
        pass

    runner = ToolRunner((tool,), nowhere, tool_executors(svc))
    call_id = str(uuid.uuid4())
    context = ToolContext(call_id=call_id, call_stage_id=call_id, call_state=body.call_state or {})
    try:
        outcome = await runner.run(ToolCall(f"test-{call_id}", tool.spec.name, body.parameters), context)
    finally:
        await runner.close()
    return _outcome(outcome)


def _outcome(outcome: ToolOutcome) -> dict[str, Any]:
    kind = "hang-up" if isinstance(outcome.control, HangUp) else "new-stage" if isinstance(outcome.control, NewStage) else "tool-response"
    return {"success": outcome.error is None, "result": outcome.result, "responseType": kind,
            "agentReaction": outcome.reaction, "updateCallState": outcome.update_call_state,
            "errorDetails": outcome.error, "notes": list(outcome.notes)}
