"""The /api/api_keys and /api/accounts/me/usage/* routes.

API keys: the whole key is shown once, in the answer to POST; afterwards only
its prefix. `revoked` is the one writable field and cannot be undone. A key
made through the API records the prefix of the key that made it as `creator`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse

from voxcall.errors import InvalidRequest
from voxcall.protocol.platform import ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyPatch
from voxcall.protocol.wire import parse_duration
from voxcall.server.bodies import page, parse_body
from voxcall.server.rest import AccountId, PageSize, Svc
from voxcall.server.usage import (
    BUCKETS,
    MAX_BUCKETS,
    SampleFilter,
    call_usage,
    concurrency,
)
from voxcall.store.records import ApiKeyInfo

__all__ = ["key_resource", "parse_agent_ids", "parse_date", "router"]

router = APIRouter(prefix="/api")
RawBody = Annotated[dict[str, Any] | None, Body()]


def key_resource(info: ApiKeyInfo) -> dict[str, Any]:
    return ApiKey(prefix=info.prefix, created=info.created, creator=info.creator, name=info.name,
                  expiry_date=info.expiry_date, revoked=info.revoked).wire()


# ---------------------------------------------------------------- API keys


@router.get("/api_keys")
async def list_keys(request: Request, svc: Svc, account: AccountId, cursor: str | None = None, page_size: PageSize = 100) -> dict[str, Any]:
    keys, nxt, prev, total = await svc.platform.api_keys.list_keys(account, cursor=cursor, page_size=page_size)
    return page(request, [key_resource(k) for k in keys], nxt, prev, total)


@router.post("/api_keys", status_code=201)
async def create_key(request: Request, svc: Svc, account: AccountId, raw: RawBody = None) -> JSONResponse:
    """Create a key; the answer's `secret` is the key itself, shown this once."""
    body = parse_body(ApiKeyCreate, raw)
    if body.expiry_date is not None and body.expiry_date <= datetime.now(UTC):
        raise InvalidRequest([{"loc": ["body", "expiryDate"], "type": "value_error", "msg": "expiryDate must be in the future"}])
    creator = (request.headers.get("x-api-key") or request.headers.get("x-unsafe-api-key") or "").strip()[:8] or None
    key, info = await svc.store.create_api_key(body.name, account, expiry_date=body.expiry_date, creator=creator)
    shown = ApiKeyCreated(secret=key, **key_resource(info))
    return JSONResponse(shown.wire(), status_code=201)


@router.get("/api_keys/{prefix}")
async def get_key(prefix: str, svc: Svc, account: AccountId) -> dict[str, Any]:
    return key_resource(await svc.platform.api_keys.get(prefix, account))


@router.patch("/api_keys/{prefix}")
@router.put("/api_keys/{prefix}")
async def update_key(prefix: str, svc: Svc, account: AccountId, raw: RawBody = None) -> dict[str, Any]:
    """Revoke a key with `{"revoked": true}`; nothing else about a key can change."""
    body = parse_body(ApiKeyPatch, raw)
    info = await svc.platform.api_keys.get(prefix, account)
    if body.revoked is False and info.revoked:
        raise InvalidRequest([{"loc": ["body", "revoked"], "type": "value_error",
                               "msg": "a revoked key stays revoked; create a new key with POST /api/api_keys"}])
    if body.revoked:
        info = await svc.platform.api_keys.revoke(prefix, account)
    return key_resource(info)


@router.delete("/api_keys/{prefix}", status_code=204)
async def delete_key(prefix: str, svc: Svc, account: AccountId) -> Response:
    await svc.platform.api_keys.delete(prefix, account)
    return Response(status_code=204)


# ------------------------------------------------------------------- usage


def _bad(name: str, message: str) -> InvalidRequest:
    return InvalidRequest([{"loc": ["query", name], "type": "value_error", "msg": message}])


def parse_date(value: str | None, name: str, *, end_of_day: bool = False) -> datetime | None:
    """A date-time query value; a bare date means the start (or end) of that day, and no zone means UTC."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = datetime.fromisoformat(value).replace(tzinfo=UTC)
            return day + timedelta(days=1, microseconds=-1) if end_of_day else day
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _bad(name, f"not a date or date-time: {value!r} (e.g. 2026-01-31 or 2026-01-31T12:00:00Z)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_agent_ids(values: list[str] | None) -> list[str] | None:
    """`agentIds`, repeated or comma-separated; each must be a UUID."""
    ids = [v.strip() for value in values or [] for v in value.split(",") if v.strip()]
    for agent_id in ids:
        try:
            uuid.UUID(agent_id)
        except ValueError as exc:
            raise _bad("agentIds", f"{agent_id!r} is not an agent id (a UUID)") from exc
    return ids or None


def _duration(value: str | None, name: str) -> float | None:
    try:
        return parse_duration(value) if value else None
    except ValueError as exc:
        raise _bad(name, str(exc)) from exc


def _time_of_day(value: str) -> time:
    """A time of day on the UTC clock the samples are compared on ("09:00:00Z" and "09:00:00" alike)."""
    parsed = time.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed
    return datetime.combine(datetime(2000, 1, 1).date(), parsed).astimezone(UTC).time()


def _filter(request: Request, duration_min: str | None, duration_max: str | None, start: str, end: str, voice: str | None) -> SampleFilter:
    low, high = _duration(duration_min, "durationMin"), _duration(duration_max, "durationMax")
    try:
        day_start, day_end = _time_of_day(start), _time_of_day(end)
    except ValueError as exc:
        raise _bad("timeOfDay", "timeOfDayStart and timeOfDayEnd are times of day, e.g. 09:00:00") from exc
    metadata = {k[len("metadata."):]: v for k, v in request.query_params.items() if k.startswith("metadata.")}
    metadata |= {k[len("metadata["):-1]: v for k, v in request.query_params.items() if k.startswith("metadata[") and k.endswith("]")}
    return SampleFilter(low, high, day_start, day_end, metadata, voice)


@router.get("/accounts/me/usage/calls")
async def usage_calls(
    request: Request, svc: Svc, account: AccountId,
    agent_ids: Annotated[list[str] | None, Query(alias="agentIds")] = None,
    duration_min: Annotated[str | None, Query(alias="durationMin")] = None,
    duration_max: Annotated[str | None, Query(alias="durationMax")] = None,
    from_date: Annotated[str | None, Query(alias="fromDate")] = None,
    to_date: Annotated[str | None, Query(alias="toDate")] = None,
    time_of_day_start: Annotated[str, Query(alias="timeOfDayStart")] = "00:00:00",
    time_of_day_end: Annotated[str, Query(alias="timeOfDayEnd")] = "23:59:59.999999",
    voice_id: Annotated[str | None, Query(alias="voiceId")] = None,
) -> dict[str, Any]:
    """Aggregated call usage (`CallUsage`) of the account, deleted calls included."""
    keep = _filter(request, duration_min, duration_max, time_of_day_start, time_of_day_end, voice_id)
    samples = await svc.platform.usage.samples(
        account, created_from=parse_date(from_date, "fromDate"), created_to=parse_date(to_date, "toDate", end_of_day=True),
        agent_ids=parse_agent_ids(agent_ids),
    )
    return call_usage(samples, keep).wire()


@router.get("/accounts/me/usage/concurrency")
async def usage_concurrency(
    svc: Svc, account: AccountId, bucket: Literal["minute", "5min", "hour", "day"] = "minute",
    start: str | None = None, end: str | None = None,
) -> dict[str, Any]:
    """Peak and average concurrent calls per bucket, from `start` (default: 24 hours before `end`) to `end` (default: now)."""
    now = datetime.now(UTC)
    until = parse_date(end, "end", end_of_day=True) or now
    since = parse_date(start, "start") or until - timedelta(hours=24)
    if since >= until:
        raise _bad("start", "start must be before end")
    if (until - since).total_seconds() / BUCKETS[bucket] > MAX_BUCKETS:
        raise _bad("bucket", f"that range has more than {MAX_BUCKETS} {bucket} buckets: choose a larger bucket or a shorter range")
    samples = await svc.platform.usage.samples(account, created_to=until, live_at_or_after=since)
    return concurrency(samples, start=since, end=until, bucket=bucket, now=now).wire()
