"""`Client`: the REST API of voxcall (and of hosted Ultravox) over `httpx.AsyncClient`.

Responses come back as the server's JSON (plain dicts and lists). Errors are
translated in one place, `Client.request` (STYLE.md rule 2):

- an HTTP error status becomes an `ApiError` subclass carrying the server's
  `detail` (400/422 `InvalidRequest`, 401/403 `Unauthorized`, 404 `NotFound`,
  429 `RateLimited`, anything else `ApiError` with its `status_code`); a
  `RateLimited` carries the `Retry-After` header as `retry_after` (seconds);
- a transport failure (refused connection, DNS, timeout, broken TLS) becomes a
  plain `ApiError` with `status_code == 0`, meaning "no HTTP response at all";
  the httpx exception is chained as `__cause__`.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib import metadata
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from voxcall.errors import ApiError, InvalidRequest, NotFound, RateLimited, Unauthorized
from voxcall.protocol.rest import MessageListMode, StartCallRequest

__all__ = ["DEFAULT_BASE_URL", "Accounts", "Calls", "Client", "Models", "Voices"]

DEFAULT_BASE_URL = "https://api.ultravox.ai/api"
_MAX_PAGES = 10_000  # a guard against a server that hands back the same cursor forever

_ERRORS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    422: InvalidRequest,
    429: RateLimited,
}


def _user_agent() -> str:
    try:
        version = metadata.version("voxcall")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        version = "0"
    return f"voxcall-python/{version}"


def _error_from(response: httpx.Response) -> ApiError:
    """The `ApiError` for an error response; DRF-style `{"detail": ...}` is unwrapped."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text or response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    kind = _ERRORS.get(response.status_code, ApiError)
    if kind is RateLimited:
        return RateLimited(detail, status_code=response.status_code, retry_after=_retry_after(response))
    return kind(detail, status_code=response.status_code)


def _retry_after(response: httpx.Response) -> float | None:
    """The `Retry-After` header in seconds (delay-seconds or an HTTP date), None if absent or unreadable."""
    value = (response.headers.get("retry-after") or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _cursor_of(next_url: str) -> str | None:
    """The `cursor` query value of a page's `next` URL."""
    values = parse_qs(urlsplit(next_url).query).get("cursor")
    return values[0] if values else None


async def _every(fetch: Callable[[str | None], Awaitable[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The `results` of every page `fetch(cursor)` returns, from the first, following `next` cursors to the end."""
    results: list[dict[str, Any]] = []
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(_MAX_PAGES):
        page = await fetch(cursor)
        results.extend(page.get("results") or [])
        next_url = page.get("next")
        cursor = _cursor_of(next_url) if next_url else None
        if cursor is None or cursor in seen:
            return results
        seen.add(cursor)
    return results


def _params(**values: Any) -> dict[str, Any]:
    """Query parameters with None left out and booleans spelled the JSON way."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


class Client:
    """Async REST client. Use it as `async with Client(key, base_url) as client: ...`.

    Args:
        api_key: sent as the `X-API-Key` header.
        base_url: the API root including `/api`, e.g. `http://127.0.0.1:8000/api`.
        timeout: seconds for each request (connect, read, write and pool).
        transport: an httpx transport to use instead of the network
            (`httpx.MockTransport`, `httpx.ASGITransport` in tests).
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 30,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers={"X-API-Key": api_key, "User-Agent": _user_agent(), "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )
        self.calls = Calls(self)
        self.models = Models(self)
        self.voices = Voices(self)
        self.accounts = Accounts(self)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None) -> Any:
        """Send one request and return the decoded JSON body (None for an empty body such as 204).

        `path` is relative to `base_url` ("calls/abc"); an absolute URL is used as is.

        Raises:
            ApiError: an error status (the subclass says which) or, with
                `status_code == 0`, no response at all.
        """
        try:
            response = await self._http.request(method, path.lstrip("/"), params=params, json=json)
        except httpx.TransportError as exc:
            raise ApiError(f"{method} {self.base_url}/{path.lstrip('/')} failed: {exc!r}", status_code=0) from exc
        if response.is_error:
            raise _error_from(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(
                f"the server sent a non-JSON body ({response.headers.get('content-type')})",
                status_code=response.status_code,
            ) from exc


class Calls:
    """`/calls` endpoints."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def create(
        self,
        body: dict[str, Any] | StartCallRequest,
        *,
        enable_greeting_prompt: bool | None = None,
        prior_call_id: str | None = None,
    ) -> dict[str, Any]:
        """POST /calls; returns the created Call, whose `joinUrl` is what `RealtimeClient.connect` takes."""
        payload = body.wire() if isinstance(body, StartCallRequest) else body
        params = _params(enableGreetingPrompt=enable_greeting_prompt, priorCallId=prior_call_id)
        result: dict[str, Any] = await self._client.request("POST", "calls", params=params, json=payload)
        return result

    async def list(self, page_size: int | None = None, cursor: str | None = None) -> dict[str, Any]:
        """GET /calls: one page `{next, previous, results, total}`, newest first."""
        page: dict[str, Any] = await self._client.request(
            "GET", "calls", params=_params(pageSize=page_size, cursor=cursor)
        )
        return page

    async def get(self, call_id: str) -> dict[str, Any]:
        """GET /calls/{id}."""
        call: dict[str, Any] = await self._client.request("GET", f"calls/{call_id}")
        return call

    async def delete(self, call_id: str) -> None:
        """DELETE /calls/{id} (ends the call if it is live)."""
        await self._client.request("DELETE", f"calls/{call_id}")

    async def messages(
        self, call_id: str, page_size: int | None = None, cursor: str | None = None, *, mode: MessageListMode | None = None
    ) -> dict[str, Any]:
        """GET /calls/{id}/messages: one page of the call's history.

        `mode`: `last_stage` (the server's default) lists the messages of the call's last stage,
        its initial ones too; `in_call` every stage's, without the initial ones.
        """
        page: dict[str, Any] = await self._client.request(
            "GET", f"calls/{call_id}/messages", params=_params(pageSize=page_size, cursor=cursor, mode=mode)
        )
        return page

    async def all_messages(
        self, call_id: str, page_size: int | None = None, *, mode: MessageListMode | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Every message of a call (of its last stage, or with `mode="in_call"` of every stage), following `next` cursors to the end."""
        return await _every(lambda cursor: self.messages(call_id, page_size=page_size, cursor=cursor, mode=mode))

    async def tools(self, call_id: str) -> builtins.list[dict[str, Any]]:
        """GET /calls/{id}/tools: a bare array of CallTool (the tools of the call's last stage)."""
        tools: builtins.list[dict[str, Any]] = await self._client.request("GET", f"calls/{call_id}/tools")
        return tools

    async def stages(self, call_id: str, page_size: int | None = None, cursor: str | None = None) -> dict[str, Any]:
        """GET /calls/{id}/stages: one page of the call's CallStages, first stage first."""
        page: dict[str, Any] = await self._client.request(
            "GET", f"calls/{call_id}/stages", params=_params(pageSize=page_size, cursor=cursor)
        )
        return page

    async def all_stages(self, call_id: str, page_size: int | None = None) -> builtins.list[dict[str, Any]]:
        """Every stage of a call, following `next` cursors to the end."""
        return await _every(lambda cursor: self.stages(call_id, page_size=page_size, cursor=cursor))

    async def stage(self, call_id: str, call_stage_id: str) -> dict[str, Any]:
        """GET /calls/{id}/stages/{stageId}: one CallStage."""
        stage: dict[str, Any] = await self._client.request("GET", f"calls/{call_id}/stages/{call_stage_id}")
        return stage

    async def stage_messages(
        self, call_id: str, call_stage_id: str, page_size: int | None = None, cursor: str | None = None
    ) -> dict[str, Any]:
        """GET /calls/{id}/stages/{stageId}/messages: one page of the stage's messages, its initial ones first."""
        page: dict[str, Any] = await self._client.request(
            "GET", f"calls/{call_id}/stages/{call_stage_id}/messages", params=_params(pageSize=page_size, cursor=cursor)
        )
        return page

    async def all_stage_messages(
        self, call_id: str, call_stage_id: str, page_size: int | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Every message of one stage, following `next` cursors to the end."""
        return await _every(
            lambda cursor: self.stage_messages(call_id, call_stage_id, page_size=page_size, cursor=cursor)
        )

    async def stage_tools(self, call_id: str, call_stage_id: str) -> builtins.list[dict[str, Any]]:
        """GET /calls/{id}/stages/{stageId}/tools: a bare array of the stage's CallTools."""
        tools: builtins.list[dict[str, Any]] = await self._client.request(
            "GET", f"calls/{call_id}/stages/{call_stage_id}/tools"
        )
        return tools

    async def send_data_message(self, call_id: str, message: dict[str, Any]) -> None:
        """POST /calls/{id}/send_data_message (hang_up, user_text_message, forced_agent_message)."""
        await self._client.request("POST", f"calls/{call_id}/send_data_message", json=message)


class Models:
    """`/models`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def list(self) -> dict[str, Any]:
        """GET /models: a page of `{name}`."""
        page: dict[str, Any] = await self._client.request("GET", "models")
        return page


class Voices:
    """`/voices`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def list(self) -> dict[str, Any]:
        """GET /voices: a page of Voice."""
        page: dict[str, Any] = await self._client.request("GET", "voices")
        return page


class Accounts:
    """`/accounts`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def me(self) -> dict[str, Any]:
        """GET /accounts/me."""
        account: dict[str, Any] = await self._client.request("GET", "accounts/me")
        return account
