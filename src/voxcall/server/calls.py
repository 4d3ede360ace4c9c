"""Translations between stored calls, REST resources and engine specs."""

from __future__ import annotations

from voxcall.engine.spec import CallSpec, DtmfSpec, Greeting, InactivityMessage, VoiceSpec
from voxcall.engine.stages import chat_history
from voxcall.engine.turns import VadConfig
from voxcall.protocol.rest import Call, CallMessage, StartCallRequest
from voxcall.protocol.wire import format_duration
from voxcall.providers.base import ChatMessage
from voxcall.server.call_tools import build_call_tools
from voxcall.server.call_tools import tool_def as _tool_def
from voxcall.store.records import CallRecord

__all__ = ["build_call_tools", "build_spec", "dtmf_spec", "history_from_messages", "to_call", "voice_spec"]

_URGENCIES = {"URGENCY_SOON": "soon", "URGENCY_LATER": "later"}


def history_from_messages(messages: list[CallMessage]) -> list[ChatMessage]:
    """Rebuild the LLM history from stored call messages (initial and earlier ones)."""
    return chat_history(messages)


DEFAULT_SAMPLE_RATE = 48000
DEFAULT_CLIENT_BUFFER_MS = 60
_END_BEHAVIORS = {"END_BEHAVIOR_HANG_UP_SOFT": "soft", "END_BEHAVIOR_HANG_UP_STRICT": "strict"}


def voice_spec(request: StartCallRequest, voice: str | None = None) -> VoiceSpec:
    """Audio settings: serverWebSocket rates (default 48 kHz in, output = input), buffer, VAD; `voice` as resolved."""
    medium = request.medium.server_web_socket if request.medium else None
    input_rate = medium.input_sample_rate if medium else DEFAULT_SAMPLE_RATE
    vad = request.vad_settings
    defaults = VadConfig()
    config = VadConfig(
        turn_endpoint_delay=vad.turn_endpoint_delay if vad and vad.turn_endpoint_delay is not None else defaults.turn_endpoint_delay,
        minimum_turn_duration=vad.minimum_turn_duration if vad and vad.minimum_turn_duration is not None else defaults.minimum_turn_duration,
        minimum_interruption_duration=vad.minimum_interruption_duration
        if vad and vad.minimum_interruption_duration is not None else defaults.minimum_interruption_duration,
        frame_activation_threshold=vad.frame_activation_threshold
        if vad and vad.frame_activation_threshold is not None else defaults.frame_activation_threshold,
    )
    buffer_ms = medium.client_buffer_size_ms if medium and medium.client_buffer_size_ms is not None else DEFAULT_CLIENT_BUFFER_MS
    return VoiceSpec(
        input_rate=input_rate,
        output_rate=(medium.output_sample_rate if medium and medium.output_sample_rate else input_rate),
        client_buffer=buffer_ms / 1000,
        vad=config,
        voice=voice,
        language=(request.language_hint or "en").split("-")[0].lower(),
        media_idle_timeout=medium.media_idle_timeout if medium else None,
        recording=bool(request.recording_enabled),
    )


def build_spec(record: CallRecord, messages: list[CallMessage], voice: str | None = None) -> CallSpec:
    """The engine's view of a stored call; `voice` is the installed voice it speaks with (server.voices)."""
    request = StartCallRequest.model_validate(record.request)
    first = request.effective_first_speaker_settings()
    if first.agent is not None:
        greeting = Greeting(
            agent_first=True,
            text=first.agent.text,
            prompt=first.agent.prompt,
            uninterruptible=bool(first.agent.uninterruptible),
            delay=first.agent.delay or 0.0,
            generate=record.enable_greeting_prompt,
        )
    else:
        fallback = first.user.fallback if first.user else None
        greeting = Greeting(
            agent_first=False,
            text=fallback.text if fallback else None,
            prompt=fallback.prompt if fallback else None,
            delay=fallback.delay if fallback else 0.0,
        )
    return CallSpec(
        call_id=record.call_id,
        system_prompt=request.system_prompt or "You are a helpful assistant.",
        temperature=request.temperature or 0.0,
        tools=tuple(_tool_def(t) for t in record.tools),
        history=tuple(history_from_messages(messages)),
        greeting=greeting,
        output_medium="text" if request.initial_output_medium == "MESSAGE_MEDIUM_TEXT" else "voice",
        max_duration=request.max_duration or 3600.0,
        time_exceeded_message=request.time_exceeded_message,
        voice=voice_spec(request, voice),
        inactivity=tuple(
            InactivityMessage(m.duration, m.message, _END_BEHAVIORS.get(m.end_behavior or "", "none"))  # type: ignore[arg-type]
            for m in request.inactivity_messages or []
        ),
        initial_state=dict(request.initial_state or {}),
        metadata={**(request.metadata or {}), **record.system_metadata},
        dtmf=dtmf_spec(request),
    )


def dtmf_spec(request: StartCallRequest) -> DtmfSpec:
    """`medium.<carrier>.dtmfHandling` as the engine's DtmfSpec (absent: the digits, urgency immediate)."""
    carrier = request.medium.carrier if request.medium else None
    handling = getattr(request.medium, carrier).dtmf_handling if request.medium and carrier else None
    if handling is None:
        return DtmfSpec()
    message = handling.user_text_message
    return DtmfSpec(
        ignore=bool(handling.ignore),
        template=(message.text if message and message.text else "{digits}"),
        urgency=_URGENCIES.get(message.urgency or "", "immediate") if message else "immediate",  # type: ignore[arg-type]
    )


def to_call(record: CallRecord) -> Call:
    """The `Call` resource for a stored call, with every required field.

    The fields a stage may change (systemPrompt, temperature, voice, languageHint) show the call's
    last stage: the hosted API's `GET /calls/{id}/messages` lists "the call's last stage, similar
    to most call fields" (its OpenAPI document).
    """
    wire = record.latest_request()
    request = StartCallRequest.model_validate(wire)
    first = request.effective_first_speaker_settings()
    return Call(
        call_id=record.call_id,
        client_version=record.client_version,
        created=record.created,
        joined=record.joined,
        ended=record.ended,
        end_reason=record.end_reason,
        billing_status="BILLING_STATUS_FREE_OTHER" if record.ended else "BILLING_STATUS_PENDING",
        first_speaker="FIRST_SPEAKER_AGENT" if first.agent is not None else "FIRST_SPEAKER_USER",
        first_speaker_settings=first.wire(),
        inactivity_messages=wire.get("inactivityMessages", []),
        initial_output_medium=request.initial_output_medium
        if request.initial_output_medium == "MESSAGE_MEDIUM_TEXT"
        else "MESSAGE_MEDIUM_VOICE",
        join_timeout=format_duration(request.join_timeout or 30.0),
        join_url=record.join_url,
        language_hint=request.language_hint,
        max_duration=format_duration(request.max_duration or 3600.0),
        medium=wire.get("medium"),
        model=request.model or "ultravox-v0.7",
        recording_enabled=bool(request.recording_enabled),
        retention_policy=None,
        system_prompt=request.system_prompt,
        temperature=request.temperature or 0.0,
        time_exceeded_message=request.time_exceeded_message,
        voice=request.voice,
        external_voice=wire.get("externalVoice"),
        voice_overrides=wire.get("voiceOverrides"),
        transcript_optional=request.transcript_optional if request.transcript_optional is not None else True,
        vad_settings=wire.get("vadSettings"),
        experimental_settings=wire.get("experimentalSettings"),
        metadata={**(request.metadata or {}), **record.system_metadata},
        initial_state=request.initial_state or {},
        request_context={},
        data_connection_config=wire.get("dataConnection"),
        callbacks=wire.get("callbacks"),
        agent={"agentId": record.agent_id, "name": record.agent_name or ""} if record.agent_id else None,
        agent_id=record.agent_id,
    )
