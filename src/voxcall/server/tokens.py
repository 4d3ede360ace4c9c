"""Signed join tokens: bound to one call, expiring after joinTimeout.

Single use is enforced by the store (`mark_joined` succeeds once), so a token
works once even across server processes that share the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["JoinTokens"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class JoinTokens:
    """Mints and checks `callId.expiry.signature` tokens with one server secret."""

    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def mint(self, call_id: str, expires_at: float) -> str:
        payload = f"{call_id}.{int(expires_at)}"
        return f"{int(expires_at)}.{self._sign(payload)}"

    def check(self, call_id: str, token: str | None, now: float) -> str | None:
        """Return None when the token is good, else a reason a person can act on."""
        if not token:
            return "missing join token"
        expiry, _, signature = token.partition(".")
        if not expiry.isdigit() or not signature:
            return "malformed join token"
        if not hmac.compare_digest(signature, self._sign(f"{call_id}.{expiry}")):
            return "invalid join token"
        if now > int(expiry):
            return "join token expired"
        return None

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest()[:24])
