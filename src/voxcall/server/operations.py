"""Every operation of the hosted Ultravox REST API, and whether voxcall implements it.

This is the one list of implemented operations. `tests/server/test_operations.py` checks it against
the official OpenAPI document (all 114 operations are here) and against the app's routes (every
IMPLEMENTED operation is routed; every routed /api operation of the document is IMPLEMENTED);
the schemathesis run fuzzes exactly the IMPLEMENTED ones, and `scripts/compat_table.py` writes the
README's compatibility table from it.

One line per operation, grouped by resource as in the document. When you add a route, change its
line's value to IMPLEMENTED; otherwise the value is a short reason shown in the README.
"""

from __future__ import annotations

__all__ = ["IMPLEMENTED", "OPERATIONS", "implemented", "not_implemented"]

IMPLEMENTED = "implemented"

_BILLING = "no billing: voxcall is self-hosted"
_SIP = "SIP is not implemented"
_BATCHES = "scheduled batches place outbound telephony calls: not implemented"
_THROTTLES = "call throttles are not implemented"
_CORPORA = "corpora (RAG) are not implemented"
_VOICES = "voices are the server's installed TTS voices: not created, changed or cloned over the API"

OPERATIONS: dict[tuple[str, str], str] = {
    ("GET", "/api/accounts"): "one account per API key: GET /api/accounts/me describes it",
    ("GET", "/api/accounts/me"): IMPLEMENTED,
    ("GET", "/api/accounts/me/billing"): _BILLING,
    ("GET", "/api/accounts/me/billing/invoices"): _BILLING,
    ("GET", "/api/accounts/me/billing/usage"): _BILLING,
    ("GET", "/api/accounts/me/telephony_config"): IMPLEMENTED,
    ("PATCH", "/api/accounts/me/telephony_config"): IMPLEMENTED,
    ("GET", "/api/accounts/me/tts_api_keys"): "no external TTS providers: speech runs on the server (VOXCALL_TTS_*)",
    ("PATCH", "/api/accounts/me/tts_api_keys"): "no external TTS providers: speech runs on the server (VOXCALL_TTS_*)",
    ("GET", "/api/accounts/me/usage/calls"): IMPLEMENTED,
    ("GET", "/api/accounts/me/usage/concurrency"): IMPLEMENTED,

    ("GET", "/api/agents"): IMPLEMENTED,
    ("POST", "/api/agents"): IMPLEMENTED,
    ("GET", "/api/agents/{agent_id}"): IMPLEMENTED,
    ("PATCH", "/api/agents/{agent_id}"): IMPLEMENTED,
    ("DELETE", "/api/agents/{agent_id}"): IMPLEMENTED,
    ("GET", "/api/agents/{agent_id}/calls"): IMPLEMENTED,
    ("POST", "/api/agents/{agent_id}/calls"): IMPLEMENTED,
    ("GET", "/api/agents/{agent_id}/scheduled_batches"): _BATCHES,
    ("POST", "/api/agents/{agent_id}/scheduled_batches"): _BATCHES,
    ("GET", "/api/agents/{agent_id}/scheduled_batches/{batch_id}"): _BATCHES,
    ("PATCH", "/api/agents/{agent_id}/scheduled_batches/{batch_id}"): _BATCHES,
    ("DELETE", "/api/agents/{agent_id}/scheduled_batches/{batch_id}"): _BATCHES,
    ("GET", "/api/agents/{agent_id}/scheduled_batches/{batch_id}/created_calls"): _BATCHES,
    ("GET", "/api/agents/{agent_id}/scheduled_batches/{batch_id}/scheduled_calls"): _BATCHES,
    ("POST", "/api/agents/{agent_id}/telephony_xml"): IMPLEMENTED,
    ("GET", "/api/agents/usage"): "per-agent usage is not implemented yet (GET /api/accounts/me/usage/calls takes agentIds)",

    ("GET", "/api/api_keys"): IMPLEMENTED,
    ("POST", "/api/api_keys"): IMPLEMENTED,
    ("GET", "/api/api_keys/{api_key_prefix}"): IMPLEMENTED,
    ("PUT", "/api/api_keys/{api_key_prefix}"): IMPLEMENTED,
    ("PATCH", "/api/api_keys/{api_key_prefix}"): IMPLEMENTED,
    ("DELETE", "/api/api_keys/{api_key_prefix}"): IMPLEMENTED,

    ("GET", "/api/call_throttles"): _THROTTLES,
    ("POST", "/api/call_throttles"): _THROTTLES,
    ("GET", "/api/call_throttles/{throttle_id}"): _THROTTLES,
    ("PUT", "/api/call_throttles/{throttle_id}"): _THROTTLES,
    ("PATCH", "/api/call_throttles/{throttle_id}"): _THROTTLES,
    ("DELETE", "/api/call_throttles/{throttle_id}"): _THROTTLES,

    ("GET", "/api/calls"): IMPLEMENTED,
    ("POST", "/api/calls"): IMPLEMENTED,
    ("GET", "/api/calls/{call_id}"): IMPLEMENTED,
    ("DELETE", "/api/calls/{call_id}"): IMPLEMENTED,
    ("GET", "/api/calls/{call_id}/events"): IMPLEMENTED,
    ("GET", "/api/calls/{call_id}/messages"): IMPLEMENTED,
    ("GET", "/api/calls/{call_id}/recording"): IMPLEMENTED,
    ("POST", "/api/calls/{call_id}/send_data_message"): IMPLEMENTED,
    ("GET", "/api/calls/{call_id}/sip_logs"): _SIP,
    ("GET", "/api/calls/{call_id}/stages"): IMPLEMENTED,
    ("GET", "/api/calls/{call_id}/stages/{call_stage_id}"): IMPLEMENTED,
    ("GET", "/api/calls/{call_id}/stages/{call_stage_id}/messages"): IMPLEMENTED,
    ("GET", "/api/calls/{call_id}/stages/{call_stage_id}/messages/{call_stage_message_index}/audio"): IMPLEMENTED,
    ("GET", "/api/calls/{call_id}/stages/{call_stage_id}/tools"): IMPLEMENTED,
    ("GET", "/api/calls/{call_id}/tools"): IMPLEMENTED,

    ("GET", "/api/corpora"): _CORPORA,
    ("POST", "/api/corpora"): _CORPORA,
    ("GET", "/api/corpora/{corpus_id}"): _CORPORA,
    ("PUT", "/api/corpora/{corpus_id}"): _CORPORA,
    ("PATCH", "/api/corpora/{corpus_id}"): _CORPORA,
    ("DELETE", "/api/corpora/{corpus_id}"): _CORPORA,
    ("POST", "/api/corpora/{corpus_id}/query"): _CORPORA,
    ("GET", "/api/corpora/{corpus_id}/sources"): _CORPORA,
    ("POST", "/api/corpora/{corpus_id}/sources"): _CORPORA,
    ("GET", "/api/corpora/{corpus_id}/sources/{source_id}"): _CORPORA,
    ("PUT", "/api/corpora/{corpus_id}/sources/{source_id}"): _CORPORA,
    ("PATCH", "/api/corpora/{corpus_id}/sources/{source_id}"): _CORPORA,
    ("DELETE", "/api/corpora/{corpus_id}/sources/{source_id}"): _CORPORA,
    ("GET", "/api/corpora/{corpus_id}/sources/{source_id}/documents"): _CORPORA,
    ("GET", "/api/corpora/{corpus_id}/sources/{source_id}/documents/{document_id}"): _CORPORA,
    ("POST", "/api/corpora/{corpus_id}/uploads"): _CORPORA,

    ("GET", "/api/deleted_calls"): IMPLEMENTED,
    ("GET", "/api/deleted_calls/{call_id}"): IMPLEMENTED,

    ("GET", "/api/models"): IMPLEMENTED,

    ("GET", "/api/schema/"): IMPLEMENTED,

    ("GET", "/api/sip"): _SIP,
    ("PATCH", "/api/sip"): _SIP,
    ("GET", "/api/sip/registrations"): _SIP,
    ("POST", "/api/sip/registrations"): _SIP,
    ("GET", "/api/sip/registrations/{registration_id}"): _SIP,
    ("PATCH", "/api/sip/registrations/{registration_id}"): _SIP,
    ("DELETE", "/api/sip/registrations/{registration_id}"): _SIP,

    ("GET", "/api/telephony_configs/plivo"): IMPLEMENTED,
    ("POST", "/api/telephony_configs/plivo"): IMPLEMENTED,
    ("PATCH", "/api/telephony_configs/plivo"): IMPLEMENTED,
    ("DELETE", "/api/telephony_configs/plivo"): IMPLEMENTED,
    ("GET", "/api/telephony_configs/telnyx"): IMPLEMENTED,
    ("POST", "/api/telephony_configs/telnyx"): IMPLEMENTED,
    ("PATCH", "/api/telephony_configs/telnyx"): IMPLEMENTED,
    ("DELETE", "/api/telephony_configs/telnyx"): IMPLEMENTED,
    ("GET", "/api/telephony_configs/twilio"): IMPLEMENTED,
    ("POST", "/api/telephony_configs/twilio"): IMPLEMENTED,
    ("PATCH", "/api/telephony_configs/twilio"): IMPLEMENTED,
    ("DELETE", "/api/telephony_configs/twilio"): IMPLEMENTED,

    ("GET", "/api/tools"): IMPLEMENTED,
    ("POST", "/api/tools"): IMPLEMENTED,
    ("GET", "/api/tools/{tool_id}"): IMPLEMENTED,
    ("PUT", "/api/tools/{tool_id}"): IMPLEMENTED,
    ("DELETE", "/api/tools/{tool_id}"): IMPLEMENTED,
    ("GET", "/api/tools/{tool_id}/history"): IMPLEMENTED,
    ("POST", "/api/tools/{tool_id}/test"): IMPLEMENTED,

    ("POST", "/api/voice_preview"): "voice previews are not implemented",
    ("GET", "/api/voices"): IMPLEMENTED,
    ("POST", "/api/voices"): _VOICES,
    ("GET", "/api/voices/{voice_id}"): IMPLEMENTED,
    ("PUT", "/api/voices/{voice_id}"): _VOICES,
    ("PATCH", "/api/voices/{voice_id}"): _VOICES,
    ("DELETE", "/api/voices/{voice_id}"): _VOICES,
    ("GET", "/api/voices/{voice_id}/preview"): IMPLEMENTED,

    ("GET", "/api/webhooks"): IMPLEMENTED,
    ("POST", "/api/webhooks"): IMPLEMENTED,
    ("GET", "/api/webhooks/{webhook_id}"): IMPLEMENTED,
    ("PUT", "/api/webhooks/{webhook_id}"): IMPLEMENTED,
    ("PATCH", "/api/webhooks/{webhook_id}"): IMPLEMENTED,
    ("DELETE", "/api/webhooks/{webhook_id}"): IMPLEMENTED,
}
"""(method, path as in the official document) -> IMPLEMENTED or the reason it is not."""


def implemented() -> list[tuple[str, str]]:
    """The operations voxcall serves, in document order."""
    return [op for op, status in OPERATIONS.items() if status == IMPLEMENTED]


def not_implemented() -> dict[tuple[str, str], str]:
    """The operations voxcall does not serve, with the reason for each."""
    return {op: status for op, status in OPERATIONS.items() if status != IMPLEMENTED}
