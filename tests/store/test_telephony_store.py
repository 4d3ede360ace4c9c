"""TelephonyStore on SQLite and PostgreSQL: carrier configs per account, carrier calls and their state moves."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from voxcall.errors import ApiError, NotFound
from voxcall.store import CallRecord, Store
from voxcall.store.telephony import CarrierCall, TelephonyStore

CONFIG = {"accountSid": "AC1", "authToken": "secret-token", "callCreationAllowedAgentIds": [], "callCreationAllowAllAgents": False,
          "requestContextMapping": {}}


async def account(store: Store, name: str) -> str:
    await store.create_api_key(account_id=name)
    return name


async def test_configs_per_account_and_carrier(store: Store) -> None:
    phone = TelephonyStore(store.engine)
    a, b = await account(store, "acct-a"), await account(store, "acct-b")
    assert await phone.find_config(a, "twilio") is None
    with pytest.raises(NotFound, match="POST /api/telephony_configs/twilio"):
        await phone.get_config(a, "twilio")
    created = await phone.create_config(a, "twilio", CONFIG, ("authToken",))
    assert created.config == CONFIG and created.created == created.updated
    with pytest.raises(ApiError) as duplicate:
        await phone.create_config(a, "twilio", CONFIG, ("authToken",))
    assert duplicate.value.status_code == 409
    await phone.create_config(b, "twilio", {**CONFIG, "accountSid": "AC2"}, ("authToken",))
    await phone.create_config(a, "plivo", {"authId": "MA1", "authToken": "p"}, ("authToken",))
    replaced = await phone.replace_config(a, "twilio", {**CONFIG, "authToken": "rotated"}, ("authToken",))
    assert replaced.config["authToken"] == "rotated" and replaced.updated >= replaced.created
    assert (await phone.get_config(b, "twilio")).config["accountSid"] == "AC2"
    await phone.delete_config(a, "twilio")
    assert await phone.find_config(a, "twilio") is None and await phone.find_config(a, "plivo") is not None
    with pytest.raises(NotFound):
        await phone.delete_config(a, "twilio")
    with pytest.raises(NotFound):
        await phone.replace_config(a, "twilio", CONFIG, ("authToken",))


async def test_a_carrier_call_moves_once_and_goes_with_its_call(store: Store) -> None:
    phone = TelephonyStore(store.engine)
    call_id = str(uuid.uuid4())
    await store.create_call(CallRecord(call_id=call_id, account_id="acct-a", created=datetime.now(UTC), request={}))
    await phone.add_call(CarrierCall(call_id, "acct-a", "twilio", "outgoing", "dialing"))
    await phone.set_call(call_id, carrier_call_id="CA1")
    assert (await phone.move(call_id, "placed", from_=("dialing",))) is not None
    moves = await asyncio.gather(*(phone.move(call_id, "hung_up", from_=("dialing", "placed")) for _ in range(5)))
    assert sum(m is not None for m in moves) == 1  # one of five concurrent enders gets to tell the carrier
    winner = next(m for m in moves if m is not None)
    assert (winner.state, winner.carrier_call_id) == ("placed", "CA1")
    assert (await phone.get_call(call_id)).state == "hung_up"  # type: ignore[union-attr]
    assert await phone.move(call_id, "transferred", from_=("placed",)) is None
    await store.delete_call(call_id, "acct-a")
    assert await phone.get_call(call_id) is None
