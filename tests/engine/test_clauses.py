from voxcall.engine.clauses import ClauseSplitter


def feed_all(chunks: list[str]) -> list[str]:
    s = ClauseSplitter()
    out = [c for chunk in chunks for c in s.feed(chunk)]
    rest = s.flush()
    return out + ([rest] if rest else [])


def test_first_clause_cuts_at_a_comma_later_ones_at_sentence_ends() -> None:
    text = "Sure thing, the capital of France is Paris, a lovely city. It has 2.1 million people! Anything else?"
    chunks = [text[i:i + 3] for i in range(0, len(text), 3)]
    assert feed_all(chunks) == ["Sure thing,", "the capital of France is Paris, a lovely city.", "It has 2.1 million people!", "Anything else?"]


def test_single_word_before_a_comma_waits_and_decimals_do_not_split() -> None:
    assert feed_all(["Well, ", "pi is 3.14 roughly. ", "Ok"]) == ["Well, pi is 3.14 roughly.", "Ok"]


def test_clause_is_released_as_soon_as_it_is_complete() -> None:
    s = ClauseSplitter()
    assert s.feed("Hello there") == []
    assert s.feed("! How") == ["Hello there!"]
    assert s.feed(" are") == [] and s.flush() == "How are"


def test_a_long_first_sentence_is_cut_after_four_words() -> None:
    assert feed_all(["The capital of France is ", "Paris and it is lovely. Yes."]) == [
        "The capital of France", "is Paris and it is lovely.", "Yes."]
