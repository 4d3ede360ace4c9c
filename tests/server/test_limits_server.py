"""The limits on a real `voxcall serve` process with its default settings (the shared `server` fixture).

Each test works in its own account or client address, so the other tests' budgets are untouched.
"""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from tests.conftest import RunningServer


def new_key(server: RunningServer, account: str) -> str:
    command = [sys.executable, "-m", "voxcall", "keys", "create", "--account", account, "--data-dir", str(server.data_dir)]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]


def test_an_account_gets_exactly_its_allowed_concurrent_calls(server: RunningServer) -> None:
    with httpx.Client(base_url=server.api, headers={"X-API-Key": new_key(server, "crowd")}, timeout=30) as api:
        allowed = api.get("/accounts/me").json()["allowedConcurrentCalls"]
        assert isinstance(allowed, int) and allowed > 0
        created: list[str] = []
        for _ in range(allowed * 3):  # bounded: creation-rate refusals are waited out as Retry-After says
            r = api.post("/calls", json={})
            if r.status_code == 201:
                created.append(r.json()["callId"])
                continue
            assert r.status_code == 429 and r.headers["Retry-After"].isdigit(), r.text
            if "allowedConcurrentCalls" in r.json()["detail"]:
                break
            assert "Too many calls created" in r.json()["detail"]
            time.sleep(int(r.headers["Retry-After"]))
        assert len(created) == allowed
        assert 1 <= int(r.headers["Retry-After"]) <= 5
        assert api.get("/accounts/me").json()["activeCalls"] == allowed
        assert api.delete(f"/calls/{created[0]}").status_code == 204
        assert api.post("/calls", json={}).status_code == 201


def test_bad_keys_from_one_address_are_throttled(server: RunningServer) -> None:
    # The server trusts X-Forwarded-For from 127.0.0.1 (uvicorn's proxy headers), as behind a local proxy.
    guesser = {"X-Forwarded-For": "203.0.113.77"}
    wrong = {**guesser, "X-API-Key": "zyxwvuts." + "1" * 32}
    statuses = []
    for _ in range(100):
        r = httpx.get(f"{server.api}/calls", headers=wrong, timeout=30)
        statuses.append(r.status_code)
        if r.status_code != 401:
            break
    assert statuses[-1] == 429 and set(statuses[:-1]) == {401} and len(statuses) > 1, statuses
    assert r.headers["Retry-After"].isdigit() and "invalid API keys" in r.json()["detail"]
    assert httpx.get(f"{server.api}/calls", headers={**guesser, **server.headers()}, timeout=30).status_code == 429
    assert httpx.get(f"{server.api}/calls", headers=server.headers(), timeout=30).status_code == 200
