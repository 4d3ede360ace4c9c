"""A real Redis for the cluster tests: VOXCALL_TEST_REDIS_URL, or one started by scripts/redis.sh."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.conftest import ROOT


def service_url(variable: str, script: str) -> str:
    """The URL in `variable`, else the last line of `script` (which installs and starts the service)."""
    url = os.environ.get(variable)
    if not url:
        done = subprocess.run(["bash", str(ROOT / "scripts" / script)], check=False, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"scripts/{script} failed:\n{done.stderr[-3000:]}"
        url = done.stdout.strip().splitlines()[-1]
        os.environ[variable] = url
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return service_url("VOXCALL_TEST_REDIS_URL", "redis.sh")


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()
