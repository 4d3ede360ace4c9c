"""Log redaction for the server process: join tokens in URLs never reach a log line.

uvicorn logs every WebSocket handshake with its query string, which holds the join
token (`?token=...`). `RedactSecrets` rewrites such values, and `uvicorn_log_config()`
is uvicorn's own logging configuration with that filter on every handler.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

__all__ = ["RedactSecrets", "redact", "uvicorn_log_config"]

_SECRET_PARAMS = re.compile(r"((?:^|[?&\s])(?:token|api_key|apiKey|key)=)[^&\s\"']+")


def redact(text: str) -> str:
    """`text` with the values of token-like URL query parameters replaced by `[redacted]`."""
    return _SECRET_PARAMS.sub(r"\1[redacted]", text) if "=" in text else text


class RedactSecrets(logging.Filter):
    """Redacts join tokens and keys in a record's message and string arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration, with `RedactSecrets` on each handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {"()": RedactSecrets}
    for handler in config["handlers"].values():
        handler["filters"] = [*handler.get("filters", []), "redact"]
    return config
