"""Which installed voice a call speaks with, whatever the client asked for.

Clients written for the hosted API ask for hosted voice names on their defaults (the LiveKit
plugin sends `"Mark"`, ultravox-mcp `"terrence"`) or for an `externalVoice`. voxcall accepts
them all: `voice` is echoed on the `Call` as given, and the call speaks with the installed voice
the name resolves to, in this order: an installed voice's `voiceId` or `name` (any case), the
operator's alias map (`VOXCALL_VOICE_ALIASES`), else the default voice (`VOXCALL_DEFAULT_VOICE`,
else the first installed one). Whenever the call does not get the voice as named, a warning
event names the voice actually used. `VOXCALL_STRICT_VOICES=true` refuses such requests with 422.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from voxcall.config import Settings
from voxcall.errors import InvalidRequest
from voxcall.protocol.rest import Voice

__all__ = ["VOICE_EVENT", "VoiceBook", "VoiceChoice"]

VOICE_EVENT = "voice_substituted"
"""Type of the call event recorded when a call does not get the voice it named."""

Reason = Literal["installed", "alias", "default", "external", "unset"]


@dataclass(frozen=True, slots=True)
class VoiceChoice:
    """The outcome of resolving a call's `voice` / `externalVoice`."""

    voice: str | None
    """The installed voice id the call speaks with; None when no voice is installed."""
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
        """The installed voice whose voiceId or name is `name` (any case)."""
        wanted = name.strip().lower()
        for voice in self.installed:
            if wanted in (voice.voice_id.lower(), voice.name.lower()):
                return voice.voice_id
        return None

    def default_voice(self) -> str | None:
        """The configured default voice if it is installed, else the first installed voice."""
        if self.default and (found := self.find(self.default)):
            return found
        return self.installed[0].voice_id if self.installed else None

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
        listing = ", ".join(v.voice_id for v in self.installed) or "none (start the server with speech and a TTS voice)"
        field_name = "externalVoice" if choice.reason == "external" else "voice"
        raise InvalidRequest([{"loc": ["body", field_name], "type": "value_error",
                               "msg": f"{choice.problem()}. Installed voices: {listing}. Leave voice unset for the default."}])
