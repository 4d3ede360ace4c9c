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
