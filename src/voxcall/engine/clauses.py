"""Split streaming LLM text into speakable clauses (pure).

The first clause of a reply is cut as early as it is complete (at , ; : or a
sentence end, or after four words) so speech starts while the model is still generating; later
clauses are whole sentences, unless a sentence runs long.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["ClauseSplitter"]

_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:—–]\s")
_LONG = 18  # words after which a later clause may also end at a comma


@dataclass(slots=True)
class ClauseSplitter:
    first_min_words: int = 2
    first_max_words: int = 4
    """The first clause is cut after this many complete words even without punctuation: first audio sooner."""
    _buffer: str = ""
    _emitted: int = 0
    _out: list[str] = field(default_factory=list)

    def feed(self, text: str) -> list[str]:
        """Add text; returns the clauses that are now complete."""
        self._buffer += text
        out: list[str] = []
        while True:
            cut = self._cut()
            if cut is None:
                return out
            clause, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            if clause:
                out.append(clause)
                self._emitted += 1

    def flush(self) -> str:
        """The rest of the text, at the end of the reply."""
        rest, self._buffer = self._buffer.strip(), ""
        if rest:
            self._emitted += 1
        return rest

    def _cut(self) -> int | None:
        match = _SENTENCE_END.search(self._buffer)
        end = match.end() if match else None
        def words_before(i: int) -> int:
            return len(self._buffer[:i].split())

        clause = _CLAUSE_END.search(self._buffer)
        if clause and (end is None or clause.end() < end):
            first = self._emitted == 0 and words_before(clause.end()) >= self.first_min_words
            if first or words_before(clause.end()) >= _LONG:
                return clause.end()
        if end is not None:
            return end
        if self._emitted == 0:
            words = list(re.finditer(r"\S+\s", self._buffer))
            if len(words) >= self.first_max_words:
                return words[self.first_max_words - 1].end()
        return None
