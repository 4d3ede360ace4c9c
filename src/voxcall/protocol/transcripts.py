"""Transcript and ordinal rules (PROTOCOL.md 2.7), as small pure objects.

Server side, `TranscriptWriter` gives each utterance one ordinal, shared by user
and agent from 0, taken when the utterance's first message is made (the caller
sends it at once): an utterance that never says anything uses no ordinal, so the
ordinals on the wire are dense and ascend in order of first appearance. An agent
utterance opens with `text`, continues with `delta`s, and closes with the full
non-empty `text` and `final: true`. Client side, `TranscriptLog` adds or updates
by ordinal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voxcall.errors import ProtocolError
from voxcall.protocol.realtime import Medium, Role, Transcript

__all__ = ["TranscriptEntry", "TranscriptLog", "TranscriptWriter", "Utterance"]


@dataclass(slots=True, eq=False)
class Utterance:
    """One utterance being written; `ordinal` is None until its first message."""

    role: Role
    medium: Medium
    text: str = ""
    ordinal: int | None = None
    closed: bool = False

    @property
    def on_wire(self) -> bool:
        """True from the first message until the close."""
        return self.ordinal is not None and not self.closed


@dataclass(slots=True)
class TranscriptWriter:
    """Produces the transcript messages of one call."""

    next_ordinal: int = 0

    def open(self, role: Role, medium: Medium) -> Utterance:
        """Start an utterance; it has no ordinal until text arrives."""
        return Utterance(role, medium)

    def append(self, utterance: Utterance, chunk: str) -> Transcript | None:
        """Add text to an open utterance: the first chunk as `text` (taking the ordinal), the rest as `delta`.

        Leading blanks are dropped, so an utterance on the wire always has text for its final.
        """
        self._check_open(utterance)
        first = utterance.ordinal is None
        if first:
            chunk = chunk.lstrip()  # a first message of blanks would leave nothing for the final
        if not chunk:
            return None
        ordinal = self._ordinal(utterance)
        utterance.text += chunk
        if first:
            return Transcript(role=utterance.role, medium=utterance.medium, text=chunk, final=False, ordinal=ordinal)
        return Transcript(role=utterance.role, medium=utterance.medium, delta=chunk, final=False, ordinal=ordinal)

    def close(self, utterance: Utterance, heard: str | None = None) -> Transcript | None:
        """Finish an utterance with its full text (or only what was `heard`, after a barge-in).

        Returns None when there is no text to send: the final message must carry
        non-empty text, so an utterance that never produced any stays unsent and
        uses no ordinal. An utterance already on the wire always gets a final: if
        nothing of it was heard, the final carries what was sent.
        """
        self._check_open(utterance)
        utterance.closed = True
        text = (heard or utterance.text).strip()  # with no ordinal yet, utterance.text is ""
        if not text:
            return None
        ordinal = self._ordinal(utterance)
        return Transcript(role=utterance.role, medium=utterance.medium, text=text, final=True, ordinal=ordinal)

    def complete(self, role: Role, medium: Medium, text: str) -> Transcript:
        """One whole final utterance in a single message (user text, spoken user turns)."""
        if not text:
            raise ProtocolError("a final transcript needs text")
        final = self.close(Utterance(role, medium, text=text))
        assert final is not None
        return final

    def _ordinal(self, utterance: Utterance) -> int:
        if utterance.ordinal is None:
            utterance.ordinal = self.next_ordinal
            self.next_ordinal += 1
        return utterance.ordinal

    @staticmethod
    def _check_open(utterance: Utterance) -> None:
        if utterance.closed:
            raise ProtocolError(f"transcript {utterance.ordinal} is already closed")


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
