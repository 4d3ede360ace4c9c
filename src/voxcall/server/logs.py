"""Call-scoped log records: every line logged while a call is hosted carries its call id.

The host runs each call inside `call_context(call_id)`; the tasks it starts
inherit the context, so records from the engine, the providers and the store
get `record.call_id` too. `CallIdFilter` (installed on a handler by the CLI)
fills `call_id` (None outside a call) and `call_tag` (" [call <id>]" or "")
on every record; `JsonFormatter` writes one JSON object a line.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime

__all__ = ["TEXT_FORMAT", "CallIdFilter", "JsonFormatter", "SecretFilter", "call_context", "configure_logging",
           "current_call_id", "redact"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(call_tag)s: %(message)s"

_call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("voxcall_call_id", default=None)


def current_call_id() -> str | None:
    """The id of the call whose host is running the current task, if any."""
    return _call_id.get()


@contextlib.contextmanager
def call_context(call_id: str) -> Iterator[None]:
    """Tag every record logged in this context (and in tasks started from it) with `call_id`."""
    token = _call_id.set(call_id)
    try:
        yield
    finally:
        _call_id.reset(token)


class CallIdFilter(logging.Filter):
    """Adds `call_id` and `call_tag` to every record; an explicit `extra={"call_id": ...}` wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        call_id = getattr(record, "call_id", None) or _call_id.get()
        record.call_id = call_id
        record.call_tag = f" [call {call_id}]" if call_id else ""
        return True


_SECRETS = re.compile(r"(?P<key>[?&](?:token|api_key|apiKey|key)=)[^&\s\"']+|(?P<path>/telephony(?:_xml)?/)[^/?\s\"']+")


def redact(text: str) -> str:
    """Join tokens (query `token=`, a telephony join path, a carrier's answer URL) and key parameters replaced by `…`."""
    return _SECRETS.sub(lambda m: (m.group("key") or m.group("path")) + "…", text)


class SecretFilter(logging.Filter):
    """Redacts secrets that URLs carry from a record's message and string arguments.

    uvicorn logs each request and WebSocket handshake with its full path, and a join URL's token is
    a credential for that call (single use, but valid until joined).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, call_id (and exc_info when present)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "call_id": getattr(record, "call_id", None),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    """Root handler for `voxcall serve`: text (with `[call <id>]`) or JSON lines. Only the CLI calls this."""
    handler = logging.StreamHandler()
    handler.addFilter(CallIdFilter())
    handler.addFilter(SecretFilter())
    for name in ("uvicorn.access", "uvicorn.error"):  # they keep their own handlers
        logging.getLogger(name).addFilter(SecretFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
