"""Phone-call storage behind `TelephonyStore`: carrier configs per account, and the carrier side of calls.

A config is stored as `settings` (what the API shows, less the secret prefixes) and
`secrets` (the write-only fields, which are needed in the clear: they sign and verify
carrier requests). Callers see one merged dict in wire names.

A carrier call moves through states in single conditional statements, so that of two
processes ending or transferring the same call only one tells the carrier:
`dialing` -> `placed` (or `failed`); `placed` -> `transferred` or `hung_up`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from voxcall.errors import ApiError, NotFound
from voxcall.store.outage import guarded
from voxcall.store.telephony_tables import CarrierCallRow, TelephonyConfigRow

__all__ = ["CarrierCall", "StoredConfig", "TelephonyStore"]


@dataclass(frozen=True, slots=True)
class StoredConfig:
    """An account's config for one carrier, secrets included (never hand this to a response as is)."""

    account_id: str
    carrier: str
    config: dict[str, Any]
    created: datetime
    updated: datetime


@dataclass(frozen=True, slots=True)
class CarrierCall:
    call_id: str
    account_id: str
    carrier: str
    direction: str
    state: str
    carrier_call_id: str | None = None
    request_id: str | None = None


def _not_configured(carrier: str) -> NotFound:
    return NotFound(f"No {carrier} config: create one with POST /api/telephony_configs/{carrier}.")


@guarded
class TelephonyStore:
    """Async repository of carrier configs and carrier calls over the store's engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    # ------------------------------------------------------------------ configs

    async def find_config(self, account_id: str, carrier: str) -> StoredConfig | None:
        async with self._sessions() as session:
            row = await session.get(TelephonyConfigRow, (account_id, carrier))
        return _config(row) if row is not None else None

    async def get_config(self, account_id: str, carrier: str) -> StoredConfig:
        """The account's config for `carrier`. Raises NotFound (with how to create one)."""
        found = await self.find_config(account_id, carrier)
        if found is None:
            raise _not_configured(carrier)
        return found

    async def create_config(self, account_id: str, carrier: str, config: dict[str, Any],
                            secret_names: tuple[str, ...]) -> StoredConfig:
        """Store a new config. Raises ApiError 409 when the account has one for this carrier."""
        now = datetime.now(UTC)
        settings, secrets = _split(config, secret_names)
        row = TelephonyConfigRow(account_id=account_id, carrier=carrier, settings=settings, secrets=secrets,
                                 created=now, updated=now)
        try:
            async with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError as exc:
            raise ApiError(f"There is a {carrier} config already: change it with PATCH "
                           f"/api/telephony_configs/{carrier}, or DELETE it first.", status_code=409) from exc
        return _config(row)

    async def replace_config(self, account_id: str, carrier: str, config: dict[str, Any],
                             secret_names: tuple[str, ...]) -> StoredConfig:
        """Overwrite an existing config (PATCH, once merged). Raises NotFound."""
        settings, secrets = _split(config, secret_names)
        async with self._sessions.begin() as session:
            row = await session.get(TelephonyConfigRow, (account_id, carrier))
            if row is None:
                raise _not_configured(carrier)
            row.settings, row.secrets, row.updated = settings, secrets, datetime.now(UTC)
        return _config(row)

    async def delete_config(self, account_id: str, carrier: str) -> None:
        """Raises NotFound when there is no such config."""
        async with self._sessions.begin() as session:
            result = await session.execute(delete(TelephonyConfigRow).where(
                TelephonyConfigRow.account_id == account_id, TelephonyConfigRow.carrier == carrier))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise _not_configured(carrier)

    # ------------------------------------------------------------------ carrier calls

    async def add_call(self, call: CarrierCall) -> None:
        async with self._sessions.begin() as session:
            session.add(CarrierCallRow(call_id=call.call_id, account_id=call.account_id, carrier=call.carrier,
                                       direction=call.direction, state=call.state, carrier_call_id=call.carrier_call_id,
                                       request_id=call.request_id, created=datetime.now(UTC)))

    async def get_call(self, call_id: str) -> CarrierCall | None:
        async with self._sessions() as session:
            row = await session.get(CarrierCallRow, call_id)
        return _call(row) if row is not None else None

    async def set_call(self, call_id: str, **values: Any) -> None:
        """Set fields of a carrier call (carrier_call_id, request_id, state)."""
        async with self._sessions.begin() as session:
            await session.execute(update(CarrierCallRow).where(CarrierCallRow.call_id == call_id).values(**values))

    async def move(self, call_id: str, to: str, *, from_: tuple[str, ...]) -> CarrierCall | None:
        """Move the call to state `to` if it is in one of `from_`; the call as it was, or None if it was not."""
        async with self._sessions.begin() as session:
            row = await session.scalar(select(CarrierCallRow).where(CarrierCallRow.call_id == call_id))
            if row is None or row.state not in from_:
                return None
            before = _call(row)
            result = await session.execute(update(CarrierCallRow).where(
                CarrierCallRow.call_id == call_id, CarrierCallRow.state == row.state).values(state=to))
            return before if result.rowcount == 1 else None  # type: ignore[attr-defined]


def _split(config: dict[str, Any], secret_names: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    settings = {k: v for k, v in config.items() if k not in secret_names}
    return settings, {k: v for k, v in config.items() if k in secret_names}


def _config(row: TelephonyConfigRow) -> StoredConfig:
    return StoredConfig(row.account_id, row.carrier, {**row.settings, **row.secrets}, row.created, row.updated)


def _call(row: CarrierCallRow) -> CarrierCall:
    return CarrierCall(call_id=row.call_id, account_id=row.account_id, carrier=row.carrier, direction=row.direction,
                       state=row.state, carrier_call_id=row.carrier_call_id, request_id=row.request_id)
