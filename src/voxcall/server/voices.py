"""Which installed voice a call speaks with, whatever the client asked for.

Clients written for the hosted API ask for hosted voice names on their defaults (the LiveKit
plugin sends `"Mark"`, ultravox-mcp `"terrence"`) or for an `externalVoice`. voxcall accepts
them all: `voice` is echoed on the `Call` as given, and the call speaks with the installed voice
the name resolves to, in this order: an installed voice's `voiceId` or `name` (any case), the
operator's alias map (`VOXCALL_VOICE_ALIASES`), else the default voice (`VOXCALL_DEFAULT_VOICE`,
else the first installed one). Whenever the call does not get the voice as named, a warning
event names the voice actually used. `VOXCALL_STRICT_VOICES=true` refuses such requests with 422.

The routes here serve the installed voices as `Voice` resources: `GET /api/voices`,
`GET /api/voices/{voice_id}` and `GET /api/voices/{voice_id}/preview` (a WAV sample).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response

from voxcall.audio import write_wav
from voxcall.config import Settings
from voxcall.engine.spec import Speech
from voxcall.errors import InvalidRequest, NotFound
from voxcall.protocol.rest import Page, Voice
from voxcall.server.services import Services, get_services, require_api_key

__all__ = ["VOICE_EVENT", "VoiceBook", "VoiceChoice", "router", "voices_of"]

VOICE_EVENT = "voice_substituted"
"""Type of the call event recorded when a call does not get the voice it named."""

Reason = Literal["installed", "alias", "default", "external", "unset"]


@dataclass(frozen=True, slots=True)
class VoiceChoice:
    """The outcome of resolving a call's `voice` / `externalVoice`."""

    voice: str | None
    """The installed voice the call speaks with (its TTS name); None when no voice is installed."""
    requested: str | None
    """What the client asked for: the `voice` string, or a description of the `externalVoice`."""
    reason: Reason

    @property
    def substituted(self) -> bool:
        """The client named a voice and gets another one (or none)."""
        return self.reason in ("alias", "default", "external")

    def warning(self) -> str | None:
        """The text of the warning event, or None when nothing was substituted."""
        if not self.substituted:
            return None
        if self.voice is None:
            outcome = "the call has no voice (none is installed: text only)"
        else:
            how = "as VOXCALL_VOICE_ALIASES maps it" if self.reason == "alias" else "the default voice"
            outcome = f"the call uses {self.voice!r}, {how}"
        return f"{self.problem()}; {outcome}."

    def problem(self) -> str:
        """What was asked for and cannot be had, as a phrase."""
        if self.reason == "external":
            return f"{self.requested} is not supported by this server"
        return f"Voice {self.requested!r} is not installed"

    def extras(self) -> dict[str, Any]:
        return {"requested": self.requested, "voice": self.voice, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class VoiceBook:
    """The installed voices and the operator's rules for names that are not installed."""

    installed: Sequence[Voice] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    default: str | None = None
    strict: bool = False

    @classmethod
    def of(cls, settings: Settings, installed: Sequence[Voice]) -> VoiceBook:
        """The book for these settings (VOXCALL_VOICE_ALIASES, _DEFAULT_VOICE, _STRICT_VOICES)."""
        return cls(installed, settings.voice_aliases, settings.default_voice, settings.strict_voices)

    def find(self, name: str) -> str | None:
        """The TTS name of the installed voice whose voiceId or name is `name` (any case)."""
        voice = self.voice(name)
        return voice.name if voice else None

    def voice(self, name: str) -> Voice | None:
        """The installed `Voice` whose voiceId or name is `name` (any case)."""
        wanted = name.strip().lower()
        return next((v for v in self.installed if wanted in (v.voice_id.lower(), v.name.lower())), None)

    def default_voice(self) -> str | None:
        """The configured default voice if it is installed, else the first installed voice."""
        if self.default and (found := self.find(self.default)):
            return found
        return self.installed[0].name if self.installed else None

    def choose(self, voice: str | None, external_voice: Mapping[str, Any] | None = None) -> VoiceChoice:
        """Resolve a call's voice; never raises (see `check` for strict mode)."""
        if voice is not None:
            if found := self.find(voice):
                return VoiceChoice(found, voice, "installed")
            target = next((t for k, t in self.aliases.items() if k.strip().lower() == voice.strip().lower()), None)
            if target is not None and (found := self.find(target)):
                return VoiceChoice(found, voice, "alias")
            return VoiceChoice(self.default_voice(), voice, "default")
        if external_voice:
            providers = ", ".join(sorted(external_voice)) or "empty"
            return VoiceChoice(self.default_voice(), f"externalVoice ({providers})", "external")
        return VoiceChoice(self.default_voice(), None, "unset")

    def check_choice(self, voice: str | None, external_voice: Mapping[str, Any] | None = None) -> VoiceChoice:
        """`choose`, then `check`: what POST /api/calls uses."""
        choice = self.choose(voice, external_voice)
        self.check(choice)
        return choice

    def check(self, choice: VoiceChoice) -> None:
        """In strict mode, refuse a voice that is neither installed nor aliased (or an externalVoice) with 422."""
        if not self.strict or choice.reason not in ("default", "external"):
            return
        listing = ", ".join(v.name for v in self.installed) or "none (start the server with speech and a TTS voice)"
        field_name = "externalVoice" if choice.reason == "external" else "voice"
        raise InvalidRequest([{"loc": ["body", field_name], "type": "value_error",
                               "msg": f"{choice.problem()}. Installed voices: {listing}. Leave voice unset for the default."}])


# ------------------------------------------------------------------ the /api/voices routes

_NAMESPACE = uuid.UUID("3d0c2f6e-91a4-4c55-8d2b-5b7f1b0e9c37")
PREVIEW_TEXT = "Hello! This is how I sound on a call."
router = APIRouter(prefix="/api")
AccountId = Annotated[str, Depends(require_api_key)]
Svc = Annotated[Services, Depends(get_services)]


def voices_of(speech: Speech | None) -> list[Voice]:
    """The installed voices as `Voice` resources; the voiceId is a UUID derived from provider and name."""
    if speech is None or speech.tts is None:
        return []
    provider = getattr(speech.tts, "name", "tts")
    return [Voice(voice_id=str(uuid.uuid5(_NAMESPACE, f"{provider}/{v}")), name=v, description=f"{provider} voice {v}",
                  primary_language="en-US", language_label="English (US)", provider=provider,
                  definition={"generic": {"provider": provider, "voice": v}}) for v in speech.tts.voices()]


def _resource(request: Request, svc: Services, voice: Voice) -> dict[str, Any]:
    base = (svc.settings.public_url or f"{request.url.scheme}://{request.url.netloc}").rstrip("/")
    return voice.model_copy(update={"preview_url": f"{base}/api/voices/{voice.voice_id}/preview"}).wire()


def _installed(svc: Services, voice_id: str) -> Voice:
    voice = VoiceBook(svc.voices).voice(voice_id)
    if voice is None:
        raise NotFound("No such voice: GET /api/voices lists the installed ones.")
    return voice


@router.get("/voices")
async def list_voices(request: Request, svc: Svc, account: AccountId) -> dict[str, Any]:
    results = [_resource(request, svc, v) for v in svc.voices]
    return Page[Any](results=results, total=len(results)).wire()


@router.get("/voices/{voice_id}")
async def get_voice(request: Request, voice_id: str, svc: Svc, account: AccountId) -> dict[str, Any]:
    return _resource(request, svc, _installed(svc, voice_id))


@router.get("/voices/{voice_id}/preview")
async def preview_voice(voice_id: str, svc: Svc, account: AccountId) -> Response:
    """A short sample of the voice, as `audio/wav`."""
    voice = _installed(svc, voice_id)
    tts = svc.speech.tts if svc.speech else None
    if tts is None:
        raise NotFound("No voice is installed.")
    pcm = b"".join([chunk async for chunk in tts.synthesize(PREVIEW_TEXT, voice=voice.name)])
    return Response(write_wav(pcm, tts.sample_rate), media_type="audio/wav")
