"""Fitting a conversation into the model's context, in time linear in what is kept.

Each message's tokens are counted once (and cached), walking from the newest message
back until the budget is spent; the prompt is then rendered and tokenized once. A
history of 20,000 messages costs what the few hundred that fit cost, not the square
of the history (which dropping one turn at a time and re-tokenising the whole
prompt did).

When a conversation outgrows the context, the cut is made with room to spare and
remembered by the caller (`Fit.start`), so the next turns keep the same first message
and llama.cpp can reuse the KV cache of the prompt's prefix instead of re-reading the
whole context every turn.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from voxcall.errors import ProviderError

__all__ = ["Fit", "PromptBuilder"]

Message = dict[str, str]

_OPEN = "\x00voxcall-open-end\x00"
"""Marks where the last message's text ends in a rendered prompt (`open_end`); never sent to the model."""

MESSAGE_OVERHEAD = 8
"""Tokens a chat template adds around one message (ChatML adds about 5); an overestimate is safe."""


@dataclass(frozen=True, slots=True)
class Fit:
    """A prompt that fits: its tokens, and the index of the first non-system message kept."""

    tokens: list[int]
    start: int


class PromptBuilder:
    """Renders chat messages into prompt tokens that fit a budget, dropping the oldest turns.

    Args:
        tokenize: text (with special tokens) -> tokens.
        render: the chat template: messages -> prompt text, ending with the assistant's turn.
        cache_size: how many per-message token counts are remembered.
    """

    def __init__(
        self, tokenize: Callable[[str], list[int]], render: Callable[[list[Message]], str], *, cache_size: int = 8192
    ) -> None:
        self._tokenize = tokenize
        self._render = render
        self._counts: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._cache_size = cache_size

    def build(self, messages: Sequence[Message], suffix: str, budget: int, *, start: int = 0,
              open_end: bool = False) -> Fit:
        """Tokens of `messages` rendered, plus `suffix`, in at most `budget` tokens.

        `open_end`: the prompt stops right after the last message's text, before whatever the
        template closes a message with (and before the assistant's turn): the prefix of every
        prompt in which that message goes on.

        A leading system message and the newest message are always kept; between them, the
        newest messages that fit. `start` is the previous `Fit.start` of this conversation:
        if everything from there still fits, the cut stays there (a stable prefix); when it
        has to move, it leaves a quarter of the budget free for the turns to come.

        Raises:
            ProviderError: the system message and the newest message alone do not fit.
        """
        first = 1 if messages and messages[0]["role"] == "system" else 0
        head, body = list(messages[:first]), messages[first:]
        room = budget - sum(self.count(m) for m in head) - len(self._tokenize(suffix))
        keep = self._keep_from(body, room, start) if body else 0
        while True:
            tokens = self._tokenize(self._rendered(head + list(body[keep:]), open_end) + suffix)
            if len(tokens) <= budget:
                return Fit(tokens, keep)
            if keep >= len(body) - 1:
                raise ProviderError(f"prompt of {len(tokens)} tokens does not fit the context of {budget} tokens")
            keep = self._drop(body, keep, len(tokens) - budget)

    def _rendered(self, messages: list[Message], open_end: bool) -> str:
        if not open_end or not messages:
            return self._render(messages)
        last = messages[-1]
        text = self._render([*messages[:-1], {**last, "content": last["content"] + _OPEN}])
        return text[: text.rindex(_OPEN)]

    def count(self, message: Message) -> int:
        """The tokens `message` takes in a prompt (estimated, on the safe side); cached."""
        key = (message["role"], message["content"])
        if (count := self._counts.get(key)) is not None:
            self._counts.move_to_end(key)
            return count
        count = len(self._tokenize(message["content"])) + MESSAGE_OVERHEAD
        self._counts[key] = count
        if len(self._counts) > self._cache_size:
            self._counts.popitem(last=False)
        return count

    def _keep_from(self, body: Sequence[Message], room: int, start: int) -> int:
        """The index of the oldest message to keep: the newest messages that fit `room`."""
        start = min(max(start, 0), len(body) - 1)
        used, keep = 0, len(body)
        while keep > start:
            used += self.count(body[keep - 1])
            if used > room:
                break
            keep -= 1
        else:
            return start  # everything from the previous cut on still fits: keep the prefix stable
        # The cut moves: keep the newest messages that fill three quarters of the room.
        target, used, keep = room - room // 4, 0, len(body)
        while keep > 0 and used + self.count(body[keep - 1]) <= target:
            used += self.count(body[keep - 1])
            keep -= 1
        return min(keep, len(body) - 1)

    def _drop(self, body: Sequence[Message], keep: int, excess: int) -> int:
        """Move the cut past the oldest kept messages until about `excess` tokens are dropped (at least one)."""
        dropped = 0
        while keep < len(body) - 1 and (dropped < excess or dropped == 0):
            dropped += self.count(body[keep])
            keep += 1
        return keep
