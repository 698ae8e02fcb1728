"""Character trigrams of OCR text, so that a word inside a run is found: a sign read as "NOPARKINGANYTIME" holds
"parking". Both indexes cut the same grams: the local index from these functions, OpenSearch with the
`ocr_grams` analyzer of opensearch_mapping.json (the same folding, letters and digits only, trigrams).

A query word is found in the grams when every trigram of the word is in the photo's text: order is not checked,
which is why only words of MIN_WORD_CHARS or more use them, and they score below a whole-word match.
"""

from __future__ import annotations

import unicodedata

GRAM = 3
MIN_WORD_CHARS = 4
GRAM_SCORE = 0.5  # constant score of a word found only inside a run; a whole-word match scores more


def squeeze(text: str) -> str:
    """Folded (lowercase, no accents) letters and digits only: "No Parking!" -> "noparking"."""
    decomposed = unicodedata.normalize("NFKD", text)
    if decomposed.isascii():  # no combining marks: the per-character test is str.isalnum alone, run in C
        return "".join(filter(str.isalnum, decomposed)).casefold()
    return "".join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch)).casefold()


def text_grams(text: str) -> set[str]:
    squeezed = squeeze(text)
    return {squeezed[i : i + GRAM] for i in range(len(squeezed) - GRAM + 1)}


def word_grams(word: str) -> tuple[str, ...]:
    """The trigrams a query word needs, in order of first appearance; () for a word too short to use them."""
    squeezed = squeeze(word)
    if len(squeezed) < MIN_WORD_CHARS:
        return ()
    return tuple(dict.fromkeys(squeezed[i : i + GRAM] for i in range(len(squeezed) - GRAM + 1)))


def found_in_run(word: str, text: str) -> bool:
    """What a gram match stands for, for explanations: the word's letters appear in a row in the text."""
    squeezed = squeeze(word)
    return len(squeezed) >= MIN_WORD_CHARS and squeezed in squeeze(text)
