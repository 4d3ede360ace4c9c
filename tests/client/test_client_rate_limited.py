"""`RateLimited.retry_after` from the Retry-After header, in both of its forms (RFC 9110 10.2.3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from voxcall.client.rest import Client
from voxcall.errors import RateLimited


async def rate_limited(headers: dict[str, str]) -> RateLimited:
    transport = httpx.MockTransport(lambda r: httpx.Response(429, json={"detail": "Slow down."}, headers=headers))
    async with Client("key.123", "http://127.0.0.1:9/api", transport=transport) as client:
        with pytest.raises(RateLimited) as info:
            await client.calls.create({})
    assert info.value.status_code == 429 and info.value.detail == "Slow down."
    return info.value


async def test_delay_seconds() -> None:
    assert (await rate_limited({"Retry-After": "7"})).retry_after == 7.0


async def test_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= ((await rate_limited({"Retry-After": when})).retry_after or 0) <= 30
    past = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    assert (await rate_limited({"Retry-After": past})).retry_after == 0.0


@pytest.mark.parametrize("headers", [{}, {"Retry-After": "soon"}, {"Retry-After": "-3"}])
async def test_absent_or_unreadable_is_none(headers: dict[str, str]) -> None:
    assert (await rate_limited(headers)).retry_after is None
