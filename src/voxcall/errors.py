"""The single exception tree of voxcall.

::

    VoxcallError
    ├── ProtocolError            a malformed or unexpected realtime message (pure layers raise this)
    ├── ApiError(status_code, detail)
    │   ├── Unauthorized         401: missing or bad API key
    │   ├── NotFound             404: unknown id (or another account's)
    │   ├── InvalidRequest       422: a body or state the server refuses
    │   ├── RateLimited          429, with `retry_after` (seconds) from the Retry-After header
    │   └── StorageUnavailable   503, with `retry_after`: PostgreSQL or Redis briefly unreachable
    ├── ConnectionClosed(code, reason)   the realtime socket closed
    ├── ProviderError(retryable) a model back end failed
    │   └── ModelIntegrityError  assembled weights do not match their SHA-256
    └── ToolError                a tool failed; its text goes back to the model
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "ConnectionClosed",
    "InvalidRequest",
    "ModelIntegrityError",
    "NotFound",
    "ProtocolError",
    "ProviderError",
    "RateLimited",
    "StorageUnavailable",
    "ToolError",
    "Unauthorized",
    "VoxcallError",
]


class VoxcallError(Exception):
    """Base class of every error voxcall raises on purpose."""


class ProtocolError(VoxcallError):
    """A realtime message could not be parsed or is not allowed here."""


class ApiError(VoxcallError):
    """An HTTP API error, with the status code and the human-readable detail."""

    status_code: int = 400

    def __init__(self, detail: object, status_code: int | None = None) -> None:
        super().__init__(detail if isinstance(detail, str) else repr(detail))
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code


class Unauthorized(ApiError):
    status_code = 401


class NotFound(ApiError):
    status_code = 404


class InvalidRequest(ApiError):
    status_code = 422


class RateLimited(ApiError):
    """Too many requests. `retry_after` is how many seconds to wait before trying again, when known."""

    status_code = 429

    def __init__(self, detail: object, status_code: int | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(detail, status_code)
        self.retry_after = retry_after


class StorageUnavailable(ApiError):
    """The database or Redis cannot be reached now (connection refused, cut or timed out): try again shortly.

    Raised at the store and cluster boundaries in place of the driver's connection errors, so the
    REST layer answers 503 with `Retry-After` and a live call's recorder knows a retry may succeed.
    """

    status_code = 503

    def __init__(self, service: str, *, retry_after: float = 5.0) -> None:
        super().__init__(f"{service} is unreachable right now; this request was not carried out. "
                         f"Try again in {retry_after:g} seconds; live calls go on meanwhile.")
        self.service = service
        self.retry_after = retry_after


class ConnectionClosed(VoxcallError):
    """The realtime connection closed; `code` is the WebSocket close code."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"connection closed with code {code}: {reason}".rstrip(": "))
        self.code = code
        self.reason = reason


class ProviderError(VoxcallError):
    """A model back end failed. `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class ModelIntegrityError(ProviderError):
    """Model weights assembled from package parts do not match the pinned SHA-256."""


class ToolError(VoxcallError):
    """A tool invocation failed; the message is what the model is told."""
