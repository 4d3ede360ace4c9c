"""HTTP ("server") tools: one request per invocation, through an injected `httpx.AsyncClient`.

PROTOCOL.md 1.9.4: `{name}` placeholders in baseUrlPattern are path parameters; query,
header and body parameters come from dynamic, static and automatic parameters (body ones
form a JSON object); credentials resolved from authTokens are added. The answer's body is
the result the model sees, and three headers steer the call:
`X-Ultravox-Response-Type` (`hang-up`, `new-stage`), `X-Ultravox-Agent-Reaction`
(`speaks`, `listens`, `speaks-once`) and `X-Ultravox-Update-Call-State` (a JSON object).

Whatever the backend does, the call goes on within the tool's timeout: a non-2xx status,
a timeout, a refused target (see `voxcall.outbound`), an answer over `max_bytes` or a body
that is not text becomes a failure text for the model plus errorDetails.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any
from urllib.parse import quote

import httpx

from voxcall.engine.spec import HttpSpec, ToolDef
from voxcall.engine.tool_params import (
    MissingArguments,
    ToolContext,
    ToolInputs,
    assemble,
    text_value,
)
from voxcall.engine.tools import ToolOutcome, control_for, failure
from voxcall.providers.base import ToolCall

__all__ = ["MAX_RESPONSE_BYTES", "HttpToolExecutor", "build_url"]

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 100_000
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_REACTIONS = ("speaks", "listens", "speaks-once")
_SNIPPET = 300


class _TooLarge(Exception):
    pass


class HttpToolExecutor:
    """Runs HTTP tools with one shared, pooled client (give it `voxcall.outbound.safe_client`)."""

    def __init__(self, client: httpx.AsyncClient, *, max_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self._client = client
        self._max_bytes = max_bytes

    async def execute(self, tool: ToolDef, call: ToolCall, context: ToolContext) -> ToolOutcome:
        if tool.http is None:
            return failure(call, "The tool {name} is unavailable.", "not an HTTP tool", tool)
        try:
            inputs = assemble(tool, call.arguments, context)
            url = build_url(tool.http.url_pattern, inputs.path)
        except MissingArguments as exc:
            return failure(call, "The tool {name} needs " + ", ".join(exc.names) + ".", str(exc), tool)
        except ValueError as exc:
            return failure(call, "The tool {name} is misconfigured.", str(exc), tool)
        try:
            async with asyncio.timeout(tool.timeout):
                status, headers, body = await self._send(tool.http, url, inputs, tool.timeout)
        except TimeoutError:
            return failure(call, "The tool {name} did not answer in time.", f"timed out after {tool.timeout:g}s", tool)
        except _TooLarge:
            return failure(call, "The tool {name} answered with too much data.",
                           f"response body larger than {self._max_bytes} bytes", tool)
        except httpx.HTTPError as exc:  # refused target (OutboundRefused), connect error, bad redirect, ...
            return failure(call, "The tool {name} is unavailable.", f"{type(exc).__name__}: {exc}", tool)
        except (httpx.InvalidURL, ValueError) as exc:  # e.g. a header value that is not ASCII
            return failure(call, "The tool {name} could not be called with these values.", f"{type(exc).__name__}: {exc}", tool)
        return _interpret(tool, call, status, headers, body)

    async def _send(self, http: HttpSpec, url: str, inputs: ToolInputs, timeout: float) -> tuple[int, httpx.Headers, bytes]:
        headers = {name: text_value(v) for name, v in inputs.header.items()}
        headers.update(http.auth_headers)
        params: list[tuple[str, str | int | float | bool | None]] = [(name, text_value(v)) for name, v in inputs.query.items()]
        params += http.auth_query
        body = inputs.body if inputs.body else None
        request = self._client.build_request(http.method, url, params=params, headers=headers, json=body, timeout=timeout)
        response = await self._client.send(request, stream=True, follow_redirects=True)
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max_bytes:
                    raise _TooLarge
                chunks.append(chunk)
        finally:
            await response.aclose()
        return response.status_code, response.headers, b"".join(chunks)


def build_url(pattern: str, path: dict[str, Any]) -> str:
    """baseUrlPattern with every `{name}` replaced by its (percent-encoded) path parameter.

    Raises:
        ValueError: a placeholder without a value.
    """
    missing = [name for name in _PLACEHOLDER.findall(pattern) if name not in path]
    if missing:
        raise ValueError("baseUrlPattern has placeholders without a path parameter: " + ", ".join(missing))
    return _PLACEHOLDER.sub(lambda m: quote(text_value(path[m.group(1)]), safe=""), pattern)


def _interpret(tool: ToolDef, call: ToolCall, status: int, headers: httpx.Headers, body: bytes) -> ToolOutcome:
    if not 200 <= status < 300:
        snippet = body[:_SNIPPET].decode("utf-8", "replace")
        return failure(call, "The tool {name} failed.", f"HTTP {status}: {snippet}", tool)
    text = _text(body, headers)
    if text is None:
        kind = headers.get("content-type", "unknown content type")
        return failure(call, "The tool {name} answered with something that is not text.",
                       f"response body is not text ({kind}, {len(body)} bytes)", tool)
    notes: list[str] = []
    reaction = tool.default_reaction
    wanted = headers.get("x-ultravox-agent-reaction", "").strip().lower()
    if wanted in _REACTIONS:
        reaction = wanted
    elif wanted:
        notes.append(f"ignored X-Ultravox-Agent-Reaction {wanted!r}: use speaks, listens or speaks-once")
    state = None
    if "x-ultravox-update-call-state" in headers:
        state = _state(headers["x-ultravox-update-call-state"])
        if state is None:
            notes.append("ignored X-Ultravox-Update-Call-State: it is not a JSON object")
    control, more = control_for(headers.get("x-ultravox-response-type"), text)
    return ToolOutcome(text, reaction=reaction, control=control, update_call_state=state, notes=(*notes, *more))


def _text(body: bytes, headers: httpx.Headers) -> str | None:
    """The body as text, or None when it is not text (undecodable, or with NUL bytes)."""
    charset = "utf-8"
    match = re.search(r"charset=([\w.-]+)", headers.get("content-type", ""), re.IGNORECASE)
    if match:
        charset = match.group(1)
    try:
        text = body.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return None
    return None if "\x00" in text else text


def _state(raw: str) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
