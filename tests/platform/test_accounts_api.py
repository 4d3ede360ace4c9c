"""/api/api_keys, /api/deleted_calls and /api/accounts/me/usage/*, in process."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.platform.conftest import Api
from voxcall.store.records import CallRecord

T0 = datetime(2026, 3, 4, 10, 15, tzinfo=UTC)


# ---------------------------------------------------------------- API keys


async def test_api_key_shown_once_then_by_prefix(api: Api) -> None:
    r = await api.client.post("/api_keys", json={"name": "ci", "expiryDate": "2099-01-01T00:00:00Z"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert set(created) == {"prefix", "created", "creator", "name", "expiryDate", "revoked", "secret"}
    assert re.fullmatch(r"[A-Za-z0-9]{8}\.[A-Za-z0-9]{32}", created["secret"]) and created["secret"][:8] == created["prefix"]
    assert created["creator"] == api.key[:8] and created["revoked"] is False and created["expiryDate"] == "2099-01-01T00:00:00Z"
    shown = (await api.client.get(f"/api_keys/{created['prefix']}")).json()
    assert "secret" not in shown and shown == {k: v for k, v in created.items() if k != "secret"}
    listed = (await api.client.get("/api_keys")).json()
    assert [k["prefix"] for k in listed["results"]] == [api.key[:8], created["prefix"]] and listed["total"] == 2
    assert all("secret" not in k for k in listed["results"])
    async with api.as_key(created["secret"]) as new:
        assert (await new.get("/accounts/me")).status_code == 200  # the new key works, on the same account


async def test_revoke_is_for_good_and_delete_removes(api: Api) -> None:
    created = (await api.client.post("/api_keys", json={"name": "temp"})).json()
    url = f"/api_keys/{created['prefix']}"
    assert (await api.client.patch(url, json={"revoked": False})).json()["revoked"] is False  # nothing to undo
    assert (await api.client.patch(url, json={"revoked": True, "name": "ignored"})).json() | {"revoked": True} == {
        **{k: v for k, v in created.items() if k != "secret"}, "revoked": True}
    async with api.as_key(created["secret"]) as revoked:
        assert (await revoked.get("/accounts/me")).status_code == 401
    undo = await api.client.put(url, json={"revoked": False})
    assert undo.status_code == 422 and "stays revoked" in undo.text
    assert (await api.client.delete(url)).status_code == 204
    assert (await api.client.get(url)).status_code == 404 and (await api.client.delete(url)).status_code == 404


async def test_expired_keys_stop_working(api: Api) -> None:
    key, _ = await api.svc.store.create_api_key("short", expiry_date=datetime.now(UTC) + timedelta(milliseconds=300))
    async with api.as_key(key) as short:
        assert (await short.get("/accounts/me")).status_code == 200
        import asyncio

        await asyncio.sleep(0.4)
        assert (await short.get("/accounts/me")).status_code == 401


@pytest.mark.parametrize(("body", "expected"), [
    ({}, "name"), ({"name": 3}, "name"), ({"name": "x" * 51}, "name"),
    ({"name": "k", "expiryDate": "yesterday"}, "expiryDate"), ({"name": "k", "expiryDate": "2001-01-01T00:00:00Z"}, "future"),
    ({"name": "k", "expiryDate": "2099-01-01T00:00:00"}, "time zone"),
])
async def test_bad_api_keys_are_refused(api: Api, body: dict[str, Any], expected: str) -> None:
    r = await api.client.post("/api_keys", json=body)
    assert r.status_code == 422 and expected in r.text, r.text
    assert (await api.client.get("/api_keys")).json()["total"] == 1


async def test_other_accounts_keys_are_not_found(api: Api) -> None:
    async with await api.other_account() as other:
        for method in ("GET", "PATCH", "DELETE"):
            r = await other.request(method, f"/api_keys/{api.key[:8]}", json={"revoked": True} if method == "PATCH" else None)
            assert r.status_code == 404 and "GET /api/api_keys" in r.text
        assert [k["name"] for k in (await other.get("/api_keys")).json()["results"]] == ["other"]
    assert (await api.client.get("/accounts/me")).status_code == 200  # untouched


# ------------------------------------------------------------ deleted calls


async def test_deleting_a_call_leaves_a_tombstone(api: Api) -> None:
    call = (await api.client.post("/calls", json={"maxDuration": "120s", "recordingEnabled": True, "metadata": {"k": "v"}})).json()
    await api.svc.store.mark_joined(call["callId"], client_version=None, at=datetime.now(UTC))
    await api.svc.store.mark_ended(call["callId"], reason="hangup", at=datetime.now(UTC))
    assert (await api.client.delete(f"/calls/{call['callId']}")).status_code == 204
    assert (await api.client.get(f"/calls/{call['callId']}")).status_code == 404
    tomb = (await api.client.get(f"/deleted_calls/{call['callId']}")).json()
    assert set(tomb) == {"callId", "accountId", "created", "deletionTime", "joined", "ended", "maxDuration", "endReason",
                         "recordingEnabled", "hadSummary"}
    assert tomb["callId"] == call["callId"] and tomb["created"] == call["created"] and tomb["maxDuration"] == "120s"
    assert tomb["endReason"] == "hangup" and tomb["recordingEnabled"] is True and tomb["hadSummary"] is False
    assert tomb["joined"] and tomb["ended"] and tomb["deletionTime"] >= tomb["ended"]
    listed = (await api.client.get("/deleted_calls")).json()
    assert listed["results"] == [tomb] and listed["total"] == 1
    assert (await api.client.delete(f"/calls/{call['callId']}")).status_code == 404
    assert (await api.client.get("/deleted_calls")).json()["total"] == 1


async def test_deleted_calls_filters_and_isolation(api: Api) -> None:
    agent = (await api.client.post("/agents", json={"name": "a"})).json()
    plain = (await api.client.post("/calls", json={})).json()
    from_agent = (await api.client.post(f"/agents/{agent['agentId']}/calls", json={})).json()
    for call in (plain, from_agent):
        await api.client.delete(f"/calls/{call['callId']}")
    newest_first = [t["callId"] for t in (await api.client.get("/deleted_calls")).json()["results"]]
    assert newest_first == [from_agent["callId"], plain["callId"]]
    only = (await api.client.get("/deleted_calls", params={"agentIds": agent["agentId"]})).json()["results"]
    assert [t["callId"] for t in only] == [from_agent["callId"]]
    today = datetime.now(UTC).date().isoformat()
    assert (await api.client.get("/deleted_calls", params={"fromDate": today, "toDate": today})).json()["total"] == 2
    assert (await api.client.get("/deleted_calls", params={"toDate": "2020-01-01"})).json()["total"] == 0
    assert (await api.client.get("/deleted_calls", params={"agentIds": "x"})).status_code == 422
    assert (await api.client.get("/deleted_calls", params={"fromDate": "last week"})).status_code == 422
    assert (await api.client.get(f"/deleted_calls/{uuid.uuid4()}")).status_code == 404
    async with await api.other_account() as other:
        assert (await other.get(f"/deleted_calls/{plain['callId']}")).status_code == 404
        assert (await other.get("/deleted_calls")).json()["total"] == 0


# -------------------------------------------------------------------- usage


async def add_call(api: Api, created: datetime, *, joined: float | None = None, ended: float | None = None,
                   reason: str | None = None, **request: Any) -> str:
    record = CallRecord(call_id=str(uuid.uuid4()), account_id=(await api.svc.store.authenticate(api.key)) or "", created=created,
                        request=request, joined=created + timedelta(seconds=joined) if joined is not None else None,
                        ended=created + timedelta(seconds=ended) if ended is not None else None, end_reason=reason)
    await api.svc.store.create_call(record)
    return record.call_id


async def test_usage_of_calls(api: Api) -> None:
    await add_call(api, T0, joined=1, ended=61, reason="hangup", metadata={"team": "a"}, voice="joe")
    await add_call(api, T0 + timedelta(minutes=5), joined=2, ended=32, reason="system_error", metadata={"team": "b"})
    await add_call(api, T0 + timedelta(hours=2), ended=30, reason="unjoined")
    deleted = await add_call(api, T0 + timedelta(days=1, hours=1), joined=0, ended=10, reason="connection_error")
    await api.client.delete(f"/calls/{deleted}")
    usage = (await api.client.get("/accounts/me/usage/calls")).json()
    assert usage["allTime"] == {"totalCount": 4, "errorCount": 2, "duration": "100s", "joinedCount": 3, "billedMinutes": 0.0}
    assert [(d["date"], d["totalCount"], d["duration"]) for d in usage["daily"]] == [("2026-03-04", 3, "90s"), ("2026-03-05", 1, "10s")]
    assert [(h["date"], h["hour"], h["totalCount"]) for h in usage["hourly"]] == [
        ("2026-03-04", 10, 2), ("2026-03-04", 12, 1), ("2026-03-05", 11, 1)]
    query = {"metadata.team": "a"}
    assert (await api.client.get("/accounts/me/usage/calls", params=query)).json()["allTime"]["totalCount"] == 1
    assert (await api.client.get("/accounts/me/usage/calls", params={"durationMin": "40s"})).json()["allTime"]["totalCount"] == 1
    assert (await api.client.get("/accounts/me/usage/calls", params={"durationMax": "0s"})).json()["allTime"]["totalCount"] == 1
    assert (await api.client.get("/accounts/me/usage/calls", params={"fromDate": "2026-03-05"})).json()["allTime"]["totalCount"] == 1
    assert (await api.client.get("/accounts/me/usage/calls", params={"toDate": "2026-03-04"})).json()["allTime"]["totalCount"] == 3
    by_hour = {"timeOfDayStart": "12:00:00", "timeOfDayEnd": "12:59:59"}
    assert (await api.client.get("/accounts/me/usage/calls", params=by_hour)).json()["allTime"]["totalCount"] == 1
    assert (await api.client.get("/accounts/me/usage/calls", params={"voiceId": "JOE"})).json()["allTime"]["totalCount"] == 1
    for bad in ({"durationMin": "ten"}, {"timeOfDayStart": "noon"}, {"agentIds": "123"}, {"toDate": "2026-13-01"}):
        r = await api.client.get("/accounts/me/usage/calls", params=bad)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][0] == "query", (bad, r.text)
    async with await api.other_account() as other:
        assert (await other.get("/accounts/me/usage/calls")).json()["allTime"]["totalCount"] == 0


async def test_usage_by_agent(api: Api) -> None:
    agent = (await api.client.post("/agents", json={"name": "a"})).json()
    await api.client.post(f"/agents/{agent['agentId']}/calls", json={})
    await api.client.post("/calls", json={})
    usage = (await api.client.get("/accounts/me/usage/calls", params={"agentIds": [agent["agentId"], str(uuid.uuid4())]})).json()
    assert usage["allTime"]["totalCount"] == 1 and usage["allTime"]["joinedCount"] == 0


async def test_concurrency(api: Api) -> None:
    await add_call(api, T0, joined=0, ended=600, reason="hangup")          # 10:15-10:25
    await add_call(api, T0 + timedelta(minutes=5), joined=300, ended=600)  # 10:20-10:30, joined from 10:25
    params = {"bucket": "5min", "start": "2026-03-04T10:10:00Z", "end": "2026-03-04T10:35:00Z"}
    series = (await api.client.get("/accounts/me/usage/concurrency", params=params)).json()["timeSeries"]
    assert [b["timestamp"] for b in series] == [f"2026-03-04T10:{m}:00Z" for m in ("10", "15", "20", "25", "30")]
    assert [(b["maxTotalCalls"], b["maxJoinedCalls"]) for b in series] == [(0, 0), (1, 1), (2, 1), (1, 1), (0, 0)]
    assert [(b["avgTotalCalls"], b["avgJoinedCalls"]) for b in series] == [(0, 0), (1, 1), (2, 1), (1, 1), (0, 0)]
    hour = (await api.client.get("/accounts/me/usage/concurrency", params={**params, "bucket": "hour"})).json()["timeSeries"]
    assert len(hour) == 1 and hour[0]["timestamp"] == "2026-03-04T10:00:00Z" and hour[0]["maxTotalCalls"] == 2
    assert hour[0]["avgTotalCalls"] == pytest.approx(20 / 35, abs=1e-6)  # 20 call-minutes over 10:00 to the end, 10:35
    default = (await api.client.get("/accounts/me/usage/concurrency")).json()["timeSeries"]
    assert len(default) in (1440, 1441) and set(default[0]) == {"timestamp", "maxTotalCalls", "maxJoinedCalls", "avgTotalCalls", "avgJoinedCalls"}
    for bad in ({"bucket": "week"}, {"start": "2026-03-05T00:00:00Z", "end": "2026-03-04T00:00:00Z"},
                {"bucket": "minute", "start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, {"end": "soon"}):
        assert (await api.client.get("/accounts/me/usage/concurrency", params=bad)).status_code == 422, bad
