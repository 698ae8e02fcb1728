"""Captions composed only from what was detected: nothing is invented."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from photo_organizer.analysis.models import Label


# Scene label -> (phrase after a subject, phrase when the scene is the subject). Only scenes whose wording is
# safe in any photo; a label not listed here never reaches a caption.
SCENE_PHRASES: dict[str, tuple[str, str]] = {
    "beach": ("on a beach", "A beach"),
    "mountain": ("in the mountains", "Mountains"),
    "forest": ("in a forest", "A forest"),
    "park": ("in a park", "A park"),
    "garden": ("in a garden", "A garden"),
    "snow": ("in the snow", "Snow"),
    "lake": ("by a lake", "A lake"),
    "sea": ("by the sea", "The sea"),
    "desert": ("in the desert", "A desert"),
    "city": ("in the city", "A city"),
    "restaurant": ("at a restaurant", "A restaurant"),
    "museum": ("at a museum", "A museum"),
    "concert": ("at a concert", "A concert"),
    "wedding": ("at a wedding", "A wedding"),
    "party": ("at a party", "A party"),
    "swimming pool": ("by a pool", "A swimming pool"),
}
# Subjects used only when no person was detected.
SUBJECT_NOUNS: dict[str, str] = {
    "dog": "A dog", "cat": "A cat", "bird": "A bird", "horse": "A horse", "food": "Food", "car": "A car",
    "flower": "Flowers", "boat": "A boat", "document": "A document", "screenshot": "A screenshot",
}


def _people_phrase(people_names: Sequence[str | None]) -> str:
    named = [n.strip() for n in people_names if n and n.strip()]
    unnamed = len(people_names) - len(named)
    names = list(dict.fromkeys(named))  # two faces given the same name are one person
    if not names:
        return "" if unnamed == 0 else ("A person" if unnamed == 1 else f"{unnamed} people")
    if unnamed == 0 and len(names) <= 3:
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    shown = names[:2]
    others = len(names) - len(shown) + unnamed
    return ", ".join(shown) + f" and {others} other" + ("s" if others > 1 else "")


def _best(labels: Sequence[Label], table: Mapping[str, Any], min_confidence: float) -> Any:
    ranked = sorted((l for l in labels if l.confidence >= min_confidence), key=lambda l: (-l.confidence, l.name))
    for label in ranked:
        if label.name.casefold() in table:
            return table[label.name.casefold()]
    return None


MAX_TAGS_IN_CAPTION = 3


def _found_tags(labels: Sequence[Label], min_confidence: float) -> str:
    """"Cup, coffee and tableware": the most confident tags that are no other tag's parent (a "Mammal" beside
    "Cat" says nothing more), for a photo with no person and no known subject or scene. Labels under
    min_confidence are used only when none reaches it (see compose_caption)."""
    sure = [l for l in labels if l.confidence >= min_confidence] or list(labels)
    parents = {p.casefold() for l in sure for p in l.parents}
    ranked = sorted(sure, key=lambda l: (l.name.casefold() in parents, -l.confidence, l.name))
    names = list(dict.fromkeys(l.name.strip() for l in ranked if l.name.strip()))[:MAX_TAGS_IN_CAPTION]
    if not names:
        return ""
    words = [names[0][0].upper() + names[0][1:]] + [n[0].lower() + n[1:] if n[1:2].islower() or len(n) == 1
                                                     else n for n in names[1:]]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def compose_caption(
    people_names: Sequence[str | None],
    labels: Sequence[Label],
    place: str | None,
    taken_at: datetime | date | None,
    *,
    min_confidence: float = 80.0,
) -> str:
    """"Ana and 2 others on a beach in Lagos, Portugal · July 2024", from detections only.

    people_names has one entry per detected face (None: a face not yet named). A part with nothing behind it is
    left out, never guessed. With no face and no known subject or scene, the most confident tags stand for the
    subject ("Cup, coffee and tableware in Madison"); when there is no place or date either, the best tags at any
    confidence do: every analysed photo with a tag gets a caption.
    """
    subject = _people_phrase(people_names)
    if not subject:
        subject = _best(labels, SUBJECT_NOUNS, min_confidence) or ""
    scene = _best(labels, SCENE_PHRASES, min_confidence)
    place = (place or "").strip()
    parts = []
    if subject:
        parts.append(subject + (f" {scene[0]}" if scene else ""))
    elif scene:
        parts.append(scene[1])
    elif not place and not taken_at and (tags := _found_tags(labels, min_confidence)):
        # nothing else to say: the tags the analysis kept (each passed the analyser's own threshold) name it
        parts.append(tags)
    elif tags := _found_tags([l for l in labels if l.confidence >= min_confidence], min_confidence):
        parts.append(tags)
    if place:
        parts.append(f"in {place}" if parts else place)
    text = " ".join(parts)
    when = f"{taken_at:%B %Y}" if taken_at else ""
    return " · ".join(p for p in (text, when) if p)
