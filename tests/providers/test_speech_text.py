"""The pure parts of the embedded speech back ends: text splitting for Piper, the hallucination filter."""

from __future__ import annotations

import numpy as np
import pytest

from voxcall.providers.speech import is_hallucination, loudness_dbfs
from voxcall.providers.speech_piper import split_text


def test_sentences_are_split_and_whitespace_normalised() -> None:
    assert split_text("Hello there.  How are\nyou?   Fine!") == ["Hello there.", "How are you?", "Fine!"]
    assert split_text('He said "stop." Then he left.') == ['He said "stop."', "Then he left."]
    assert split_text("No punctuation at the end") == ["No punctuation at the end"]
    assert split_text("") == [] and split_text("  \n ") == []


def test_abbreviations_and_decimals_do_not_end_sentences() -> None:
    assert split_text("Dr. Smith paid 3.50 dollars, e.g. cash. Mr. Jones did not.", first_chars=0) == [
        "Dr. Smith paid 3.50 dollars, e.g. cash.",
        "Mr. Jones did not.",
    ]


def test_a_long_first_sentence_is_cut_at_clauses() -> None:
    text = "Well, the quick brown fox jumps over the lazy dog, and then it runs away; nobody saw it again. Next one."
    assert split_text(text) == [
        "Well, the quick brown fox jumps over the lazy dog,",  # "Well," alone is too short a piece
        "and then it runs away;",
        "nobody saw it again.",
        "Next one.",
    ]
    assert split_text(text, first_chars=0)[0] == text.removesuffix(" Next one.")


def test_later_sentences_are_cut_only_when_very_long() -> None:
    later = "This later sentence has a clause, and another clause, but it stays whole because it is short enough."
    assert split_text(f"Hi. {later}") == ["Hi.", later]
    assert split_text(f"Hi. {later}", max_chars=60) == [
        "Hi.",
        "This later sentence has a clause,",
        "and another clause,",
        "but it stays whole because it is short enough.",
    ]


def test_a_short_clause_at_the_end_joins_the_one_before() -> None:
    assert split_text("We could go to the park or the museum, or not.", first_chars=10) == [
        "We could go to the park or the museum, or not."
    ]


@pytest.mark.parametrize(
    ("text", "loudness", "no_speech", "dropped"),
    [
        ("", -20.0, 0.0, True),
        ("  ", -20.0, 0.0, True),
        ("[Music]", -20.0, 0.0, True),
        ("(upbeat music) ♪", -20.0, 0.0, True),
        ("...", -20.0, 0.0, True),
        ("Thank you.", -55.0, 0.1, True),  # quiet: invented
        ("Thank you.", -20.0, 0.7, True),  # Whisper doubts it heard speech
        ("Thank you.", -20.0, 0.05, False),  # said clearly
        ("you", -50.0, 0.59, True),
        ("Thanks for watching!", -45.0, 0.2, True),
        ("Thanks for watching!", -15.0, 0.0, False),
        ("Subtitles by the Amara.org community", -48.0, 0.3, True),
        ("What is the capital of France?", -55.0, 0.9, False),  # not a known phrase: kept
    ],
)
def test_hallucination_filter(text: str, loudness: float, no_speech: float, dropped: bool) -> None:
    assert is_hallucination(text, loudness, no_speech) is dropped


def test_loudness_ignores_the_silence_around_speech() -> None:
    rng = np.random.default_rng(0)
    tone = (0.1 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)  # RMS -23 dBFS
    padded = np.concatenate([np.zeros(32000, np.float32), tone, np.zeros(32000, np.float32)])
    assert loudness_dbfs(tone) == pytest.approx(-23.0, abs=0.1)
    assert loudness_dbfs(padded) == pytest.approx(-23.0, abs=0.1)
    assert loudness_dbfs(np.zeros(16000, np.float32)) == -200.0
    assert loudness_dbfs((rng.standard_normal(16000) * 0.001).astype(np.float32)) == pytest.approx(-60, abs=1)
    assert loudness_dbfs(np.full(100, 0.5, np.float32)) == pytest.approx(-6.02, abs=0.01)  # shorter than a frame
    assert loudness_dbfs(np.zeros(0, np.float32)) == -200.0
