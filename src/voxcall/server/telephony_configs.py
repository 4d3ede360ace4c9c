"""The /api/telephony_configs/{twilio|telnyx|plivo} routes: import an account's carrier credentials.

One config per account and carrier (ultravox-openapi.yaml `telephony_configs_*`): GET (404
until there is one), POST (201; 409 when there is one already), PATCH (only the fields
given change; a secret is replaced only when a new one is sent), DELETE (204). Secrets are
write-only: replies show `authTokenPrefix` / `apiKeyPrefix` / `publicKeyPrefix` only. The
deprecated `/api/accounts/me/telephony_config` shows and patches all three at once.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from voxcall.errors import InvalidRequest
from voxcall.protocol.telephony_configs import (
    CARRIERS,
    SECRET_FIELDS,
    ConfigBody,
    config_resource,
    merged_config,
)
from voxcall.server.services import Services, get_services, require_api_key

__all__ = ["router"]

router = APIRouter(prefix="/api")
AccountId = Annotated[str, Depends(require_api_key)]
Svc = Annotated[Services, Depends(get_services)]
RawBody = Annotated[dict[str, Any] | None, Body()]


def _parse(raw: dict[str, Any] | None, *loc: str) -> ConfigBody:
    try:
        return ConfigBody.model_validate(raw or {})
    except ValidationError as exc:
        raise InvalidRequest([{"loc": ["body", *loc, *e["loc"]], "msg": e["msg"], "type": e["type"]}
                              for e in exc.errors(include_url=False)]) from exc


def _merged(carrier: str, current: dict[str, Any], body: ConfigBody, *, create: bool, loc: tuple[str, ...] = ()) -> dict[str, Any]:
    try:
        return merged_config(carrier, current, body.given(carrier), create=create)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise InvalidRequest([{"loc": ["body", *loc, field], "msg": message, "type": "value_error"}]) from exc


async def _create(svc: Services, account: str, carrier: str, body: ConfigBody, loc: tuple[str, ...] = ()) -> dict[str, Any]:
    config = _merged(carrier, {}, body, create=True, loc=loc)
    stored = await svc.phone.store.create_config(account, carrier, config, SECRET_FIELDS[carrier])
    return config_resource(carrier, stored.config)


async def _patch(svc: Services, account: str, carrier: str, body: ConfigBody, loc: tuple[str, ...] = ()) -> dict[str, Any]:
    current = await svc.phone.store.get_config(account, carrier)
    config = _merged(carrier, current.config, body, create=False, loc=loc)
    stored = await svc.phone.store.replace_config(account, carrier, config, SECRET_FIELDS[carrier])
    return config_resource(carrier, stored.config)


def _add_routes(carrier: str) -> None:
    path = f"/telephony_configs/{carrier}"
    name = carrier.capitalize()

    async def retrieve(svc: Svc, account: AccountId) -> dict[str, Any]:
        return config_resource(carrier, (await svc.phone.store.get_config(account, carrier)).config)

    async def create(svc: Svc, account: AccountId, raw: RawBody = None) -> JSONResponse:
        return JSONResponse(await _create(svc, account, carrier, _parse(raw)), status_code=201)

    async def partial_update(svc: Svc, account: AccountId, raw: RawBody = None) -> dict[str, Any]:
        return await _patch(svc, account, carrier, _parse(raw))

    async def destroy(svc: Svc, account: AccountId) -> Response:
        await svc.phone.store.delete_config(account, carrier)
        return Response(status_code=204)

    for method, endpoint, status, summary in (
        ("GET", retrieve, 200, f"The account's {name} credentials (secrets as prefixes)"),
        ("POST", create, 201, f"Import {name} credentials"),
        ("PATCH", partial_update, 200, f"Change {name} credentials or call-creation settings"),
        ("DELETE", destroy, 204, f"Remove the {name} credentials"),
    ):
        verb = {"GET": "retrieve", "POST": "create", "PATCH": "partial_update", "DELETE": "destroy"}[method]
        router.add_api_route(path, endpoint, methods=[method], status_code=status, summary=summary,
                             operation_id=f"telephony_configs_{carrier}_{verb}", tags=["telephony_configs"])


for _carrier in CARRIERS:
    _add_routes(_carrier)


@router.get("/accounts/me/telephony_config", deprecated=True, tags=["accounts"])
async def account_telephony_config(svc: Svc, account: AccountId) -> dict[str, Any]:
    """DEPRECATED: all three configs at once; prefer /api/telephony_configs/{carrier}."""
    shown: dict[str, Any] = {}
    for carrier in CARRIERS:
        stored = await svc.phone.store.find_config(account, carrier)
        if stored is not None:
            shown[carrier] = config_resource(carrier, stored.config)
    return shown


@router.patch("/accounts/me/telephony_config", deprecated=True, tags=["accounts"])
async def patch_account_telephony_config(svc: Svc, account: AccountId, raw: RawBody = None) -> dict[str, Any]:
    """DEPRECATED: create or change any of the three configs (all checked before any is stored)."""
    raw = raw or {}
    changes: list[tuple[str, dict[str, Any], bool]] = []
    for name in CARRIERS:
        carrier: str = name
        if raw.get(carrier) is None:
            continue
        if not isinstance(raw[carrier], dict):
            raise InvalidRequest([{"loc": ["body", carrier], "msg": "must be an object", "type": "dict_type"}])
        current = await svc.phone.store.find_config(account, carrier)
        config = _merged(carrier, current.config if current else {}, _parse(raw[carrier], carrier),
                         create=current is None, loc=(carrier,))
        changes.append((carrier, config, current is None))
    for carrier, config, new in changes:
        store = svc.phone.store
        await (store.create_config if new else store.replace_config)(account, carrier, config, SECRET_FIELDS[carrier])
    return await account_telephony_config(svc, account)
