"""/api/telephony_configs/{twilio|telnyx|plivo} in process: shapes, write-only secrets, rules, accounts, the deprecated route."""

from __future__ import annotations

import uuid

import pytest

from tests.phone.conftest import PLIVO, TELNYX, TELNYX_PUBLIC, TWILIO, Api
from voxcall.server.app import create_app


async def test_twilio_round_trip_shows_only_the_prefix_of_the_auth_token(api: Api) -> None:
    missing = await api.call("GET", "/api/telephony_configs/twilio")
    assert missing.status_code == 404 and "POST /api/telephony_configs/twilio" in missing.json()["detail"]
    created = await api.configure("twilio")
    assert created == {"callCreationAllowedAgentIds": [], "callCreationAllowAllAgents": False, "requestContextMapping": {},
                       "accountSid": TWILIO["accountSid"], "authTokenPrefix": {"prefix": TWILIO["authToken"][:4]}}
    got = await api.call("GET", "/api/telephony_configs/twilio")
    assert got.status_code == 200 and got.json() == created
    assert TWILIO["authToken"] not in got.text
    again = await api.call("POST", "/api/telephony_configs/twilio", json=TWILIO)
    assert again.status_code == 409 and "PATCH" in again.json()["detail"]
    deleted = await api.call("DELETE", "/api/telephony_configs/twilio")
    assert deleted.status_code == 204
    assert (await api.call("GET", "/api/telephony_configs/twilio")).status_code == 404
    assert (await api.call("DELETE", "/api/telephony_configs/twilio")).status_code == 404
    assert (await api.call("PATCH", "/api/telephony_configs/twilio", json={"callCreationAllowAllAgents": True})).status_code == 404


async def test_patch_changes_only_what_is_given_and_replaces_secrets_when_sent(api: Api) -> None:
    await api.configure("twilio")
    agent = str(uuid.uuid4())
    patched = await api.call("PATCH", "/api/telephony_configs/twilio",
                             json={"callCreationAllowedAgentIds": [agent, agent.upper()], "requestContextMapping": {"From": "user.phone"},
                                   "authTokenPrefix": {"prefix": "ignored"}})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["callCreationAllowedAgentIds"] == [agent]  # one agent, written two ways
    assert body["requestContextMapping"] == {"From": "user.phone"} and body["authTokenPrefix"] == {"prefix": "twil"}
    stored = await api.svc.phone.store.get_config("acct-a", "twilio")
    assert stored.config["authToken"] == TWILIO["authToken"]  # kept: no new one was sent
    rotated = await api.call("PATCH", "/api/telephony_configs/twilio", json={"authToken": "NEWTOKEN-123"})
    assert rotated.json()["authTokenPrefix"] == {"prefix": "NEWT"} and rotated.json()["callCreationAllowedAgentIds"] == [agent]
    assert (await api.svc.phone.store.get_config("acct-a", "twilio")).config["authToken"] == "NEWTOKEN-123"


async def test_secrets_are_stored_apart_from_what_is_shown(api: Api) -> None:
    await api.configure("telnyx")
    async with api.svc.store.engine.connect() as conn:
        from sqlalchemy import text

        row = (await conn.execute(text("SELECT settings, secrets FROM telephony_configs"))).one()
    assert TELNYX["apiKey"] not in str(row[0]) and TELNYX["publicKey"] not in str(row[0])
    assert TELNYX["apiKey"] in str(row[1]) and TELNYX["publicKey"] in str(row[1])


async def test_telnyx_and_plivo_shapes(api: Api) -> None:
    telnyx = await api.configure("telnyx")
    assert telnyx == {"callCreationAllowedAgentIds": [], "callCreationAllowAllAgents": False, "requestContextMapping": {},
                      "accountSid": TELNYX["accountSid"], "applicationSid": TELNYX["applicationSid"],
                      "apiKeyPrefix": {"prefix": "KEY0"}, "publicKeyPrefix": {"prefix": TELNYX_PUBLIC[:4]}}
    plivo = await api.configure("plivo", callCreationAllowAllAgents=True)
    assert plivo == {"callCreationAllowedAgentIds": [], "callCreationAllowAllAgents": True, "requestContextMapping": {},
                     "authId": PLIVO["authId"], "authTokenPrefix": {"prefix": "pliv"}}
    assert (await api.call("GET", "/api/telephony_configs/twilio")).status_code == 404  # each carrier on its own


@pytest.mark.parametrize(("carrier", "body", "where", "needle"), [
    ("twilio", {"accountSid": "AC1"}, ["body", "authToken"], "required"),
    ("telnyx", {"accountSid": "a", "apiKey": "k", "publicKey": TELNYX_PUBLIC}, ["body", "applicationSid"], "required"),
    ("telnyx", {**TELNYX, "publicKey": "bm90IGEga2V5"}, ["body", "publicKey"], "32 bytes"),
    ("telnyx", {**TELNYX, "applicationSid": "x" * 41}, ["body", "applicationSid"], "40"),
    ("plivo", {"authToken": "t"}, ["body", "authId"], "required"),
    ("twilio", {**TWILIO, "callCreationAllowedAgentIds": ["agent-1"]}, ["body", "callCreationAllowedAgentIds"], "UUID"),
    ("twilio", {**TWILIO, "callCreationAllowedAgentIds": [str(uuid.uuid4()) for _ in range(101)]},
     ["body", "callCreationAllowedAgentIds"], "100"),
    ("twilio", {**TWILIO, "callCreationAllowAllAgents": True, "callCreationAllowedAgentIds": [str(uuid.uuid4())]},
     ["body", "callCreationAllowedAgentIds"], "callCreationAllowAllAgents is true"),
    ("twilio", {**TWILIO, "requestContextMapping": {"From": "user..phone"}}, ["body", "requestContextMapping"], "dot-separated"),
    ("twilio", {**TWILIO, "authToken": ""}, ["body", "authToken"], "at least 1"),
])
async def test_bad_configs_are_422_naming_the_field(api: Api, carrier: str, body: dict[str, object], where: list[str],
                                                    needle: str) -> None:
    r = await api.call("POST", f"/api/telephony_configs/{carrier}", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(d["loc"][:len(where)] == where and needle in d["msg"] for d in detail), detail
    assert (await api.call("GET", f"/api/telephony_configs/{carrier}")).status_code == 404  # nothing stored


async def test_patch_cannot_contradict_the_stored_allowance(api: Api) -> None:
    await api.configure("twilio", callCreationAllowedAgentIds=[str(uuid.uuid4())])
    r = await api.call("PATCH", "/api/telephony_configs/twilio", json={"callCreationAllowAllAgents": True})
    assert r.status_code == 422 and "empty list" in r.json()["detail"][0]["msg"]
    ok = await api.call("PATCH", "/api/telephony_configs/twilio",
                        json={"callCreationAllowAllAgents": True, "callCreationAllowedAgentIds": []})
    assert ok.status_code == 200 and ok.json()["callCreationAllowAllAgents"] is True


async def test_accounts_see_only_their_own_configs(api: Api) -> None:
    await api.configure("twilio")
    assert (await api.call("GET", "/api/telephony_configs/twilio", "b")).status_code == 404
    assert (await api.call("DELETE", "/api/telephony_configs/twilio", "b")).status_code == 404
    await api.configure("twilio", "b", accountSid="AC-other")
    assert (await api.call("GET", "/api/telephony_configs/twilio")).json()["accountSid"] == TWILIO["accountSid"]


async def test_auth_body_and_path_errors(api: Api) -> None:
    assert (await api.client.get("/api/telephony_configs/twilio")).status_code == 401
    assert (await api.call("GET", "/api/telephony_configs/vonage")).status_code == 404
    not_json = await api.call("POST", "/api/telephony_configs/twilio", content=b"accountSid=AC1",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert not_json.status_code == 422


async def test_the_deprecated_account_route_shows_and_patches_all_three(api: Api) -> None:
    assert (await api.call("GET", "/api/accounts/me/telephony_config")).json() == {}
    r = await api.call("PATCH", "/api/accounts/me/telephony_config", json={"twilio": TWILIO, "plivo": PLIVO})
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"twilio", "plivo"} and r.json()["twilio"]["authTokenPrefix"] == {"prefix": "twil"}
    changed = await api.call("PATCH", "/api/accounts/me/telephony_config",
                             json={"twilio": {"callCreationAllowAllAgents": True}, "telnyx": {"accountSid": "x"}})
    assert changed.status_code == 422 and changed.json()["detail"][0]["loc"][:2] == ["body", "telnyx"]
    assert (await api.call("GET", "/api/telephony_configs/twilio")).json()["callCreationAllowAllAgents"] is False  # all or none
    fine = await api.call("PATCH", "/api/accounts/me/telephony_config", json={"twilio": {"callCreationAllowAllAgents": True}})
    assert fine.json()["twilio"]["callCreationAllowAllAgents"] is True and "telnyx" not in fine.json()


def test_the_routes_carry_the_documented_operation_ids(api: Api) -> None:
    """ultravox-openapi.yaml: telephony_configs_{carrier}_{retrieve,create,partial_update,destroy}."""
    ours = create_app(services=api.svc).openapi()["paths"]
    verbs = {"get": "retrieve", "post": "create", "patch": "partial_update", "delete": "destroy"}
    for carrier in ("twilio", "telnyx", "plivo"):
        operations = ours[f"/api/telephony_configs/{carrier}"]
        assert {m: o["operationId"] for m, o in operations.items()} == {
            m: f"telephony_configs_{carrier}_{v}" for m, v in verbs.items()}
    assert set(ours["/api/accounts/me/telephony_config"]) == {"get", "patch"}
