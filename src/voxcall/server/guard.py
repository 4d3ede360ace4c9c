"""The HTTP edge's input guard and strict JSON output.

`BodyGuard` is a plain ASGI middleware in front of every route. It reads a request
body up to the size limit (413 beyond it), and checks a JSON body with
`protocol.hygiene.loads_strict` (422 for nesting too deep, non-finite numbers, lone
surrogates and NUL characters, with the field named) and, for POST /api/calls, the size
limits on its fields. A body that is not JSON at all goes on to FastAPI, which explains
that in its own words. Nothing refused here reaches a handler, so nothing refused is stored.

`StrictJSONResponse` writes strict JSON: no NaN or Infinity, and text that can be encoded.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.responses import JSONResponse

from voxcall.protocol.hygiene import BodyLimits, UnsafeJSON, call_body_problems, loads_strict

__all__ = ["BodyGuard", "StrictJSONResponse"]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_DATA_MESSAGE = re.compile(r"^/api/calls/[^/]+/send_data_message/?$")
_CALLS = re.compile(r"^/api/(?:calls|agents/[^/]+/calls)/?$")  # bodies that start a call
_SURROGATES = re.compile("[\ud800-\udfff]")


class StrictJSONResponse(JSONResponse):
    """JSON with `allow_nan=False`; a lone surrogate already in stored data is written as U+FFFD."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            logger.warning("a response held text that is not valid Unicode; wrote U+FFFD in its place")
            return _SURROGATES.sub("\ufffd", text).encode("utf-8")


class _TooLarge(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BodyGuard:
    """Size and hygiene checks on HTTP request bodies (see the module docstring)."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, what = self._limit(scope["path"])
        try:
            body = await _read_body(scope, receive, limit, what)
        except _TooLarge as exc:
            await _reply(send, 413, {"detail": exc.detail})
            return
        problems = self._problems(scope, body)
        if problems:
            await _reply(send, 422, {"detail": problems})
            return
        await self.app(scope, _replay(body, receive), send)

    def _limit(self, path: str) -> tuple[int, str]:
        if _DATA_MESSAGE.match(path):
            limit = min(self.limits.max_request_bytes, self.limits.max_data_message_bytes)
            return limit, f"A data message may be at most {limit} bytes, as on the realtime socket (VOXCALL_MAX_DATA_MESSAGE_BYTES)."
        limit = self.limits.max_request_bytes
        return limit, f"A request body may be at most {limit} bytes (VOXCALL_MAX_REQUEST_BYTES)."

    def _problems(self, scope: Scope, body: bytes) -> list[dict[str, Any]]:
        if not body or not _is_json(scope):
            return []
        try:
            data = loads_strict(body, max_depth=self.limits.max_depth)
        except UnsafeJSON as exc:
            if exc.syntax:
                return []  # FastAPI reports JSON syntax errors itself
            return [_problem(list(exc.loc), exc.describe("The body"))]
        if scope["method"] == "POST" and _CALLS.match(scope["path"]):
            return [_problem([name], f"{name} {message}") for name, message in call_body_problems(data, self.limits)]
        return []


def _problem(loc: list[str | int], message: str) -> dict[str, Any]:
    return {"loc": ["body", *loc], "msg": message, "type": "value_error"}


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            kind = value.split(b";")[0].strip().lower()
            return bool(kind.endswith((b"/json", b"+json")))
    return True  # FastAPI parses a body without a content type as JSON


async def _read_body(scope: Scope, receive: Receive, limit: int, what: str) -> bytes:
    for name, value in scope.get("headers", []):
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise _TooLarge(f"The body is {int(value)} bytes. {what}")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge(f"The body is over {limit} bytes. {what}")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _reply(send: Send, status: int, content: dict[str, Any]) -> None:
    body = StrictJSONResponse(content).body
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
