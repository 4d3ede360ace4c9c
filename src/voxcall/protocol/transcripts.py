"""Transcript and ordinal rules (PROTOCOL.md 2.7), as small pure objects.

Server side, `TranscriptWriter` hands out one dense ordinal per utterance,
shared by user and agent from 0; an agent utterance opens with `text`,
continues with `delta`s, and closes with the full non-empty `text` and
`final: true`. Client side, `TranscriptLog` adds or updates by ordinal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voxcall.errors import ProtocolError
from voxcall.protocol.realtime import Medium, Role, Transcript

__all__ = ["TranscriptEntry", "TranscriptLog", "TranscriptWriter"]


@dataclass(slots=True)
class _Open:
    role: Role
    medium: Medium
    text: str = ""


@dataclass(slots=True)
class TranscriptWriter:
    """Produces the transcript messages of one call."""

    next_ordinal: int = 0
    _open: dict[int, _Open] = field(default_factory=dict)

    def open(self, role: Role, medium: Medium) -> int:
        """Start an utterance and return its ordinal; nothing is sent until text arrives."""
        ordinal = self.next_ordinal
        self.next_ordinal += 1
        self._open[ordinal] = _Open(role, medium)
        return ordinal

    def append(self, ordinal: int, chunk: str) -> Transcript | None:
        """Add text to an open utterance: the first chunk as `text`, the rest as `delta`."""
        entry = self._entry(ordinal)
        if not chunk:
            return None
        first = not entry.text
        entry.text += chunk
        if first:
            return Transcript(role=entry.role, medium=entry.medium, text=chunk, final=False, ordinal=ordinal)
        return Transcript(role=entry.role, medium=entry.medium, delta=chunk, final=False, ordinal=ordinal)

    def text(self, ordinal: int) -> str:
        """The text of an open utterance so far."""
        return self._entry(ordinal).text

    def close(self, ordinal: int, heard: str | None = None) -> Transcript | None:
        """Finish an utterance with its full text (or only what was `heard`, after a barge-in).

        Returns None when there is no text to send: the final message must carry
        non-empty text, so an utterance that never produced any stays unsent.
        """
        entry = self._open.pop(ordinal, None)
        if entry is None:
            raise ProtocolError(f"transcript {ordinal} is not open")
        text = entry.text if heard is None else heard
        if not text:
            return None
        return Transcript(role=entry.role, medium=entry.medium, text=text, final=True, ordinal=ordinal)

    def complete(self, role: Role, medium: Medium, text: str) -> Transcript:
        """One whole final utterance in a single message (user text, forced messages)."""
        ordinal = self.open(role, medium)
        self._open.pop(ordinal)
        return Transcript(role=role, medium=medium, text=text, final=True, ordinal=ordinal)

    def _entry(self, ordinal: int) -> _Open:
        try:
            return self._open[ordinal]
        except KeyError:
            raise ProtocolError(f"transcript {ordinal} is not open") from None


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One utterance as the SDKs expose it."""

    text: str
    final: bool
    speaker: Role
    medium: Medium
    ordinal: int


@dataclass(slots=True)
class TranscriptLog:
    """Client-side transcript list indexed by ordinal (add or update, as the official SDKs do)."""

    _entries: dict[int, TranscriptEntry] = field(default_factory=dict)

    def apply(self, message: Transcript) -> TranscriptEntry:
        """Merge one transcript message and return the updated entry."""
        prior = self._entries.get(message.ordinal)
        if message.text is not None:
            text = message.text
        else:
            text = (prior.text if prior else "") + (message.delta or "")
        entry = TranscriptEntry(text, message.final, message.role, message.medium, message.ordinal)
        self._entries[message.ordinal] = entry
        return entry

    @property
    def entries(self) -> list[TranscriptEntry]:
        """Entries in ordinal order, gaps left out."""
        return [self._entries[k] for k in sorted(self._entries)]
