"""Phrase segmentation of a tokenised text, from the fast tokenizer's character offsets.

The rule (the paper's *Phrase-Image Region Alignment*): a phrase is a contiguous span of tokens. A new phrase starts

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

    Tokens with offsets ``(0, 0)`` (special tokens, padding) get -1. Linear in the number of tokens.
    """
    if max_phrase_tokens < 1:
        raise ValueError("max_phrase_tokens must be at least 1")
    real = [k for k, (start, end) in enumerate(offsets) if start != end]
    punct = [is_punctuation(text[offsets[k][0] : offsets[k][1]]) for k in real]
    # a token starts a word after white space, and punctuation is a word of its own
    new_word = [
        j == 0 or offsets[k][0] > offsets[real[j - 1]][1] or punct[j] or punct[j - 1] for j, k in enumerate(real)
    ]
    word_length = [0] * len(real)  # tokens of the word starting at j (0 elsewhere)
    start_j = 0
    for j in range(1, len(real) + 1):
        if j == len(real) or new_word[j]:
            word_length[start_j] = j - start_j
            start_j = j
    ids = [-1] * len(offsets)
    phrase, length = -1, 0
    for j, k in enumerate(real):
        too_long = new_word[j] and not punct[j] and length + word_length[j] > max_phrase_tokens
        if j == 0 or punct[j - 1] or too_long:
            phrase += 1
            length = 0
        ids[k] = phrase
        length += 1
    return ids
