"""Verifying that a webhook really comes from the carrier: Twilio, Telnyx and Plivo signatures.

- Twilio (`X-Twilio-Signature`): base64 HMAC-SHA1, keyed with the account's Auth Token, of
  the full URL Twilio requested followed by every POST parameter, sorted by name, as
  name+value (www.twilio.com/docs/usage/webhooks/webhooks-security). Twilio signs some URLs
  with and some without the default port, so both are tried (as its own RequestValidator
  does). A JSON body is covered by the `bodySHA256` query parameter instead.
- Telnyx (`telnyx-signature-ed25519`, `telnyx-timestamp`): base64 Ed25519 signature of
  `timestamp|raw body`, checked with the account's public key; the timestamp must be within
  `TELNYX_TOLERANCE` seconds of now, so an old request cannot be replayed.
- Plivo V3 (`X-Plivo-Signature-V3`, `X-Plivo-Signature-V3-Nonce`): base64 HMAC-SHA256, keyed
  with the Auth Token, of `URL.nonce`, where URL is the request URL with its query sorted,
  then (for a POST) `.` and the sorted parameters as name+value (plivo-python
  `utils/signature_v3.py`). The header may list several signatures, comma-separated.

Pure: a `SignedRequest` in, `None` or a `SignatureError` out. Ed25519 comes from the
`cryptography` package (server extra), imported when a Telnyx request is checked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit, urlunsplit

__all__ = [
    "SIGNATURE_HEADERS",
    "TELNYX_TOLERANCE",
    "SignatureError",
    "SignedRequest",
    "signing_carrier",
    "verify",
    "verify_plivo",
    "verify_telnyx",
    "verify_twilio",
]

SIGNATURE_HEADERS = {"twilio": "x-twilio-signature", "telnyx": "telnyx-signature-ed25519", "plivo": "x-plivo-signature-v3"}
TELNYX_TOLERANCE = 300.0
"""Seconds a Telnyx timestamp may be away from now (the Telnyx SDKs' default)."""


class SignatureError(ValueError):
    """The request is not signed, or not signed by the credentials it should be; the message says which."""


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A webhook request as the carrier sent it: the URL it requested, headers (any case), the raw body."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes = b""
    content_type: str = "application/x-www-form-urlencoded"
    _lower: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._lower.update({k.lower(): v for k, v in self.headers.items()})

    def header(self, name: str) -> str | None:
        return self._lower.get(name.lower())

    def form(self) -> list[tuple[str, str]]:
        """The POST parameters of a form body (none for other bodies)."""
        if self.method.upper() != "POST" or "json" in self.content_type.lower():
            return []
        return parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True)


def signing_carrier(request: SignedRequest) -> str | None:
    """Which carrier's signature header the request carries, if any."""
    return next((carrier for carrier, name in SIGNATURE_HEADERS.items() if request.header(name)), None)


def verify(carrier: str, request: SignedRequest, secret: str, *, now: float) -> None:
    """Check `request` against `carrier`'s scheme; `secret` is the Auth Token (Twilio, Plivo) or public key (Telnyx).

    Raises:
        SignatureError: unsigned, malformed, stale (Telnyx) or not matching.
    """
    if carrier == "twilio":
        verify_twilio(request, secret)
    elif carrier == "telnyx":
        verify_telnyx(request, secret, now=now)
    elif carrier == "plivo":
        verify_plivo(request, secret)
    else:
        raise SignatureError(f"no signature scheme for carrier {carrier!r}")


def _b64_hmac(key: str, message: str, digest: Any) -> str:
    return base64.b64encode(hmac.new(key.encode(), message.encode(), digest).digest()).decode()


# ---------------------------------------------------------------------- Twilio


def _port_variants(url: str) -> list[str]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        return [url, urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0]))]
    default = 443 if parts.scheme == "https" else 80
    return [url, urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}"))] if host else [url]


def verify_twilio(request: SignedRequest, auth_token: str) -> None:
    signature = request.header("x-twilio-signature")
    if not signature:
        raise SignatureError("unsigned: the X-Twilio-Signature header is missing")
    settings = request.header("x-twilio-webhooks-signature-settings") or ""
    if "algorithm=" in settings and "algorithm=hmac_sha1" not in settings.lower().replace(" ", ""):
        raise SignatureError("signed with a Twilio SharedKey (" + settings + "); voxcall checks signatures made "
                             "with the Auth Token (HMAC-SHA1) only")
    params: list[tuple[str, str]] = request.form()
    expected_hash = parse_qs(urlsplit(request.url).query).get("bodySHA256")
    if expected_hash:
        actual = hashlib.sha256(request.body).hexdigest()
        if not hmac.compare_digest(actual, expected_hash[0]):
            raise SignatureError("the body does not match the bodySHA256 that Twilio signed")
        params = []
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    suffix = "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    for url in _port_variants(request.url):
        if hmac.compare_digest(_b64_hmac(auth_token, url + suffix, hashlib.sha1), signature.strip()):
            return
    raise SignatureError("the X-Twilio-Signature does not match: check the authToken of your Twilio config, and "
                         "that the webhook URL in Twilio is exactly this server's public URL (VOXCALL_PUBLIC_URL)")


# ---------------------------------------------------------------------- Telnyx


def verify_telnyx(request: SignedRequest, public_key: str, *, now: float, tolerance: float = TELNYX_TOLERANCE) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    signature, timestamp = request.header("telnyx-signature-ed25519"), request.header("telnyx-timestamp")
    if not signature or not timestamp:
        raise SignatureError("unsigned: the telnyx-signature-ed25519 and telnyx-timestamp headers are both needed")
    try:
        sent = float(timestamp.strip())
        raw_signature = base64.b64decode(signature.strip(), validate=True)
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.strip(), validate=True))
    except (ValueError, binascii.Error) as exc:
        raise SignatureError(f"malformed Telnyx signature, timestamp or public key: {exc}") from None
    try:
        key.verify(raw_signature, timestamp.strip().encode() + b"|" + request.body)
    except InvalidSignature:
        raise SignatureError("the telnyx-signature-ed25519 does not match: check the publicKey of your Telnyx config") from None
    if abs(now - sent) > tolerance:
        raise SignatureError(f"the telnyx-timestamp is {abs(now - sent):.0f} s away from now (more than "
                             f"{tolerance:.0f} s): a replayed request, or a server clock that is off")


# ---------------------------------------------------------------------- Plivo


def _sorted_query(values: Mapping[str, list[str]]) -> str:
    return "&".join("&".join(f"{key}={value}" for value in sorted(values[key])) for key in sorted(values))


def _sorted_params(values: Mapping[str, Any]) -> str:
    parts = []
    for key in sorted(values):
        value = values[key]
        if isinstance(value, list):
            parts.append("".join(f"{key}{item}" for item in sorted(str(v) for v in value)))
        elif isinstance(value, dict):
            parts.append(f"{key}{_sorted_params(value)}")
        else:
            parts.append(f"{key}{value}")
    return "".join(parts)


def _plivo_base(request: SignedRequest) -> str:
    parts = urlsplit(request.url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    query = _sorted_query(parse_qs(parts.query, keep_blank_values=True))
    if request.method.upper() != "POST":
        return f"{base}?{query}" if query else base
    params: dict[str, Any] = {}
    if "json" in request.content_type.lower():
        try:
            loaded = json.loads(request.body or b"{}")
        except ValueError:
            loaded = {}
        params = loaded if isinstance(loaded, dict) else {}
    else:
        for name, value in request.form():
            params.setdefault(name, []).append(value)
    if params:
        base += f"?{query}" + ("." if query else "")
    elif query:
        base += f"?{query}"
    return base + _sorted_params(params)


def verify_plivo(request: SignedRequest, auth_token: str) -> None:
    signatures, nonce = request.header("x-plivo-signature-v3"), request.header("x-plivo-signature-v3-nonce")
    if not signatures or not nonce:
        raise SignatureError("unsigned: the X-Plivo-Signature-V3 and X-Plivo-Signature-V3-Nonce headers are both "
                             "needed (voxcall checks Plivo's V3 signatures)")
    expected = _b64_hmac(auth_token, f"{_plivo_base(request)}.{nonce}", hashlib.sha256)
    if not any(hmac.compare_digest(expected, given.strip()) for given in signatures.split(",")):
        raise SignatureError("the X-Plivo-Signature-V3 does not match: check the authToken of your Plivo config, and "
                             "that the answer URL in Plivo is exactly this server's public URL (VOXCALL_PUBLIC_URL)")
