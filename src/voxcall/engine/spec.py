"""What the engine needs to know about a call, as frozen values (no pydantic, no web)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from voxcall.engine.turns import VadConfig
from voxcall.providers.base import STT, TTS, VAD, ChatMessage, ToolSpec

__all__ = [
    "CallSpec", "DtmfSpec", "EventRecord", "Greeting", "HttpSpec", "InactivityMessage", "Speech", "ToolDef", "ToolParam",
    "VoiceSpec",
]

Reaction = Literal["speaks", "listens", "speaks-once"]


Location = Literal["query", "path", "header", "body"]
ToolKind = Literal["client", "http", "static", "hang_up", "data_connection", "leave_voicemail", "cold_transfer", "play_dtmf"]


@dataclass(frozen=True, slots=True)
class ToolParam:
    """One parameter of a tool and where it goes: filled by the model (`dynamic`), fixed
    (`static`, including parameterOverrides), or by the server (`automatic`, a KNOWN_PARAM_*)."""

    name: str
    location: Location = "body"
    source: Literal["dynamic", "static", "automatic"] = "static"
    value: Any = None
    known: str | None = None
    required: bool = False


@dataclass(frozen=True, slots=True)
class HttpSpec:
    """Where an HTTP tool goes, and the credentials resolved from authTokens at call creation."""

    url_pattern: str
    method: str = "GET"
    auth_headers: tuple[tuple[str, str], ...] = ()
    auth_query: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ToolDef:
    """A tool offered in a call: how the model sees it and how it is run."""

    spec: ToolSpec
    kind: ToolKind = "client"
    timeout: float = 2.5
    parameters: tuple[ToolParam, ...] = ()
    """Every located parameter; `spec.parameters` is the model's view of the dynamic ones."""
    default_reaction: Reaction = "speaks"
    static_response: str | None = None
    http: HttpSpec | None = None
    precomputable: bool = False


@dataclass(frozen=True, slots=True)
class Greeting:
    """How the conversation opens (firstSpeakerSettings)."""

    agent_first: bool = True
    text: str | None = None
    prompt: str | None = None
    uninterruptible: bool = False
    delay: float = 0.0
    generate: bool = True
    """False when enableGreetingPrompt=false: no generated greeting."""


@dataclass(frozen=True, slots=True)
class InactivityMessage:
    """Said after `duration` of user inactivity (cumulative: counted from the previous message)."""

    duration: float
    message: str
    end_behavior: Literal["none", "soft", "strict"] = "none"


@dataclass(frozen=True, slots=True)
class VoiceSpec:
    """Audio settings of a call (medium.serverWebSocket, vadSettings, voice)."""

    input_rate: int = 48000
    output_rate: int = 48000
    client_buffer: float = 0.06
    vad: VadConfig = field(default_factory=VadConfig)
    voice: str | None = None
    language: str | None = None
    media_idle_timeout: float | None = None
    recording: bool = False
    chunk_ms: int = 20
    """Size of the agent audio chunks handed to the medium (a carrier may need larger ones)."""
    preemptive: bool = False
    """Draft the reply while the user pauses and release it if the turn ends as it was (engine/preemption.py)."""


@dataclass(frozen=True, slots=True)
class DtmfSpec:
    """How key presses reach the conversation (`medium.<carrier>.dtmfHandling`)."""

    ignore: bool = False
    template: str = "{digits}"
    urgency: Literal["immediate", "soon", "later"] = "immediate"
    batch_delay: float = 0.6
    """Seconds without a new key after which the digits so far go out as one message."""


@dataclass(frozen=True, slots=True)
class Speech:
    """The speech back ends a call may use; `tts` is None when no voice is installed."""

    vad: Callable[[], VAD]
    stt: STT
    tts: TTS | None = None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A call event to store (GET /api/calls/{id}/events)."""

    type: str
    text: str
    severity: Literal["debug", "info", "warning", "error"] = "info"
    call_timestamp: float = 0.0
    extras: dict[str, Any] | None = None
    call_stage_id: str | None = None


@dataclass(frozen=True, slots=True)
class CallSpec:
    """Everything `Call` needs, resolved from the stored call."""

    call_id: str
    system_prompt: str = "You are a helpful assistant."
    temperature: float = 0.0
    tools: tuple[ToolDef, ...] = ()
    history: tuple[ChatMessage, ...] = ()
    greeting: Greeting = Greeting()
    output_medium: Literal["voice", "text"] = "voice"
    max_duration: float = 3600.0
    time_exceeded_message: str | None = None
    voice: VoiceSpec = VoiceSpec()
    inactivity: tuple[InactivityMessage, ...] = ()
    max_tool_rounds: int = 4
    llm_timeout: float = 60.0
    """Longest wait for the model's first event before the agent apologises."""
    initial_state: dict[str, Any] = field(default_factory=dict)
    """The call state tools start from (initialState); tools change it, the model never sees it."""
    metadata: dict[str, str] = field(default_factory=dict)
    call_stage_id: str | None = None
    dtmf: DtmfSpec = DtmfSpec()
    dtmf_out: bool = False
    """True when the medium can play DTMF into the call (the built-in playDtmfSounds)."""
