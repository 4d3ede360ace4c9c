"""The phone built-in tools: `leaveVoicemail`, `coldTransfer` and `playDtmfSounds` (Ultravox docs, tools/built-in-tools).

Both are public durable tools (listed by `GET /api/tools?ownership=public`), selected by
`toolName` like `hangUp`.
- `leaveVoicemail`: the model gives `message`; the agent says it and the call ends
  (`agent_hangup`); overridable `result` (what the history records) and `strict`.
- `coldTransfer`: the required override `target` (a phone number or a SIP URI), optional
  `from` (caller id), `username` / `password` (SIP) and `extraHeaders` (SIP X-headers).
  With Twilio (a call voxcall placed or answered, with the account's Twilio config) the
  live call's TwiML is replaced by `<Dial>` through the REST API, then the voxcall call
  ends at once (Ultravox: "invoking the tool will immediately end the Ultravox call
  regardless of whether the transfer succeeds"). When the REST API refuses, the model is
  told (and speaks: failures never leave the agent silent), and the call goes on with the
  agent. Other media have no cold transfer here.
- `playDtmfSounds`: the model gives `digits`; out-of-band DTMF where the call's medium has it
  (Plivo's `sendDTMF`), elsewhere the model is told it cannot (`engine/dtmf.py`).
"""

from __future__ import annotations

import uuid
from typing import Any

from voxcall.engine.spec import ToolDef
from voxcall.engine.tool_params import MissingArguments, ToolContext, assemble
from voxcall.engine.tools import VOICEMAIL_RESULT, HangUp, ToolOutcome, failure
from voxcall.protocol.carrier_xml import dial_twiml
from voxcall.providers.base import ToolCall
from voxcall.server.carriers import CarrierError
from voxcall.server.phone import Phone
from voxcall.store.tools import PublicTool

__all__ = ["BUILT_IN_KINDS", "PHONE_TOOLS", "ColdTransferExecutor"]


def _tool_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"voxcall:tool:{name}"))


PHONE_TOOLS = (
    PublicTool(
        tool_id=_tool_id("leaveVoicemail"),
        name="leaveVoicemail",
        definition={
            "modelToolName": "leaveVoicemail",
            "description": "Leave a voicemail message and end the call. Use it when you reach an answering machine "
                           "or a voicemail box.",
            "dynamicParameters": [{"name": "message", "location": "PARAMETER_LOCATION_BODY", "required": True,
                                   "schema": {"type": "string", "description": "The message to leave."}}],
            "staticParameters": [{"name": "strict", "location": "PARAMETER_LOCATION_BODY", "value": True},
                                 {"name": "result", "location": "PARAMETER_LOCATION_BODY", "value": VOICEMAIL_RESULT}],
            "timeout": "2.5s", "defaultReaction": "AGENT_REACTION_LISTENS",
        },
    ),
    PublicTool(
        tool_id=_tool_id("coldTransfer"),
        name="coldTransfer",
        definition={
            "modelToolName": "coldTransfer",
            "description": "Transfer the caller to a person or another number. Your part of the call ends as the "
                           "transfer starts; say goodbye first.",
            "requirements": {"requiredParameterOverrides": ["target"]},
            "timeout": "10s", "defaultReaction": "AGENT_REACTION_LISTENS",
        },
    ),
    PublicTool(
        tool_id=_tool_id("playDtmfSounds"),
        name="playDtmfSounds",
        definition={
            "modelToolName": "playDtmfSounds", "timeout": "2.5s",
            "description": "Press keys on the phone keypad (DTMF tones), for example to navigate a phone menu.",
            "dynamicParameters": [{"name": "digits", "location": "PARAMETER_LOCATION_BODY", "required": True,
                                   "schema": {"type": "string",
                                              "description": "The keys to press, in order: 0-9, *, # or A-D."}}],
        },
    ),
)
BUILT_IN_KINDS = {"leaveVoicemail": "leave_voicemail", "coldTransfer": "cold_transfer", "playDtmfSounds": "play_dtmf"}
"""Model-independent name of each phone built-in -> the engine's tool kind."""
_SIP_FIELDS = ("username", "password")


class ColdTransferExecutor:
    """`coldTransfer` for Twilio calls voxcall placed or answered: redirect the live call to `<Dial>`."""

    def __init__(self, phone: Phone) -> None:
        self._phone = phone

    async def execute(self, tool: ToolDef, call: ToolCall, context: ToolContext) -> ToolOutcome:
        try:
            values = assemble(tool, call.arguments, context).body
        except MissingArguments as exc:
            return failure(call, "The tool {name} is missing parameters.", str(exc))
        target = str(values.get("target") or "").strip()
        if not target:
            return failure(call, "The tool {name} has no target to transfer to.", "no target (parameterOverrides.target)")
        problem, carrier_call, config = await self._twilio_call(context.call_id)
        if problem:
            return failure(call, "This call cannot be transferred.", problem)
        assert carrier_call is not None and config is not None and carrier_call.carrier_call_id
        twiml = dial_twiml(target, caller_id=_text(values.get("from")), headers=_headers(values.get("extraHeaders")),
                           **{k: _text(values.get(k)) for k in _SIP_FIELDS})
        if await self._phone.store.move(context.call_id, "transferred", from_=("placed",)) is None:
            return failure(call, "This call cannot be transferred.", "the Twilio call is no longer live")
        try:
            await self._phone.api.redirect(config, carrier_call.carrier_call_id, twiml)
        except CarrierError as exc:
            await self._phone.store.move(context.call_id, "placed", from_=("transferred",))
            await self._phone.event(context.call_id, "carrier_transfer_failed", exc.detail, "warning", exc.extras())
            return failure(call, "The transfer did not work; the caller is still with you.", exc.detail)
        await self._phone.event(context.call_id, "carrier_transfer", f"transferred the Twilio call to {target}")
        return ToolOutcome(f"Transferring the call to {target}.", reaction="listens", control=HangUp())

    async def _twilio_call(self, call_id: str) -> tuple[str, Any, dict[str, Any] | None]:
        """(problem, carrier call, Twilio config): a problem text unless the call can be redirected."""
        carrier_call = await self._phone.store.get_call(call_id)
        if carrier_call is None:
            return ("cold transfer needs a Twilio call that voxcall placed (medium.twilio.outgoing) or answered "
                    "(an agent's telephony_xml)"), None, None
        if carrier_call.carrier != "twilio":
            return f"cold transfer works with Twilio only; this is a {carrier_call.carrier} call", None, None
        if not carrier_call.carrier_call_id:
            return "Twilio has not said which call it placed (no CallSid yet)", None, None
        config = await self._phone.store.find_config(carrier_call.account_id, "twilio")
        if config is None:
            return "the account's Twilio config was deleted", None, None
        return "", carrier_call, config.config


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _headers(value: Any) -> dict[str, str] | None:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) and value else None
