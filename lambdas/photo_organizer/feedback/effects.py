"""What feedback does to a photo as it is shown and indexed: effective tags and caption, the stored overlay form.

Both backends and every reader (photo view, the local index, the cloud stream indexer) go through these pure
functions, so a rejected tag leaves the photo view, its caption and search in the same way everywhere.

Caption rule: a rejected caption is "" until undone. A tag that leaves the photo (rejected, or suppressed by the
tagging model and not confirmed) takes the caption with it when the caption names it (its label name or the
phrase a composed caption uses for it, e.g. "on a beach"): the caption is then recomposed from the remaining
labels (analysis.captions.compose_caption). A caption that does not name it is kept: recomposing a composed
caption without a label it never used gives the same text, and a model-written caption that does not mention
the tag is still true.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from photo_organizer.analysis.captions import SCENE_PHRASES, SUBJECT_NOUNS, compose_caption
from photo_organizer.analysis.models import Label
from photo_organizer.feedback.models import SUGGEST_FROM, SUPPRESS_BELOW, TagOverlay, TagSuggestion, effective_tags

# ---- the stored overlay (SQLite JSON column, DynamoDB `feedback` map) -------------------------------------------


def overlay_document(overlay: TagOverlay) -> dict[str, Any]:
    """{"added", "confirmed", "rejected": sorted string lists, "caption_rejected": bool, "irrelevant_queries": list}."""
    return {
        "added": sorted(overlay.added),
        "confirmed": sorted(overlay.confirmed),
        "rejected": sorted(overlay.rejected),
        "caption_rejected": bool(overlay.caption_rejected),
        "irrelevant_queries": sorted(overlay.irrelevant_queries),
    }


def overlay_from_document(document: Mapping[str, Any] | None) -> TagOverlay:
    """The overlay from its stored form; missing or malformed parts count as empty (a reader never fails on it)."""
    if not isinstance(document, Mapping):
        return TagOverlay()

    def strings(name: str) -> frozenset[str]:
        value = document.get(name) or ()
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            return frozenset()
        return frozenset(str(v) for v in value if str(v).strip())

    return TagOverlay(
        added=strings("added"),
        confirmed=strings("confirmed"),
        rejected=strings("rejected"),
        caption_rejected=bool(document.get("caption_rejected", False)),
        irrelevant_queries=strings("irrelevant_queries"),
    )


# ---- suggestions --------------------------------------------------------------------------------------------------


def suppressed_tags(suggestions: Iterable[TagSuggestion]) -> frozenset[str]:
    """Analysis tags the tagging model doubts (on the photo, below SUPPRESS_BELOW): hidden like a rejection."""
    return frozenset(s.tag.casefold() for s in suggestions if s.on_photo and s.confidence < SUPPRESS_BELOW)


def shown_suggestions(
    suggestions: Iterable[TagSuggestion], overlay: TagOverlay, present: Iterable[str] = ()
) -> list[TagSuggestion]:
    """Tags worth offering (not on the photo, at least SUGGEST_FROM), most confident first; never one the user
    already rejected, added or confirmed, nor one the photo shows anyway."""
    known = set(overlay.rejected) | set(overlay.added) | set(overlay.confirmed) | {t.casefold() for t in present}
    offered = [s for s in suggestions if not s.on_photo and s.confidence >= SUGGEST_FROM and s.tag.casefold() not in known]
    return sorted(offered, key=lambda s: (-s.confidence, s.tag))


def suggestions_from_items(value: Any) -> list[TagSuggestion]:
    """The photo item's `suggestions` list of maps {tag, confidence, on_photo}; malformed entries are skipped."""
    out: list[TagSuggestion] = []
    for entry in value or ():
        if not isinstance(entry, Mapping):
            continue
        try:
            out.append(
                TagSuggestion(
                    tag=str(entry["tag"]),
                    confidence=float(entry["confidence"]),
                    on_photo=bool(entry.get("on_photo", False)),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return out


# ---- tags and caption after feedback -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CaptionContext:
    """What a recomposed caption may say besides the labels: one entry per detected face (None: unnamed), the
    place's short name and the local capture time."""

    people_names: Sequence[str | None] = ()
    place_name: str | None = None
    taken_at: datetime | date | None = None


def caption_context(
    names: Sequence[str], face_count: int, place_name: str | None, taken_at: datetime | date | None
) -> CaptionContext:
    """The named people of the photo, then one None per other detected face (as the photo view composes it)."""
    return CaptionContext(
        people_names=[*names, *([None] * max(0, face_count - len(names)))], place_name=place_name, taken_at=taken_at
    )


@dataclass(frozen=True)
class PhotoAfterFeedback:
    tags: list[str]  # in the labels' order and spelling, then the added/confirmed ones not among them
    caption: str


def removed_terms(labels: Sequence[Label], overlay: TagOverlay, suppressed: Iterable[str] = ()) -> frozenset[str]:
    """Case-folded label names (and rejected parents) that feedback takes off the photo."""
    kept = set(overlay.confirmed) | set(overlay.added)
    gone = set(overlay.rejected) | ({s.casefold() for s in suppressed} - kept)
    return frozenset(gone)


def apply_feedback(
    labels: Sequence[Label],
    caption: str,
    overlay: TagOverlay | None,
    suppressed: Iterable[str] = (),
    context: CaptionContext | None = None,
) -> PhotoAfterFeedback:
    """The photo's tags and caption as feedback leaves them (see the module's caption rule)."""
    overlay = overlay or TagOverlay()
    suppressed = frozenset(s.casefold() for s in suppressed)
    pairs = [(label.name, label.parents) for label in labels]
    effective = set(effective_tags(pairs, overlay, suppressed))
    ordered: dict[str, str] = {}  # case-folded -> as the analysis spelled it ("Cat"); the user's own as normalised
    for name, parents in pairs:
        for term in (name, *parents):
            if term.casefold() in effective:
                ordered.setdefault(term.casefold(), term)
    for term in sorted(effective):
        ordered.setdefault(term, term)
    tags = list(ordered.values())

    if overlay.caption_rejected:
        return PhotoAfterFeedback(tags=tags, caption="")
    gone = removed_terms(labels, overlay, suppressed)
    if not gone or not caption or not _names_any(caption, gone):
        return PhotoAfterFeedback(tags=tags, caption=caption)
    remaining = [label for label in labels if label.name.casefold() not in gone]
    context = context or CaptionContext()
    recomposed = compose_caption(list(context.people_names), remaining, context.place_name, context.taken_at)
    return PhotoAfterFeedback(tags=tags, caption=recomposed)


def _names_any(caption: str, terms: Iterable[str]) -> bool:
    text = caption.casefold()
    for term in terms:
        phrases = {term}
        if term in SUBJECT_NOUNS:
            phrases.add(SUBJECT_NOUNS[term].casefold())
        if term in SCENE_PHRASES:
            phrases.update(p.casefold() for p in SCENE_PHRASES[term])
        for phrase in phrases:
            if re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text):
                return True
        # a plural in prose ("dogs on the beach") names the tag too
        if re.search(rf"(?<!\w){re.escape(term)}(?:s|es)(?!\w)", text):
            return True
    return False
