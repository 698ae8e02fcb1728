"""Feedback events: what the API accepts, what is stored and recorded, and what they do to a photo's tags.

One event = one correction. It is applied at once (the photo's effective tags, caption, people, search results
change in the same request) and recorded twice: as current state in the metadata store (where undo finds it) and
as one line of the append-only, date-partitioned JSON Lines dataset the retraining reads
(feedback.dataset). Undo is an event too (`undo`, naming the event it undoes): training sees both, and an undo
can itself never be undone.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

TAG_MAX_CHARS = 60
QUERY_MAX_CHARS = 500
_SPACES = re.compile(r"\s+")


class FeedbackType(StrEnum):
    TAG_CONFIRMED = "tag_confirmed"
    TAG_REJECTED = "tag_rejected"
    TAG_ADDED = "tag_added"  # a suggested tag taken, or the user's own ("grandma's house")
    CAPTION_REJECTED = "caption_rejected"
    FACE_ASSIGNED = "face_assigned"  # this face is this person (also what POST /faces/{id}/move records)
    FACE_REJECTED = "face_not_person"  # this face is not this person (also POST /faces/{id}/not-person)
    SEARCH_RELEVANT = "search_relevant"
    SEARCH_IRRELEVANT = "search_irrelevant"
    UNDO = "undo"  # recorded by DELETE /feedback/{id}; never accepted from POST /feedback


TAG_TYPES = frozenset({FeedbackType.TAG_CONFIRMED, FeedbackType.TAG_REJECTED, FeedbackType.TAG_ADDED})
FACE_TYPES = frozenset({FeedbackType.FACE_ASSIGNED, FeedbackType.FACE_REJECTED})
SEARCH_TYPES = frozenset({FeedbackType.SEARCH_RELEVANT, FeedbackType.SEARCH_IRRELEVANT})


class FeedbackOrigin(StrEnum):
    """Where the answer was given: review-queue answers are what the uncertainty sampling is measured on."""

    PHOTO = "photo"
    REVIEW = "review"
    SEARCH = "search"
    PEOPLE = "people"


def refuse_control_characters(text: str, what: str) -> str:
    """`text` unchanged, or ValueError when it holds control or format characters (bidi overrides and isolates,
    zero-width marks): shown to people, such text could display as something else. Tags and person names use it."""
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text):
        raise ValueError(f"{what} may not contain control or formatting characters")
    return text


def normalize_tag(value: str) -> str:
    """A tag as stored and searched: NFC, case-folded, inner whitespace collapsed ("Grandma's  House" ->
    "grandma's house"). Control and format characters (bidi overrides) are refused, not silently dropped."""
    text = refuse_control_characters(unicodedata.normalize("NFC", value), "a tag")
    text = _SPACES.sub(" ", text).strip().casefold()
    if not text:
        raise ValueError("a tag may not be empty")
    if len(text) > TAG_MAX_CHARS:
        raise ValueError(f"a tag has at most {TAG_MAX_CHARS} characters")
    return text


def normalize_query(value: str) -> str:
    """The query a search judgement is about, compared case- and space-insensitively."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", value)).strip().casefold()


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    origin: FeedbackOrigin = FeedbackOrigin.PHOTO


_Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]


class TagFeedback(_Request):
    type: Literal[FeedbackType.TAG_CONFIRMED, FeedbackType.TAG_REJECTED, FeedbackType.TAG_ADDED]
    photo_id: _Id
    tag: str = Field(min_length=1, max_length=200)

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        return normalize_tag(value)


class CaptionFeedback(_Request):
    type: Literal[FeedbackType.CAPTION_REJECTED]
    photo_id: _Id


class FaceFeedback(_Request):
    type: Literal[FeedbackType.FACE_ASSIGNED, FeedbackType.FACE_REJECTED]
    face_id: _Id
    person_id: _Id


class SearchFeedback(_Request):
    type: Literal[FeedbackType.SEARCH_RELEVANT, FeedbackType.SEARCH_IRRELEVANT]
    photo_id: _Id
    query: str = Field(min_length=1, max_length=QUERY_MAX_CHARS)
    rank: int = Field(ge=1, le=10_000, description="1-based position of the hit in the results the user saw.")

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        text = normalize_query(value)
        if not text:
            raise ValueError("the query may not be blank")
        return text


FeedbackRequest = Annotated[
    TagFeedback | CaptionFeedback | FaceFeedback | SearchFeedback, Field(discriminator="type")
]


def new_feedback_id() -> str:
    """Time-ordered (milliseconds first) and unguessable: lists sort by creation, ids reveal nothing else."""
    return uuid.UUID(int=(time.time_ns() // 1_000_000 << 80) | secrets.randbits(80)).hex


IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9._:-]{8,128}$"  # a UUID, a ULID or the like; never part of a stored key


def keyed_feedback_id(owner: str, idempotency_key: str) -> str:
    """The event id of a client's keyed request: the same owner and key always name the same event (so a retry
    finds it), two owners' equal keys never do. Same shape as new_feedback_id's; lists sort by created_at."""
    return hashlib.sha256(f"feedback\0{owner}\0{idempotency_key}".encode()).hexdigest()[:32]


class FeedbackRecord(BaseModel):
    """One stored event. `undone_at` is current state only (the metadata store's copy); the dataset line of the
    event never changes, its undo is a line of its own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feedback_id: str
    owner: str
    type: FeedbackType
    created_at: datetime
    origin: FeedbackOrigin = FeedbackOrigin.PHOTO
    photo_id: str | None = None
    tag: str | None = None
    face_id: str | None = None
    person_id: str | None = None
    previous_person_id: str | None = Field(
        default=None, description="face_assigned: where the face was before (what undo moves it back to)."
    )
    constraint_id: str | None = Field(default=None, description="face_not_person: the people store's correction.")
    query: str | None = None
    rank: int | None = None
    undoes: str | None = Field(default=None, description="undo: the feedback id it undoes.")
    undone_at: datetime | None = None

    @property
    def is_undo(self) -> bool:
        return self.type is FeedbackType.UNDO


class TagSuggestion(BaseModel):
    """The tagging model's belief about one tag of one photo, 0..1 (calibrated).

    on_photo: the tag is on the photo from analysis, and this is how likely it is right (below
    SUPPRESS_BELOW it is suppressed: off the photo and out of search, as if rejected, until the user confirms it).
    Otherwise it is a tag the photo does not have, suggested from SUGGEST_FROM."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tag: str
    confidence: float = Field(ge=0, le=1)
    on_photo: bool = False


SUGGEST_FROM = 0.5
SUPPRESS_BELOW = 0.15


class TagOverlay(BaseModel):
    """What the user's active (not undone) tag and caption feedback does to one photo."""

    model_config = ConfigDict(frozen=True)

    added: frozenset[str] = frozenset()
    confirmed: frozenset[str] = frozenset()
    rejected: frozenset[str] = frozenset()
    caption_rejected: bool = False
    irrelevant_queries: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not (self.added or self.confirmed or self.rejected or self.caption_rejected or self.irrelevant_queries)


def fold(overlay: TagOverlay, record: FeedbackRecord) -> TagOverlay:
    """The overlay after one more (newer) event: the last word on a tag wins. Undone and undo events change
    nothing (an undo is applied by folding the photo's remaining events again)."""
    if record.undone_at is not None or record.is_undo:
        return overlay
    added, confirmed, rejected = set(overlay.added), set(overlay.confirmed), set(overlay.rejected)
    irrelevant, caption_rejected = set(overlay.irrelevant_queries), overlay.caption_rejected
    tag = record.tag
    if record.type is FeedbackType.TAG_ADDED and tag:
        added.add(tag)
        rejected.discard(tag)
    elif record.type is FeedbackType.TAG_CONFIRMED and tag:
        confirmed.add(tag)
        rejected.discard(tag)
    elif record.type is FeedbackType.TAG_REJECTED and tag:
        rejected.add(tag)
        added.discard(tag)
        confirmed.discard(tag)
    elif record.type is FeedbackType.CAPTION_REJECTED:
        caption_rejected = True
    elif record.type is FeedbackType.SEARCH_IRRELEVANT and record.query:
        irrelevant.add(record.query)
    elif record.type is FeedbackType.SEARCH_RELEVANT and record.query:
        irrelevant.discard(record.query)
    return TagOverlay(
        added=frozenset(added),
        confirmed=frozenset(confirmed),
        rejected=frozenset(rejected),
        caption_rejected=caption_rejected,
        irrelevant_queries=frozenset(irrelevant),
    )


def overlay_of(records: Iterable[FeedbackRecord]) -> TagOverlay:
    """Folds a photo's active feedback, oldest first."""
    overlay = TagOverlay()
    for record in sorted(records, key=lambda r: (r.created_at, r.feedback_id)):
        overlay = fold(overlay, record)
    return overlay


def effective_tags(
    labels: Sequence[tuple[str, Sequence[str]]],
    overlay: TagOverlay,
    suppressed: Iterable[str] = (),
) -> list[str]:
    """The photo's tags after feedback: (label, parents) pairs from analysis, case-folded.

    A rejected or suppressed label leaves with its parents unless another remaining label brings them ("dog"
    rejected on a photo that also shows a cat keeps "animal"); a rejected parent leaves even when a child
    remains; confirmed and added tags are kept whatever the model says. Sorted, unique."""
    gone = set(overlay.rejected) | ({s.casefold() for s in suppressed} - overlay.confirmed - overlay.added)
    terms: set[str] = set()
    for name, parents in labels:
        if name.casefold() in gone:
            continue
        terms.add(name.casefold())
        terms.update(p.casefold() for p in parents)
    terms -= set(overlay.rejected)
    terms |= set(overlay.added) | set(overlay.confirmed)
    return sorted(terms - set(overlay.rejected))
