"""Call-scoped log records: the call id on every line logged while a call is hosted, text and JSON."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from voxcall.server.logs import TEXT_FORMAT, CallIdFilter, JsonFormatter, call_context, current_call_id


@pytest.fixture()
def lines() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    text, structured = io.StringIO(), io.StringIO()
    handlers = []
    for stream, formatter in ((text, logging.Formatter(TEXT_FORMAT)), (structured, JsonFormatter())):
        handler = logging.StreamHandler(stream)
        handler.addFilter(CallIdFilter())
        handler.setFormatter(formatter)
        handlers.append(handler)
    log = logging.getLogger("voxcall.test_logs")
    log.setLevel(logging.INFO)
    for handler in handlers:
        log.addHandler(handler)
    yield text, structured
    for handler in handlers:
        log.removeHandler(handler)


async def test_records_in_a_call_context_and_its_tasks_carry_the_call_id(lines: tuple[io.StringIO, io.StringIO]) -> None:
    text, structured = lines
    log = logging.getLogger("voxcall.test_logs")
    log.info("before any call")
    with call_context("c-123"):
        assert current_call_id() == "c-123"
        log.info("in the host")
        await asyncio.create_task(asyncio.to_thread(log.info, "in a worker thread of a task"))
    log.info("after %s", "it")
    logging.LoggerAdapter(log, {"call_id": "c-engine"}).warning("from the engine's adapter")
    assert current_call_id() is None
    assert text.getvalue().splitlines()[0].endswith("voxcall.test_logs: before any call")
    assert " voxcall.test_logs [call c-123]: in the host" in text.getvalue()
    entries = [json.loads(line) for line in structured.getvalue().splitlines()]
    assert [(e["message"], e["call_id"]) for e in entries] == [
        ("before any call", None), ("in the host", "c-123"), ("in a worker thread of a task", "c-123"),
        ("after it", None), ("from the engine's adapter", "c-engine")]
    assert entries[-1]["level"] == "WARNING" and entries[-1]["logger"] == "voxcall.test_logs"


def test_json_lines_carry_the_traceback(lines: tuple[io.StringIO, io.StringIO]) -> None:
    _, structured = lines
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("voxcall.test_logs").exception("failed")
    entry = json.loads(structured.getvalue().splitlines()[-1])
    assert entry["message"] == "failed" and "ValueError: boom" in entry["exc_info"]


def test_secrets_in_urls_are_redacted() -> None:
    from voxcall.server.logs import SecretFilter, redact

    assert redact('"WebSocket /calls/c1/server_web_socket?token=abc.def&clientVersion=1" [accepted]') == (
        '"WebSocket /calls/c1/server_web_socket?token=…&clientVersion=1" [accepted]')
    assert redact("GET /calls/c1/telephony/abc.def HTTP/1.1") == "GET /calls/c1/telephony/… HTTP/1.1"
    assert redact("POST /calls/c1/telephony_xml/abc.def HTTP/1.1") == "POST /calls/c1/telephony_xml/… HTTP/1.1"
    assert redact("POST /api/agents/a1/telephony_xml HTTP/1.1") == "POST /api/agents/a1/telephony_xml HTTP/1.1"
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s"', ("127.0.0.1", "GET", "/x?token=s3cret"), None)
    SecretFilter().filter(record)
    assert "s3cret" not in record.getMessage()


def test_the_server_log_never_holds_a_join_token(server: object) -> None:
    """uvicorn logs every WebSocket handshake with its path: the token must not reach the log."""
    import httpx
    from websockets.sync.client import connect

    from tests.conftest import RunningServer

    assert isinstance(server, RunningServer)
    call = httpx.post(f"{server.api}/calls", headers=server.headers(), timeout=30,
                      json={"initialOutputMedium": "MESSAGE_MEDIUM_TEXT", "firstSpeakerSettings": {"user": {}}}).json()
    token = call["joinUrl"].split("token=")[1]
    with connect(call["joinUrl"], open_timeout=10) as ws:
        ws.recv(timeout=10)
    httpx.delete(f"{server.api}/calls/{call['callId']}", headers=server.headers(), timeout=30)
    log = server.log.read_text()
    assert f"/calls/{call['callId']}/server_web_socket?token=…" in log  # the handshake was logged, redacted
    assert token not in log
