"""The model host's errors, answered in OpenAI's error shape: `{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

from typing import Any

__all__ = ["HostError", "error_body"]

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
          413: "invalid_request_error", 503: "server_error"}


class HostError(Exception):
    """A request the model host refuses or cannot serve; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


def error_body(status: int, message: str, *, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """The JSON body OpenAI clients parse for `status`."""
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
