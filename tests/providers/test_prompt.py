"""PromptBuilder: the newest turns that fit, in work linear in what is kept (tokenizer calls counted)."""

from __future__ import annotations

import pytest

from voxcall.errors import ProviderError
from voxcall.providers.prompt import MESSAGE_OVERHEAD, PromptBuilder

Message = dict[str, str]


class Counting:
    """A word tokenizer and a ChatML-like template (5 tokens around each message) that count their work."""

    def __init__(self) -> None:
        self.calls = 0
        self.words = 0

    def tokenize(self, text: str) -> list[int]:
        self.calls += 1
        tokens = [hash(word) for word in text.split()]
        self.words += len(tokens)
        return tokens

    @staticmethod
    def render(messages: list[Message]) -> str:
        return "".join(f"<s> {m['role']} {m['content']} </s> \n " for m in messages) + "<s> assistant "


def history(count: int) -> list[Message]:
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i} about the weather today"}
             for i in range(count)]
    return [{"role": "system", "content": "You are a helpful assistant."}, *turns]


def kept(tokens_text: str) -> list[str]:
    return [part.split()[1] for part in tokens_text.split("<s>")[2:-1]]


@pytest.mark.parametrize("count", [2_000, 20_000])
def test_a_long_history_keeps_the_newest_turns(count: int) -> None:
    t = Counting()
    builder = PromptBuilder(t.tokenize, t.render)
    messages = history(count)
    fit = builder.build(messages, "", 1000)
    assert len(fit.tokens) <= 1000
    assert fit.start > 0
    text = t.render([messages[0], *messages[1 + fit.start :]])
    assert len(t.tokenize(text)) == len(fit.tokens)  # system prompt + the newest turns, nothing else
    assert messages[-1]["content"] in text and messages[0]["content"] in text


def test_truncation_work_is_linear_not_quadratic() -> None:
    work = {}
    for count in (2_000, 20_000):
        t = Counting()
        PromptBuilder(t.tokenize, t.render).build(history(count), "", 1000)
        work[count] = (t.calls, t.words)
    calls, words = work[2_000]
    assert calls <= 2_000 and words <= 2_000 * 20  # at most once per message: linear
    assert work[20_000][0] <= 10 * calls and work[20_000][1] <= 10 * words  # 10x the history, at most 10x the work
    assert work[20_000][0] <= calls + 5  # in fact: only what fits is counted, whatever the history's length
    # Dropping one turn at a time and re-tokenising the prompt took ~count calls of ~budget words each.


def test_counts_are_cached_and_the_cut_stays_put() -> None:
    t = Counting()
    builder = PromptBuilder(t.tokenize, t.render)
    messages = history(2_000)
    first = builder.build(messages, "", 1000)
    calls = t.calls
    messages.append({"role": "user", "content": "and tomorrow?"})
    second = builder.build(messages, "", 1000, start=first.start)
    assert second.start == first.start  # same first message: the prompt's prefix (and KV cache) is reused
    assert second.tokens[: len(first.tokens) - 3] == first.tokens[: len(first.tokens) - 3]
    assert t.calls - calls <= 3  # the new message, the suffix and the final prompt: the rest was cached
    fits = [second]
    for _ in range(200):  # the conversation grows until the cut has to move
        messages.append({"role": "user", "content": "more words about the weather please"})
        fits.append(builder.build(messages, "", 1000, start=fits[-1].start))
        if fits[-1].start != first.start:
            break
    moved = fits[-1]
    assert moved.start > first.start and 10 < len(fits) < 200  # a quarter of the context was left free
    assert all(len(fit.tokens) <= 1000 for fit in fits)
    assert len(moved.tokens) <= 1000 - 1000 // 4 + MESSAGE_OVERHEAD  # room left for the turns to come
    messages.append({"role": "user", "content": "thanks"})
    assert builder.build(messages, "", 1000, start=moved.start).start == moved.start


def test_everything_fits_and_nothing_is_cut() -> None:
    t = Counting()
    messages = history(10)
    fit = PromptBuilder(t.tokenize, t.render).build(messages, "{", 1000)
    assert fit.start == 0
    assert fit.tokens == t.tokenize(t.render(messages) + "{")


def test_the_newest_message_alone_too_long_is_an_error() -> None:
    t = Counting()
    builder = PromptBuilder(t.tokenize, t.render)
    with pytest.raises(ProviderError, match="does not fit"):
        builder.build([{"role": "user", "content": "word " * 2000}], "", 1000)
    with pytest.raises(ProviderError, match="does not fit"):
        builder.build([*history(3), {"role": "user", "content": "word " * 2000}], "", 1000)


def test_an_underestimate_is_corrected() -> None:
    """A template that adds far more per message than the estimate: the cut moves until it fits."""
    t = Counting()

    def heavy(messages: list[Message]) -> str:
        return "".join(f"{'pad ' * 30}{m['content']} " for m in messages)

    fit = PromptBuilder(t.tokenize, heavy).build(history(500), "", 1000)
    assert len(fit.tokens) <= 1000 and fit.start > 400
