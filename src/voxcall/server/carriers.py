"""The carriers' REST APIs, as far as phone calls need them: place a call, hang it up, redirect it (Twilio).

Base URLs are operator settings (`VOXCALL_TWILIO_API_URL`, `VOXCALL_TELNYX_API_URL`,
`VOXCALL_PLIVO_API_URL`), so the client that reaches them is a plain httpx client, not the
SSRF-checked one of `voxcall.outbound`: the operator chose these hosts (a test points them
at 127.0.0.1), no user of the API can. Every failure, from an unreachable host to a
refusal, becomes one `CarrierError` whose `detail` quotes the carrier's own message.

Requests (the carriers' documentation):
- Twilio (basic auth AccountSid:AuthToken, form fields):
  `POST /2010-04-01/Accounts/{AccountSid}/Calls.json` with To, From, Twiml;
  `POST .../Calls/{CallSid}.json` with `Status=completed` (hang up) or `Twiml` (redirect).
- Telnyx TeXML (Bearer API key): `POST /v2/texml/Accounts/{AccountSid}/Calls` (JSON: ApplicationSid,
  To, From, Url); `POST /v2/texml/Accounts/{AccountSid}/Calls/{CallSid}` with `Status=completed`.
- Plivo (basic auth AuthId:AuthToken, JSON): `POST /v1/Account/{AuthId}/Call/` with from, to,
  answer_url; `DELETE /v1/Account/{AuthId}/Call/{CallUUID}/`, or `.../Request/{request_uuid}/` while it rings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from voxcall.config import Settings

__all__ = ["CALL_ID_FIELDS", "CARRIER_NAMES", "CarrierApi", "CarrierError", "Placed", "carrier_params"]

CARRIER_NAMES = {"twilio": "Twilio", "telnyx": "Telnyx", "plivo": "Plivo"}
CALL_ID_FIELDS = {"twilio": "CallSid", "telnyx": "CallSid", "plivo": "CallUUID"}
"""The form field that names the carrier's call in the requests it makes to voxcall (voice webhook, answer URL)."""
_MAX_DETAIL = 500


class CarrierError(Exception):
    """A carrier request that failed: refused (`status` set) or never answered (`status` None)."""

    def __init__(self, carrier: str, detail: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(detail)
        self.carrier = carrier
        self.detail = detail
        self.status = status
        self.body = body

    def extras(self) -> dict[str, Any]:
        """JSON details for a call event."""
        return {"carrier": self.carrier, "status": self.status, "response": self.body}


@dataclass(frozen=True, slots=True)
class Placed:
    """A call the carrier accepted: its call id, or (Plivo) the id of the request while it rings."""

    carrier_call_id: str | None = None
    request_id: str | None = None
    response: dict[str, Any] = field(default_factory=dict)


def carrier_params(carrier: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """`additionalParams` in the spelling the carrier's API uses.

    The documented example (`statusCallback`) is camelCase while Twilio and Telnyx name the
    field `StatusCallback` and Plivo `status_callback`; so keys are re-cased: the first letter
    upper-cased for Twilio and Telnyx, camelCase to snake_case for Plivo. Keys already in the
    carrier's spelling stay as they are.
    """
    if carrier == "plivo":
        return {re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", k).lower(): v for k, v in params.items()}
    return {k[:1].upper() + k[1:]: v for k, v in params.items()}


def _form(values: Mapping[str, Any]) -> dict[str, str | list[str]]:
    """Form fields: a list repeats the field, booleans are true/false, objects go as JSON."""
    def one(item: Any) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        return json.dumps(item) if isinstance(item, (dict, list)) else str(item)

    fields: dict[str, str | list[str]] = {}
    for key, value in values.items():
        if isinstance(value, list):
            fields[key] = [one(item) for item in value if item is not None]
        elif value is not None:
            fields[key] = one(value)
    return fields


def _segment(value: str) -> str:
    """One path segment: "/", "?", "#" and the like escaped; ":" and "@" kept (Telnyx call ids are "v3:...")."""
    return quote(value, safe=":@")


def _detail(body: Any, text: str) -> str:
    """The carrier's own error message: Twilio `message` (+ `code`), Telnyx `errors[].detail`, Plivo `error`."""
    if isinstance(body, dict):
        if isinstance(body.get("errors"), list):
            parts = [str(e.get("detail") or e.get("title") or e) for e in body["errors"] if isinstance(e, dict)]
            if parts:
                return "; ".join(parts)[:_MAX_DETAIL]
        message = body.get("message") or body.get("error") or body.get("detail")
        if message:
            code = body.get("code")
            return (f"{message} (code {code})" if code else str(message))[:_MAX_DETAIL]
    return (text.strip() or "no details given")[:_MAX_DETAIL]


class CarrierApi:
    """The three carriers' REST APIs over one httpx client (owned by the caller)."""

    def __init__(self, client: httpx.AsyncClient, *, twilio: str, telnyx: str, plivo: str) -> None:
        self._client = client
        self._base = {"twilio": twilio.rstrip("/"), "telnyx": telnyx.rstrip("/"), "plivo": plivo.rstrip("/")}

    @classmethod
    def from_settings(cls, settings: Settings, client: httpx.AsyncClient | None = None) -> CarrierApi:
        client = client or httpx.AsyncClient(timeout=settings.carrier_timeout, follow_redirects=False)
        return cls(client, twilio=settings.twilio_api_url, telnyx=settings.telnyx_api_url, plivo=settings.plivo_api_url)

    async def aclose(self) -> None:
        await self._client.aclose()

    # ------------------------------------------------------------------ calls

    async def place(self, carrier: str, config: Mapping[str, Any], *, to: str, from_: str, stream_xml: str,
                    answer_url: str, extra: Mapping[str, Any]) -> Placed:
        """Ask the carrier to dial `to` from `from_`; the callee's side runs `stream_xml` (Twilio, inline) or
        fetches it from `answer_url` (Telnyx, Plivo). Raises CarrierError."""
        params = carrier_params(carrier, extra)
        if carrier == "twilio":
            url = f"{self._twilio_calls(config)}.json"
            body = await self._request("twilio", "POST", url, config, data={"To": to, "From": from_, "Twiml": stream_xml, **params})
            return Placed(carrier_call_id=_text(body.get("sid")), response=body)
        if carrier == "telnyx":
            url = f"{self._base['telnyx']}/v2/texml/Accounts/{_segment(config['accountSid'])}/Calls"
            payload = {"ApplicationSid": config["applicationSid"], "To": to, "From": from_, "Url": answer_url,
                       "UrlMethod": "POST", **params}
            body = await self._request("telnyx", "POST", url, config, json_body=payload)
            data: dict[str, Any] = body["data"] if isinstance(body.get("data"), dict) else body
            return Placed(carrier_call_id=_text(data.get("call_sid") or data.get("sid")), response=body)
        url = f"{self._base['plivo']}/v1/Account/{_segment(config['authId'])}/Call/"
        payload = {"from": from_, "to": to, "answer_url": answer_url, "answer_method": "POST", **params}
        body = await self._request("plivo", "POST", url, config, json_body=payload)
        request_id = body.get("request_uuid")
        return Placed(request_id=_text(request_id[0] if isinstance(request_id, list) and request_id else request_id),
                      response=body)

    async def hang_up(self, carrier: str, config: Mapping[str, Any], *, call_id: str | None,
                      request_id: str | None = None) -> None:
        """End the carrier's call (`call_id`), or for Plivo the call still ringing (`request_id`). Raises CarrierError."""
        if carrier == "twilio" and call_id:
            await self._request("twilio", "POST", f"{self._twilio_calls(config)}/{_segment(call_id)}.json", config,
                                data={"Status": "completed"})
        elif carrier == "telnyx" and call_id:
            url = f"{self._base['telnyx']}/v2/texml/Accounts/{_segment(config['accountSid'])}/Calls/{_segment(call_id)}"
            await self._request("telnyx", "POST", url, config, data={"Status": "completed"})
        elif carrier == "plivo" and (call_id or request_id):
            kind, ident = ("Call", call_id) if call_id else ("Request", request_id)
            url = f"{self._base['plivo']}/v1/Account/{_segment(config['authId'])}/{kind}/{_segment(ident or '')}/"
            await self._request("plivo", "DELETE", url, config)

    async def redirect(self, config: Mapping[str, Any], call_sid: str, twiml: str) -> None:
        """Twilio: replace the live call's instructions with `twiml` (cold transfer). Raises CarrierError."""
        await self._request("twilio", "POST", f"{self._twilio_calls(config)}/{_segment(call_sid)}.json", config,
                            data={"Twiml": twiml})

    # ------------------------------------------------------------------ plumbing

    def _twilio_calls(self, config: Mapping[str, Any]) -> str:
        return f"{self._base['twilio']}/2010-04-01/Accounts/{_segment(config['accountSid'])}/Calls"

    async def _request(self, carrier: str, method: str, url: str, config: Mapping[str, Any], *,
                       data: Mapping[str, Any] | None = None, json_body: Any = None) -> dict[str, Any]:
        name = CARRIER_NAMES[carrier]
        auth, headers = _credentials(carrier, config)
        try:
            response = await self._client.request(method, url, auth=auth, headers=headers,
                                                  data=_form(data) if data is not None else None,
                                                  json=json_body)
        except httpx.HTTPError as exc:
            raise CarrierError(carrier, f"could not reach {name} at {url.split('?')[0]}: "
                                        f"{type(exc).__name__}: {exc or 'no answer'}") from exc
        try:
            body: Any = response.json() if response.content else {}
        except ValueError:
            body = None
        if response.status_code >= 300:
            raise CarrierError(carrier, f"{name} answered {response.status_code}: {_detail(body, response.text)}",
                               status=response.status_code, body=body if body is not None else response.text[:_MAX_DETAIL])
        return body if isinstance(body, dict) else {}


def _credentials(carrier: str, config: Mapping[str, Any]) -> tuple[httpx.BasicAuth | None, dict[str, str]]:
    if carrier == "twilio":
        return httpx.BasicAuth(config["accountSid"], config["authToken"]), {}
    if carrier == "plivo":
        return httpx.BasicAuth(config["authId"], config["authToken"]), {}
    return None, {"Authorization": f"Bearer {config['apiKey']}", "Accept": "application/json"}


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
