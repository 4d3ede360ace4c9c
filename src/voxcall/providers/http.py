"""What the OpenAI-compatible clients share: one endpoint root with its auth and client, and the
one place where httpx failures become `ProviderError` (STYLE.md rule 2)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from voxcall.errors import ProviderError

__all__ = ["Endpoint", "map_errors"]


class Endpoint:
    """The URL root, the bearer header and the (possibly owned) `httpx.AsyncClient` of a remote server."""

    def __init__(self, base_url: str, api_key: str | None, client: httpx.AsyncClient | None, timeout: float) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient()
        self._timeout = httpx.Timeout(timeout)

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            await self._client.aclose()


@contextmanager
def map_errors(what: str) -> Iterator[None]:
    """Turn httpx failures into `ProviderError`: retryable for 429, 5xx and transport errors."""
    try:
        yield
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        raise ProviderError(
            f"{what} server answered {status}: {exc.response.text[:500]}", retryable=status >= 500 or status == 429
        ) from exc
    except httpx.TransportError as exc:
        raise ProviderError(f"{what} server unreachable: {exc!r}", retryable=True) from exc
    except httpx.HTTPError as exc:
        raise ProviderError(f"{what} request failed: {exc!r}") from exc
