"""REST input hygiene and limits, in process (create_app over httpx.ASGITransport; the LLM is never called)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from voxcall.config import Settings
from voxcall.providers.fake import ScriptedLLM
from voxcall.server.app import build_services, create_app
from voxcall.server.services import Services
from voxcall.store.records import CallRecord


@asynccontextmanager
async def rest(tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    svc = await build_services(Settings(data_dir=tmp_path / "data", speech=False, **settings), llm=ScriptedLLM([]), speech=None)
    key, _ = await svc.store.create_api_key()
    transport = httpx.ASGITransport(app=create_app(services=svc))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api", headers={"X-API-Key": key}) as client:
            yield client, svc
    finally:
        await svc.close()


def raw(body: str) -> dict[str, Any]:
    """Request arguments for a body sent exactly as written (escapes such as \\ud800 included)."""
    return {"content": body.encode(), "headers": {"Content-Type": "application/json"}}


async def total(client: httpx.AsyncClient) -> int:
    r = await client.get("/calls")
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


def only_problem(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    [problem] = r.json()["detail"]
    return problem  # type: ignore[no-any-return]


# ------------------------------------------------------- unencodable text (1)


@pytest.mark.parametrize(("body", "loc", "words"), [
    ('{"systemPrompt": "\\ud800"}', ["body", "systemPrompt"], "systemPrompt contains a lone surrogate (U+D800)"),
    ('{"initialMessages": [{"role": "MESSAGE_ROLE_USER", "text": "ok"}, {"text": "a\\udc00"}]}',
     ["body", "initialMessages", 1, "text"], "initialMessages.1.text contains a lone surrogate (U+DC00)"),
    ('{"metadata": {"\\ud83d": "x"}}', ["body", "metadata"], "metadata has a key that contains a lone surrogate"),
    ('{"systemPrompt": "nul \\u0000"}', ["body", "systemPrompt"], "NUL character"),
])
async def test_unencodable_text_is_refused_with_422_naming_the_field(tmp_path: Path, body: str, loc: list[Any], words: str) -> None:
    async with rest(tmp_path) as (client, _):
        problem = only_problem(await client.post("/calls", **raw(body)))
        assert problem["loc"] == loc and words in problem["msg"]
        assert await total(client) == 0  # nothing was stored, and the account still lists fine
        ok = await client.post("/calls", **raw('{"systemPrompt": "caf\\u00e9 \\ud83d\\ude00"}'))
        assert ok.status_code == 201 and ok.json()["systemPrompt"] == "caf\u00e9 \U0001f600"


async def test_a_stored_lone_surrogate_no_longer_breaks_the_account(tmp_path: Path) -> None:
    async with rest(tmp_path) as (client, svc):
        account = (await client.get("/accounts/me")).json()["accountId"]
        call_id = str(uuid.uuid4())  # a row written before input was checked
        await svc.store.create_call(CallRecord(call_id, account, datetime.now(UTC), {"systemPrompt": "bad \ud800 text"}))
        listed = await client.get("/calls")
        assert listed.status_code == 200 and listed.json()["results"][0]["systemPrompt"] == "bad \ufffd text"
        assert (await client.get(f"/calls/{call_id}")).status_code == 200


# ------------------------------------------------------------ size limits (3)


async def test_request_bodies_over_the_size_limit_get_413(tmp_path: Path) -> None:
    async with rest(tmp_path) as (client, _):  # the default limit: 2 MiB
        r = await client.post("/calls", json={"systemPrompt": "x" * (3 * 1024 * 1024)})
        assert r.status_code == 413 and "VOXCALL_MAX_REQUEST_BYTES" in r.json()["detail"]
    async with rest(tmp_path / "small", max_request_bytes=1000) as (client, _):
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"systemPrompt": "' + b"x" * 600 + b'"'
            yield b', "voice": null}' + b" " * 600

        streamed = await client.post("/calls", content=chunks(), headers={"Content-Type": "application/json"})  # no Content-Length
        assert streamed.status_code == 413 and "at most 1000 bytes" in streamed.json()["detail"]
        assert await total(client) == 0


async def test_field_limits_get_422_naming_the_field_and_the_setting(tmp_path: Path) -> None:
    limits = {"max_system_prompt_chars": 50, "max_initial_messages": 3, "max_initial_messages_bytes": 400, "max_metadata_bytes": 64}
    async with rest(tmp_path, **limits) as (client, _):
        problem = only_problem(await client.post("/calls", json={"systemPrompt": "p" * 51}))
        assert problem["loc"] == ["body", "systemPrompt"]
        assert problem["msg"] == "systemPrompt is 51 characters long; the limit is 50 (VOXCALL_MAX_SYSTEM_PROMPT_CHARS)"
        message = {"role": "MESSAGE_ROLE_USER", "text": "hi"}
        problem = only_problem(await client.post("/calls", json={"initialMessages": [message] * 4}))
        assert problem["loc"] == ["body", "initialMessages"] and "VOXCALL_MAX_INITIAL_MESSAGES)" in problem["msg"]
        problem = only_problem(await client.post("/calls", json={"initialMessages": [{"text": "t" * 200}] * 2}))
        assert "bytes of JSON; the limit is 400 (VOXCALL_MAX_INITIAL_MESSAGES_BYTES)" in problem["msg"]
        problem = only_problem(await client.post("/calls", json={"metadata": {"k": "v" * 64}}))
        assert problem["loc"] == ["body", "metadata"] and "VOXCALL_MAX_METADATA_BYTES" in problem["msg"]
        assert await total(client) == 0
        fits = await client.post("/calls", json={"systemPrompt": "p" * 50, "initialMessages": [message] * 3, "metadata": {"k": "v"}})
        assert fits.status_code == 201


async def test_agent_calls_have_the_same_field_limits(tmp_path: Path) -> None:
    async with rest(tmp_path, max_initial_messages=2) as (client, _):
        agent = (await client.post("/agents", json={"name": "limits", "callTemplate": {"systemPrompt": "Hi."}})).json()
        messages = [{"role": "MESSAGE_ROLE_USER", "text": "hi"}] * 3
        problem = only_problem(await client.post(f"/agents/{agent['agentId']}/calls", json={"initialMessages": messages}))
        assert problem["loc"] == ["body", "initialMessages"] and "VOXCALL_MAX_INITIAL_MESSAGES" in problem["msg"]
        assert (await client.post(f"/agents/{agent['agentId']}/calls", json={"initialMessages": messages[:2]})).status_code == 201


async def test_send_data_message_has_the_socket_limit(tmp_path: Path) -> None:
    async with rest(tmp_path) as (client, _):
        call_id = (await client.post("/calls", json={})).json()["callId"]
        big = {"type": "user_text_message", "text": "x" * (1024 * 1024)}
        r = await client.post(f"/calls/{call_id}/send_data_message", json=big)
        assert r.status_code == 413 and "at most 65536 bytes" in r.json()["detail"]
        assert "realtime socket" in r.json()["detail"]
        small = await client.post(f"/calls/{call_id}/send_data_message", json={"type": "user_text_message", "text": "x"})
        assert small.status_code == 422 and "not active" in small.json()["detail"]  # under the limit: the usual checks


async def test_initial_messages_are_stored_in_one_batch(tmp_path: Path) -> None:
    async with rest(tmp_path, max_initial_messages=5000, max_initial_messages_bytes=10 * 1024 * 1024) as (client, svc):
        inserts: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.lstrip().upper().startswith("INSERT INTO CALL_MESSAGES"):
                inserts.append(statement)

        event.listen(svc.store.engine.sync_engine, "before_cursor_execute", count)
        messages = [{"role": "MESSAGE_ROLE_USER" if i % 2 == 0 else "MESSAGE_ROLE_AGENT", "text": f"m{i}"} for i in range(4000)]
        r = await client.post("/calls", json={"initialMessages": messages})
        assert r.status_code == 201
        assert 1 <= len(inserts) <= 10  # one statement per batch, not 4,000 round trips
        page = (await client.get(f"/calls/{r.json()['callId']}/messages", params={"pageSize": 1000})).json()
        assert page["total"] == 4000
        assert [(m["callStageMessageIndex"], m["text"]) for m in page["results"][:3]] == [(0, "m0"), (1, "m1"), (2, "m2")]


# --------------------------------------------------------- nesting depth (6)


@pytest.mark.parametrize("depth", [65, 100_000])
async def test_deeply_nested_bodies_get_422(tmp_path: Path, depth: int) -> None:
    async with rest(tmp_path) as (client, _):
        body = '{"metadata": {"k": "v"}, "initialState": ' + "[" * depth + "]" * depth + "}"
        problem = only_problem(await client.post("/calls", **raw(body)))
        assert problem["loc"] == ["body"] and problem["msg"] == "The body is nested more than 64 levels deep"
        assert await total(client) == 0


# ----------------------------------------------------- non-finite numbers (7)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e309"])
async def test_non_finite_numbers_get_422_and_every_reply_is_strict_json(tmp_path: Path, number: str) -> None:
    async with rest(tmp_path) as (client, _):
        r = await client.post("/calls", **raw('{"temperature": %s}' % number))
        problem = only_problem(r)
        assert problem["loc"] == ["body", "temperature"] and f"must be a finite number, not {number}" in problem["msg"]
        json.loads(r.text, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
        nested = await client.post("/calls", **raw('{"initialState": {"a": [%s]}}' % number))
        assert only_problem(nested)["loc"] == ["body", "initialState", "a", 0]


async def test_bodies_that_are_not_json_still_get_fastapis_422(tmp_path: Path) -> None:
    async with rest(tmp_path) as (client, _):
        r = await client.post("/calls", **raw('{"systemPrompt": '))
        assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
