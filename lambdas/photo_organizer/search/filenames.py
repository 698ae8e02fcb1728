"""What a file name says about its photo: the words of a name a person gave ("hubble_deep_field.jpg" -> "hubble
deep field"), nothing for a name a camera or an app made up ("IMG_2034.JPG", "PXL_20240714_093112345.jpg",
"WhatsApp Image 2024-07-14 at 09.31.12.jpeg", a hash).

A name splits at separators into tokens; a token of hex digits with a digit among them (a hash, a UUID's part,
a counter) is no word, a token mixing letters and digits gives its runs of 3+ letters ("Paris2019" -> "paris",
"DSC01234" -> "dsc"), camelCase splits ("EiffelTower" -> "eiffel tower"). The words cameras and apps put in the
names they invent are dropped, and so is every single letter. search.describe puts these words into the text
that stands for the photo in meaning search (both backends embed that same text).
"""

from __future__ import annotations

import re

# Words that camera and app naming schemes put into the names they make up (Android, iOS, Pixel, Samsung, DCF
# cameras, scanners, messengers, editors' "copy"/"edited" suffixes), and file types.
GENERATED_NAME_WORDS = frozenset(
    "img image images dsc dscn dscf dsf dcim pxl mvimg vid video mov movie pano burst cover photo photos pic pics "
    "picture pictures scan scanned copy edited edit final export exported whatsapp signal telegram at "
    "jpg jpeg png heic heif tif tiff gif webp raw dng".split()
)
_TOKENS = re.compile(r"[\W_]+")
_HEX = re.compile(r"[0-9a-fA-F]+")
_LETTERS = re.compile(r"[^\W\d_]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}$")


def _token_words(token: str) -> list[str]:
    if token.casefold() in GENERATED_NAME_WORDS or (_HEX.fullmatch(token) and not token.isalpha()):
        return []  # a hash or a counter ("cafe" and "bed" are hex too, but have no digit)
    runs = _LETTERS.findall(token)
    if len(runs) != 1 or runs[0] != token:  # letters mixed with digits: a counter's prefix or a name and a year
        runs = [run for run in runs if len(run) >= 3]
    return [word.casefold() for run in runs for word in _CAMEL.sub(" ", run).split()]


def filename_words(filename: str) -> str:
    """The name's own words, lowercase, in order, each once; "" when it has none (a generated name)."""
    stem = _EXTENSION.sub("", filename.replace("\\", "/").rsplit("/", 1)[-1])
    words: list[str] = []
    for token in _TOKENS.split(stem):
        for word in _token_words(token):
            if len(word) > 1 and word not in GENERATED_NAME_WORDS and word not in words:
                words.append(word)
    return " ".join(words)
