"""Call events and recordings over REST, against a real `voxcall serve` process on loopback."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RunningServer
from voxcall.config import Settings
from voxcall.protocol.rest import first_stage_id
from voxcall.server.rest import NO_RECORDING
from voxcall.store import open_store
from voxcall.store.recordings import RecordingStore

WAV = b"RIFF\x2c\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80>\x00\x00\x00}\x00\x00\x02\x00\x10\x00data\x08\x00\x00\x00" + bytes(8)
EMPTY_PAGE = {"next": None, "previous": None, "results": [], "total": 0}


@pytest.fixture()
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api, headers=server.headers(), timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def other_account(server: RunningServer) -> dict[str, str]:
    """Headers of a second account on the same server."""
    key = subprocess.run(
        [sys.executable, "-m", "voxcall", "keys", "create", "--account", "events-other", "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]
    return {"X-API-Key": key}


def new_call(api: httpx.Client, **body: object) -> str:
    r = api.post("/calls", json={"systemPrompt": "Events test.", **body})
    assert r.status_code == 201
    return str(r.json()["callId"])


def recordings(server: RunningServer) -> RecordingStore:
    return RecordingStore(server.data_dir / "recordings")


# -------------------------------------------------------------------- events


def test_events_of_a_new_call_are_an_empty_page(api: httpx.Client) -> None:
    call_id = new_call(api)
    r = api.get(f"/calls/{call_id}/events")
    assert r.status_code == 200 and r.json() == EMPTY_PAGE
    filtered = api.get(f"/calls/{call_id}/events", params={"minimum_severity": "debug", "type": "x", "pageSize": 5})
    assert filtered.status_code == 200 and filtered.json() == EMPTY_PAGE


def test_events_not_found_and_bad_queries(api: httpx.Client, other_account: dict[str, str], server: RunningServer) -> None:
    for missing in (str(uuid.uuid4()), "not-a-uuid"):
        r = api.get(f"/calls/{missing}/events")
        assert r.status_code == 404 and r.json() == {"detail": "Not found."}
    call_id = new_call(api)
    assert httpx.get(f"{server.api}/calls/{call_id}/events", headers=other_account).status_code == 404
    assert httpx.get(f"{server.api}/calls/{call_id}/events").status_code == 401
    assert api.get(f"/calls/{call_id}/events", params={"minimum_severity": "fatal"}).status_code == 422
    for size in (0, -3, 10**30):  # any integer the document allows: below 1 the default page, above 1000 a page of 1000
        assert api.get(f"/calls/{call_id}/events", params={"pageSize": size}).status_code == 200
    assert api.get(f"/calls/{call_id}/events", params={"cursor": "garbage"}).status_code == 422


async def test_events_filter_and_paginate(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.api, headers=server.headers(), timeout=30) as api:
        call_id = (await api.post("/calls", json={"systemPrompt": "Events test."})).json()["callId"]
        # Write through a second Store on the server's own database, as the engine does in-process.
        store = await open_store(Settings(data_dir=server.data_dir).resolved_database_url())
        try:
            for i, severity in enumerate(["debug", "info", "warning", "error", "info"]):
                await store.add_event(call_id, type=f"t{i % 2}", text=f"e{i}", severity=severity,
                                      call_timestamp=i + 0.5, extras={"i": i} if i == 2 else None)
        finally:
            await store.close()

        page = (await api.get(f"/calls/{call_id}/events")).json()
        assert page["total"] == 4 and [e["text"] for e in page["results"]] == ["e1", "e2", "e3", "e4"]
        event = page["results"][1]
        assert event == {"callId": call_id, "callStageId": first_stage_id(call_id), "callTimestamp": "2.5s", "severity": "warning",
                         "type": "t0", "text": "e2", "extras": {"i": 2}, "wallClockTimestamp": event["wallClockTimestamp"]}
        assert str(uuid.UUID(event["callStageId"])) == event["callStageId"], "the call's one stage has a UUID"
        assert event["wallClockTimestamp"].endswith("Z")

        warnings = (await api.get(f"/calls/{call_id}/events", params={"minimum_severity": "warning"})).json()
        assert [e["severity"] for e in warnings["results"]] == ["warning", "error"] and warnings["total"] == 2
        typed = (await api.get(f"/calls/{call_id}/events", params={"type": "t0", "minimum_severity": "debug"})).json()
        assert [e["text"] for e in typed["results"]] == ["e0", "e2", "e4"]

        first = (await api.get(f"/calls/{call_id}/events", params={"minimum_severity": "debug", "pageSize": 2})).json()
        assert first["total"] == 5 and first["previous"] is None and "minimum_severity=debug" in first["next"]
        texts = [e["text"] for e in first["results"]]
        link = first["next"]
        while link:
            page = (await api.get(link)).json()
            texts += [e["text"] for e in page["results"]]
            link = page["next"]
        assert texts == ["e0", "e1", "e2", "e3", "e4"]


# ---------------------------------------------------------------- recordings


def test_recording_not_found(api: httpx.Client, other_account: dict[str, str], server: RunningServer) -> None:
    call_id = new_call(api)
    r = api.get(f"/calls/{call_id}/recording")
    assert r.status_code == 404 and r.json() == {"detail": NO_RECORDING}
    assert NO_RECORDING == "No recording: recordingEnabled was false for this call, or it has not ended yet."
    for missing in (str(uuid.uuid4()), "not-a-uuid"):
        r = api.get(f"/calls/{missing}/recording")
        assert r.status_code == 404 and r.json() == {"detail": "Not found."}
    recordings(server).save(call_id, WAV)  # another account never sees it, even when it exists
    r = httpx.get(f"{server.api}/calls/{call_id}/recording", headers=other_account)
    assert r.status_code == 404 and r.json() == {"detail": "Not found."}
    assert httpx.get(f"{server.api}/calls/{call_id}/recording").status_code == 401


def test_recording_is_served_and_deleted_with_the_call(api: httpx.Client, server: RunningServer) -> None:
    call_id = new_call(api, recordingEnabled=True)
    path = server.data_dir / "recordings" / f"{call_id}.wav"
    recordings(server).save(call_id, WAV)
    assert path.read_bytes() == WAV

    r = api.get(f"/calls/{call_id}/recording")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav" and r.content == WAV
    assert api.get(f"/calls/{call_id.upper()}/recording").content == WAV

    assert api.delete(f"/calls/{call_id}").status_code == 204
    assert not path.exists()
    assert api.get(f"/calls/{call_id}/recording").status_code == 404
