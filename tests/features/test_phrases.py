import pytest

from mdrchca.features.phrases import is_punctuation, phrase_ids


def _offsets(text: str, pieces: list[str]) -> list[tuple[int, int]]:
    """Offsets of consecutive pieces found left to right in text."""
    out, pos = [], 0
    for piece in pieces:
        start = text.index(piece, pos)
        out.append((start, start + len(piece)))
        pos = start + len(piece)
    return out


def test_split_at_punctuation_which_closes_its_phrase() -> None:
    text = "a red star, made of wood."
    pieces = ["a", "red", "star", ",", "made", "of", "wood", "."]
    assert phrase_ids(text, _offsets(text, pieces)) == [0, 0, 0, 0, 1, 1, 1, 1]


def test_split_at_max_length_on_word_boundaries() -> None:
    text = "one two three four five"
    pieces = ["one", "two", "three", "four", "five"]
    assert phrase_ids(text, _offsets(text, pieces), max_phrase_tokens=2) == [0, 0, 1, 1, 2]


def test_word_pieces_stay_together() -> None:
    text = "unbelievable story"
    pieces = ["un", "##believ", "##able", "story"]
    offsets = [(0, 2), (2, 8), (8, 12), (13, 18)]
    # the 3-piece word would overflow a 2-token phrase but is never split; 'story' starts a new phrase
    assert phrase_ids(text, offsets, max_phrase_tokens=2) == [0, 0, 0, 1]
    assert len(pieces) == 4


def test_special_tokens_and_padding_get_minus_one() -> None:
    text = "big box"
    offsets = [(0, 0), (0, 3), (4, 7), (0, 0), (0, 0)]
    assert phrase_ids(text, offsets) == [-1, 0, 0, -1, -1]


def test_consecutive_punctuation() -> None:
    text = "wow!! ok"
    offsets = [(0, 3), (3, 4), (4, 5), (6, 8)]
    assert phrase_ids(text, offsets) == [0, 0, 1, 2]


def test_punctuation_detection() -> None:
    assert is_punctuation(",") and is_punctuation("...") and is_punctuation("/")
    assert not is_punctuation("a") and not is_punctuation("")


def test_bad_max_length() -> None:
    with pytest.raises(ValueError):
        phrase_ids("x", [(0, 1)], max_phrase_tokens=0)
