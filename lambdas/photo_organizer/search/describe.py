"""The text that stands for a photo in semantic search: what was detected, written as plain sentences.

Both backends embed exactly this string (the OpenSearch indexer and the local index call the same function), so
a photo gets the same vector wherever it is indexed. Changing the wording changes every vector: bump
DESCRIPTION_VERSION so a reindex knows to recompute them.
"""

from __future__ import annotations

from collections.abc import Iterable

from photo_organizer.search.filenames import filename_words
from photo_organizer.search.models import SearchDocument

DESCRIPTION_VERSION = 2  # 2: a file name's own words lead the description
# all-MiniLM-L6-v2 was trained on ≤128 tokens and reads at most 256: a long receipt would drown the tags.
OCR_CHARS = 200


def _unique(values: Iterable[str | None]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        text = " ".join((value or "").replace("_", " ").split())
        if text and text.casefold() not in seen:
            seen.add(text.casefold())
            out.append(text)
    return out


def _truncate_words(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "…"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?…" else text + "."


def describe(document: SearchDocument) -> str:
    """The words of a name a person gave the file first ("hubble deep field"), then the caption (the most natural
    sentence the analysis composes), tags, people, place and the start of any text in the photo. Camera and dates
    are left out: filters handle them, and they only add noise to meaning; so are names cameras and apps make up
    (search.filenames).

    Why the file name leads: it is what a person saw in the photo, where the caption and tags are what a weak
    local classifier guessed (the Hubble Deep Field's tags say "electronics"). Measured on benchmarks/relevance.py
    (all-MiniLM-L6-v2): "galaxies" against that photo 0.20 without the name, 0.35 with it after the tags under a
    "File:" label, 0.42 leading; with the name leading, three meaning-only queries whose photos the classifier
    cannot see clear MEANING_FLOOR, and no query ranks worse."""
    parts: list[str] = []
    title = filename_words(document.filename)
    if title:
        parts.append(_sentence(title))
    if document.caption.strip():
        parts.append(_sentence(" ".join(document.caption.split())))
    tags = _unique(document.tags)
    if tags:
        parts.append(_sentence("Tags: " + ", ".join(tags)))
    caption = document.caption.casefold()
    names = [n for n in _unique(p.name for p in document.people) if n.casefold() not in caption]
    if names:
        parts.append(_sentence("People: " + ", ".join(names)))
    if document.place is not None:
        place = _unique([document.place.city, document.place.region, document.place.country])
        if place:
            parts.append(_sentence("Place: " + ", ".join(place)))
    if document.ocr_text.strip():
        parts.append("Text: " + _truncate_words(document.ocr_text, OCR_CHARS))
    return " ".join(parts)
