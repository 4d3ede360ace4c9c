"""Turn-taking as a pure state machine over VAD frames (Ultravox `vadSettings`, PROTOCOL.md 1.5.2).

Feed one 32 ms frame and its speech probability at a time; get events back.
Durations are counted in frames, so no clock is needed and tests are synchronous.

Events:
  * `SpeechStarted` – the first voiced frame after silence;
  * `BargeIn` – the user has spoken over the agent for `minimumInterruptionDuration`;
  * `Speaking(audio)` – every `partial_seconds` while the user talks: the turn so far, for a partial transcript;
  * `Paused(audio)` – a short silence after speech: a chance to transcribe early;
  * `Resumed` – speech again after `Paused`: throw that early transcript away;
  * `TurnEnded(audio)` – silence for `turnEndpointDelay` after at least `minimumTurnDuration` of speech.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

__all__ = ["BargeIn", "Paused", "Resumed", "Speaking", "SpeechStarted", "TurnDetector", "TurnEnded", "VadConfig"]


@dataclass(frozen=True, slots=True)
class VadConfig:
    """Per-call turn settings in seconds, with the hosted API's defaults."""

    turn_endpoint_delay: float = 0.384
    minimum_turn_duration: float = 0.0
    minimum_interruption_duration: float = 0.09
    frame_activation_threshold: float = 0.1
    frame_seconds: float = 0.032
    pause_seconds: float = 0.064
    """Silence after which an early (speculative) transcription may start."""
    preroll_seconds: float = 0.256
    """Audio kept from before the first voiced frame, so word onsets are not clipped."""
    speech_threshold: float = 0.5
    """Probability above which a frame is speech once the frame activation threshold is passed."""
    partial_seconds: float | None = 0.64
    """While the user talks, the turn so far is offered (`Speaking`) this often for a partial transcript; None: never."""
    max_turn_seconds: float = 30.0
    """A turn longer than this is ended anyway, which also bounds the audio kept in memory."""
    silence_floor_dbfs: float | None = -65.0
    """A frame quieter than this (RMS) is silence whatever the VAD says (`voice_in.gate`); None: no floor."""

    def frames(self, seconds: float) -> int:
        return max(0, math.ceil(round(seconds / self.frame_seconds, 6)))


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    pass


@dataclass(frozen=True, slots=True)
class BargeIn:
    pass


@dataclass(frozen=True, slots=True)
class Paused:
    audio: bytes


@dataclass(frozen=True, slots=True)
class Speaking:
    audio: bytes


@dataclass(frozen=True, slots=True)
class Resumed:
    pass


@dataclass(frozen=True, slots=True)
class TurnEnded:
    audio: bytes
    voiced_frames: int
    trailing_silence_frames: int


@dataclass(frozen=True, slots=True)
class _Counts:
    """A `VadConfig`'s durations in frames and its speech threshold, worked out once, not on every frame."""

    voiced_at: float
    preroll: int
    interruption: int
    partial: int
    max_turn: int
    pause: int
    endpoint: int
    minimum_turn: int

    @classmethod
    def of(cls, cfg: VadConfig) -> _Counts:
        return cls(voiced_at=max(cfg.frame_activation_threshold, cfg.speech_threshold), preroll=cfg.frames(cfg.preroll_seconds),
                   interruption=max(1, cfg.frames(cfg.minimum_interruption_duration)),
                   partial=max(1, cfg.frames(cfg.partial_seconds)) if cfg.partial_seconds is not None else 0,
                   max_turn=cfg.frames(cfg.max_turn_seconds), pause=max(1, cfg.frames(cfg.pause_seconds)),
                   endpoint=max(1, cfg.frames(cfg.turn_endpoint_delay)), minimum_turn=max(1, cfg.frames(cfg.minimum_turn_duration)))


TurnEvent = SpeechStarted | BargeIn | Speaking | Paused | Resumed | TurnEnded


@dataclass(slots=True)
class TurnDetector:
    """Decides when the user starts, interrupts, pauses and ends a turn."""

    config: VadConfig = field(default_factory=VadConfig)
    _preroll: deque[bytes] = field(default_factory=deque)
    _audio: list[bytes] = field(default_factory=list)
    _in_speech: bool = False
    _voiced: int = 0
    _silent: int = 0
    _paused: bool = False
    _barged: bool = False
    _since_partial: int = 0
    _n: _Counts = field(init=False)

    def __post_init__(self) -> None:
        self._n = _Counts.of(self.config)

    @property
    def in_speech(self) -> bool:
        """True from the first voiced frame until the turn ends (or is dropped)."""
        return self._in_speech

    def voiced(self, probability: float) -> bool:
        """Whether a frame counts as speech: above both the activation threshold and the speech threshold."""
        return probability >= self._n.voiced_at

    def feed(self, frame: bytes, probability: float, *, agent_speaking: bool = False) -> list[TurnEvent]:
        """Take one frame; returns the events it causes (usually none)."""
        cfg, n = self.config, self._n
        voiced = probability >= n.voiced_at
        if not self._in_speech:
            if not voiced:
                self._preroll.append(frame)
                while len(self._preroll) > n.preroll:
                    self._preroll.popleft()
                return []
            self._in_speech, self._voiced, self._silent, self._barged, self._paused = True, 0, 0, False, False
            self._since_partial = 0
            self._audio = list(self._preroll)
            self._preroll.clear()
            events: list[TurnEvent] = [SpeechStarted()]
        else:
            events = []
        self._audio.append(frame)
        self._since_partial += 1
        if voiced:
            self._voiced += 1
            self._silent = 0
            if self._paused:
                self._paused = False
                events.append(Resumed())
            if agent_speaking and not self._barged and self._voiced >= n.interruption:
                self._barged = True
                events.append(BargeIn())
            if cfg.partial_seconds is not None and self._since_partial >= n.partial \
                    and self._enough_speech():
                self._since_partial = 0
                events.append(Speaking(b"".join(self._audio)))
            if len(self._audio) >= n.max_turn:
                events.extend(self._end(agent_speaking))
            return events
        self._silent += 1
        if not self._paused and self._silent == n.pause and self._enough_speech():
            self._paused = True
            events.append(Paused(self._trimmed()))
        if self._silent >= n.endpoint:
            events.extend(self._end(agent_speaking))
        return events

    def _enough_speech(self) -> bool:
        return self._voiced >= self._n.minimum_turn

    def _trimmed(self) -> bytes:
        # Keep the trailing silence up to the pause point: Whisper ends words better with some padding,
        # and the audio at `Paused` and at `TurnEnded` is then identical, so the early transcript is reused.
        keep = len(self._audio) - max(0, self._silent - self._n.pause)
        return b"".join(self._audio[:keep])

    def _end(self, agent_speaking: bool) -> list[TurnEvent]:
        audio, voiced, silent = self._trimmed(), self._voiced, self._silent
        counts = self._enough_speech() and (self._barged or not agent_speaking)
        self._in_speech, self._audio, self._voiced, self._silent, self._paused = False, [], 0, 0, False
        # A blip over the agent that never reached the interruption length is not a turn.
        return [TurnEnded(audio, voiced, silent)] if counts else []
