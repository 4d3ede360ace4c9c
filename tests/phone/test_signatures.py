"""Carrier signature checks against the carriers' own signing code: Twilio's RequestValidator, plivo's signature_v3, Ed25519.

Each scheme is checked with a good signature and with a bad one of every kind: another
secret, a changed parameter, a changed URL, missing headers, and for Telnyx a stale timestamp.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from plivo.utils.signature_v3 import (
    construct_get_url,
    construct_post_url,
    get_signature_v3,
)
from twilio.request_validator import RequestValidator

from tests.phone.conftest import TELNYX_KEY, TELNYX_PUBLIC
from voxcall.protocol.carrier_signatures import (
    SignatureError,
    SignedRequest,
    signing_carrier,
    verify,
)

TOKEN = "12345678901234567890123456789012"
URL = "https://voice.example.com/api/agents/5bd5a0e6-7b36-4f8a-9b0c-9a1f0c2ad111/telephony_xml"
TWILIO_PARAMS = {"CallSid": "CA1234567890ABCDE", "AccountSid": "AC0123", "From": "+15551234567", "To": "+15557654321",
                 "Caller": "+15551234567", "Digits": "1234"}
NOW = 1_767_000_000.0
FORM = "application/x-www-form-urlencoded"


def twilio_request(url: str, params: dict[str, str], signature: str, **headers: str) -> SignedRequest:
    return SignedRequest("POST", url, {"X-Twilio-Signature": signature, **headers}, urlencode(params).encode(), FORM)


def test_twilio_good_signature_passes() -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, TWILIO_PARAMS)
    request = twilio_request(URL, TWILIO_PARAMS, signature)
    assert signing_carrier(request) == "twilio"
    verify("twilio", request, TOKEN, now=NOW)


@pytest.mark.parametrize("change", ["token", "param", "extra param", "url", "scheme"])
def test_twilio_bad_signatures_fail(change: str) -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, TWILIO_PARAMS)
    params, url, token = dict(TWILIO_PARAMS), URL, TOKEN
    if change == "token":
        token = TOKEN[::-1]
    elif change == "param":
        params["From"] = "+15550000000"
    elif change == "extra param":
        params["Injected"] = "yes"
    elif change == "url":
        url = URL.replace("5bd5a0e6", "00000000")
    else:
        url = URL.replace("https://", "http://")
    with pytest.raises(SignatureError, match="does not match"):
        verify("twilio", twilio_request(url, params, signature), token, now=NOW)


def test_twilio_signs_with_or_without_the_default_port() -> None:
    with_port = URL.replace("voice.example.com", "voice.example.com:443")
    signature = RequestValidator(TOKEN).compute_signature(with_port, TWILIO_PARAMS)
    verify("twilio", twilio_request(URL, TWILIO_PARAMS, signature), TOKEN, now=NOW)
    signature = RequestValidator(TOKEN).compute_signature(URL, TWILIO_PARAMS)
    verify("twilio", twilio_request(with_port, TWILIO_PARAMS, signature), TOKEN, now=NOW)


def test_twilio_repeated_fields_and_query_strings() -> None:
    url = URL + "?tenant=blue&x=1"
    body = b"StatusCallbackEvent=ringing&StatusCallbackEvent=answered&CallSid=CA1"
    validator = RequestValidator(TOKEN)

    class Multi(dict):  # type: ignore[type-arg]  # the twilio validator reads repeated fields through getall
        def getall(self, key: str) -> list[str]:
            return list(self[key])

    signature = validator.compute_signature(url, Multi({"StatusCallbackEvent": ["ringing", "answered"], "CallSid": ["CA1"]}))
    verify("twilio", SignedRequest("POST", url, {"X-Twilio-Signature": signature}, body, FORM), TOKEN, now=NOW)


def test_twilio_json_bodies_are_covered_by_body_sha256() -> None:
    validator = RequestValidator(TOKEN)
    body = json.dumps({"CallSid": "CA1", "From": "+1555"})
    url = f"{URL}?bodySHA256={validator.compute_hash(body)}"
    signature = validator.compute_signature(url, {})
    request = SignedRequest("POST", url, {"X-Twilio-Signature": signature}, body.encode(), "application/json")
    verify("twilio", request, TOKEN, now=NOW)
    tampered = SignedRequest("POST", url, {"X-Twilio-Signature": signature}, body.replace("1555", "1666").encode(), "application/json")
    with pytest.raises(SignatureError, match="bodySHA256"):
        verify("twilio", tampered, TOKEN, now=NOW)


def test_twilio_unsigned_and_shared_key_requests_are_refused_with_a_reason() -> None:
    with pytest.raises(SignatureError, match="unsigned: the X-Twilio-Signature header is missing"):
        verify("twilio", SignedRequest("POST", URL, {}, b"", FORM), TOKEN, now=NOW)
    signature = RequestValidator(TOKEN).compute_signature(URL, TWILIO_PARAMS)
    shared = twilio_request(URL, TWILIO_PARAMS, signature,
                            **{"X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"})
    with pytest.raises(SignatureError, match="SharedKey"):
        verify("twilio", shared, TOKEN, now=NOW)


# ---------------------------------------------------------------------- Plivo V3

PLIVO_PARAMS = {"CallUUID": "a2c4-1111", "From": "14155551234", "To": "14155550000", "Direction": "inbound",
                "CallStatus": "ringing"}


def plivo_request(method: str, url: str, params: dict[str, str], token: str = TOKEN, nonce: str = "73528764572") -> SignedRequest:
    if method == "POST":
        base = construct_post_url(url, dict(params)).decode()
        body = urlencode(params).encode()
    else:
        base = construct_get_url(url, dict(params)).decode()
        body = b""
    signature = get_signature_v3(token.encode(), base, nonce.encode()).decode()
    headers = {"X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": nonce,
               "X-Plivo-Signature-V2": "not checked"}
    return SignedRequest(method, url, headers, body, FORM)


@pytest.mark.parametrize("url", [URL, URL + "?b=2&a=1&a=0", URL + "?only=query"])
def test_plivo_good_post_signatures_pass(url: str) -> None:
    request = plivo_request("POST", url, PLIVO_PARAMS)
    assert signing_carrier(request) == "plivo"
    verify("plivo", request, TOKEN, now=NOW)


def test_plivo_post_without_parameters_and_get_requests() -> None:
    verify("plivo", plivo_request("POST", URL + "?x=1", {}), TOKEN, now=NOW)
    verify("plivo", plivo_request("POST", URL, {}), TOKEN, now=NOW)
    verify("plivo", plivo_request("GET", URL + "?CallUUID=abc&From=1", {}), TOKEN, now=NOW)


def test_plivo_accepts_any_of_several_listed_signatures() -> None:
    good = plivo_request("POST", URL, PLIVO_PARAMS)
    listed = {**good.headers, "X-Plivo-Signature-V3": "bm9wZQ==, " + good.header("x-plivo-signature-v3")}
    verify("plivo", SignedRequest("POST", URL, listed, good.body, FORM), TOKEN, now=NOW)


@pytest.mark.parametrize("change", ["token", "param", "nonce", "url"])
def test_plivo_bad_signatures_fail(change: str) -> None:
    good = plivo_request("POST", URL, PLIVO_PARAMS)
    headers, body, url, token = dict(good.headers), good.body, URL, TOKEN
    if change == "token":
        token = "another-token"
    elif change == "param":
        body = urlencode({**PLIVO_PARAMS, "From": "19999999999"}).encode()
    elif change == "nonce":
        headers["X-Plivo-Signature-V3-Nonce"] = "1"
    else:
        url = URL + "?a=1"
    with pytest.raises(SignatureError, match="does not match"):
        verify("plivo", SignedRequest("POST", url, headers, body, FORM), token, now=NOW)


def test_plivo_unsigned_is_refused_with_a_reason() -> None:
    with pytest.raises(SignatureError, match="unsigned.*V3"):
        verify("plivo", SignedRequest("POST", URL, {"X-Plivo-Signature-V2": "x"}, b"", FORM), TOKEN, now=NOW)


# ---------------------------------------------------------------------- Telnyx Ed25519


def telnyx_request(body: bytes, *, at: float = NOW, key: Ed25519PrivateKey = TELNYX_KEY) -> SignedRequest:
    timestamp = str(int(at))
    signature = base64.b64encode(key.sign(timestamp.encode() + b"|" + body)).decode()
    return SignedRequest("POST", URL, {"telnyx-signature-ed25519": signature, "telnyx-timestamp": timestamp}, body, FORM)


BODY = urlencode({"AccountSid": "f5586561", "CallSid": "v3:9X2vxPDF", "From": "+35319605860", "To": "+13129457420"}).encode()


def test_telnyx_good_signature_passes() -> None:
    request = telnyx_request(BODY)
    assert signing_carrier(request) == "telnyx"
    verify("telnyx", request, TELNYX_PUBLIC, now=NOW + 10)


def test_telnyx_bad_signatures_fail() -> None:
    good = telnyx_request(BODY)
    with pytest.raises(SignatureError, match="does not match"):
        verify("telnyx", SignedRequest("POST", URL, good.headers, BODY + b"&X=1", FORM), TELNYX_PUBLIC, now=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify("telnyx", telnyx_request(BODY, key=Ed25519PrivateKey.generate()), TELNYX_PUBLIC, now=NOW)
    moved = {**good.headers, "telnyx-timestamp": str(int(NOW) + 1)}  # the timestamp is signed too
    with pytest.raises(SignatureError, match="does not match"):
        verify("telnyx", SignedRequest("POST", URL, moved, BODY, FORM), TELNYX_PUBLIC, now=NOW)


def test_telnyx_stale_unsigned_and_malformed_requests_are_refused() -> None:
    with pytest.raises(SignatureError, match="away from now"):
        verify("telnyx", telnyx_request(BODY, at=NOW - 301), TELNYX_PUBLIC, now=NOW)
    with pytest.raises(SignatureError, match="unsigned"):
        verify("telnyx", SignedRequest("POST", URL, {"telnyx-signature-ed25519": "x"}, BODY, FORM), TELNYX_PUBLIC, now=NOW)
    with pytest.raises(SignatureError, match="malformed"):
        verify("telnyx", SignedRequest("POST", URL, {"telnyx-signature-ed25519": "%%%", "telnyx-timestamp": "1"}, BODY, FORM),
               TELNYX_PUBLIC, now=NOW)


def test_a_request_without_any_signature_has_no_carrier() -> None:
    assert signing_carrier(SignedRequest("POST", URL, {"Content-Type": FORM}, BODY, FORM)) is None
