"""Phrase segmentation of a tokenised text, from the fast tokenizer's character offsets.

The rule (MODEL.md §4): a phrase is a contiguous span of tokens. A new phrase starts

1. after a token that is punctuation (``, . ; : ! ? ( ) [ ] " / -`` and the like): the punctuation token
   closes the phrase it ends, so every token belongs to exactly one phrase;
2. at a word boundary, when adding the next word would make the phrase longer than ``max_phrase_tokens``
   tokens (word pieces of one word are never split across phrases, so a single word longer than the
   limit stays whole).

A word starts where a token's start offset is past the previous token's end (there was white space) or
where either token is punctuation. Phrase ids are 0, 1, 2, ... in order; padding and special tokens get -1.
"""

from __future__ import annotations

import unicodedata


def is_punctuation(text: str) -> bool:
    """True when every character of ``text`` is Unicode punctuation (category P*) or a symbol like '/'."""
    return bool(text) and all(unicodedata.category(ch).startswith("P") or ch in "/|" for ch in text)


def phrase_ids(text: str, offsets: list[tuple[int, int]], max_phrase_tokens: int = 8) -> list[int]:
    """Phrase id of each token given its ``(start, end)`` character offsets in ``text``.

    Tokens with offsets ``(0, 0)`` (special tokens, padding) get -1.
    """
    if max_phrase_tokens < 1:
        raise ValueError("max_phrase_tokens must be at least 1")
    ids: list[int] = []
    phrase = -1
    length = 0
    prev_end = None
    prev_punct = True  # so that the first real token opens phrase 0
    for start, end in offsets:
        if start == end:
            ids.append(-1)
            continue
        piece = text[start:end]
        punct = is_punctuation(piece)
        new_word = prev_end is None or start > prev_end or punct or prev_punct
        too_long = new_word and not punct and length + _word_length(offsets, text, start) > max_phrase_tokens
        if prev_punct or phrase < 0 or too_long:
            phrase += 1
            length = 0
        ids.append(phrase)
        length += 1
        prev_end = end
        prev_punct = punct
    return ids


def _word_length(offsets: list[tuple[int, int]], text: str, start: int) -> int:
    """Number of tokens of the word beginning at character ``start`` (contiguous, non-punctuation pieces)."""
    count = 0
    expected = start
    for s, e in offsets:
        if s < start or s == e:
            continue
        if s != expected or (count and is_punctuation(text[s:e])):
            break
        count += 1
        expected = e
    return max(count, 1)
