"""Per-turn latency: end of speech -> end of turn -> transcript -> LLM first token -> first audio out.

The report also says what preemption did for the turn (`preemption.Outcome`): its reply was drafted
during the pause and `used`, a draft was `discarded`, or `none` was made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["TurnTiming"]


@dataclass(slots=True)
class TurnTiming:
    """Loop times (seconds) of one spoken turn's stages; filled in as the turn goes."""

    speech_end: float
    turn_end: float
    speech_start: float = 0.0
    """Where the turn's audio (with its lead-in) begins."""
    transcript: float = 0.0
    first_token: float = 0.0
    preemption: str = "none"
    discarded: int = 0
    """Preemptive drafts thrown away during the turn (the user went on after a pause)."""

    def report(self, first_audio: float) -> tuple[str, dict[str, Any]]:
        """A readable line and the stage durations in ms, once the first audio went out."""
        first_token = self.first_token or first_audio
        stages: dict[str, Any] = {
            "endpointMs": round((self.turn_end - self.speech_end) * 1000),
            "transcriptMs": round((self.transcript - self.turn_end) * 1000),
            "firstTokenMs": round((first_token - self.transcript) * 1000),
            "firstAudioMs": round((first_audio - first_token) * 1000),
            "totalMs": round((first_audio - self.speech_end) * 1000),
            "preemption": self.preemption,
            "preemptionDiscarded": self.discarded,
        }
        text = ("Turn latency: end of speech -> end of turn %(endpointMs)d ms -> transcript %(transcriptMs)d ms -> "
                "LLM first token %(firstTokenMs)d ms -> first audio %(firstAudioMs)d ms (total %(totalMs)d ms, "
                "preemption %(preemption)s, %(preemptionDiscarded)d discarded)" % stages)
        return text, stages
