"""The text that stands for a photo in semantic search: what was detected, written as plain sentences.

Both backends embed exactly this string (the OpenSearch indexer and the local index call the same function), so
a photo gets the same vector wherever it is indexed. Changing the wording changes every vector: bump
DESCRIPTION_VERSION so a reindex knows to recompute them.
"""

from __future__ import annotations

from collections.abc import Iterable

from photo_organizer.search.models import SearchDocument

DESCRIPTION_VERSION = 1
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
    """Caption first (the most natural sentence), then tags, people, place and the start of any text in the
    photo. Camera, dates and file names are left out: filters handle them, and they only add noise to meaning."""
    parts: list[str] = []
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
