"""Indexing: the one search-document builder of both backends, and the stream indexer's use case.

`search_document` decides what a photo's document is from what is known about it, whoever knows it: the local
search service (photo, analysis and people stores), the cloud's photo item (adapters.aws.stream_documents, for the
stream and for reindex/reconcile scans) and the analysis pipeline (the fields it describes for the embedding).

`StreamIndexer` turns one batch of table change records into one bulk write: each record is planned by the
backend's planner (an IndexWrite, or None when it asks for nothing), the batch is collapsed to the newest version
per photo, and each record learns whether its photo's write failed (to be retried by the stream) or not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from photo_organizer.analysis.models import Label
from photo_organizer.errors import PermanentError, RetryableError
from photo_organizer.feedback.effects import CaptionContext, apply_feedback
from photo_organizer.feedback.models import TagOverlay
from photo_organizer.models import Photo, PhotoStatus
from photo_organizer.search.models import EMBEDDING_DIMENSIONS, IndexedPerson, IndexedPlace, SearchDocument
from photo_organizer.search.writes import IndexWrite, WriteOutcome, WriteResult
from photo_organizer.ports.search import SearchWriter

logger = logging.getLogger(__name__)

SEARCHABLE_STATUS = PhotoStatus.READY.value
OCR_TEXT_MAX_CHARS = 4000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # same cut as photo_organizer.analysis.store


def record_version(photo: Photo) -> int:
    """The least version a photo's search document may carry to be current: its record's `updated_at` in whole
    microseconds since the epoch (the cloud's documents carry exactly that; the local ones their write time)."""
    return (photo.updated_at.astimezone(timezone.utc) - _EPOCH) // timedelta(microseconds=1)


def camera_name(make: str | None, model: str | None) -> str | None:
    """'Canon' + 'Canon EOS 5D' -> 'Canon EOS 5D' (most models repeat the make); either alone is kept."""
    make, model = (make or "").strip(), (model or "").strip()
    if make and model and not model.casefold().startswith(make.casefold()):
        return f"{make} {model}"
    return model or make or None


def search_document(
    *,
    owner: str,
    photo_id: str,
    status: str,
    version: int,
    uploaded_at: datetime,
    filename: str = "",
    taken_at: datetime | None = None,
    camera_make: str | None = None,
    camera_model: str | None = None,
    tags: Iterable[str] = (),
    weak_tags: Iterable[str] = (),
    people: Iterable[IndexedPerson] = (),
    place: IndexedPlace | None = None,
    ocr_text: str = "",
    caption: str = "",
    sensitive: bool = False,
    hidden: bool = False,
    duplicate_of: str | None = None,
    embedding: Sequence[float] | None = None,
    labels: Sequence[Label] | None = None,
    feedback: TagOverlay | None = None,
    suppressed: Iterable[str] = (),
    caption_context: CaptionContext | None = None,
) -> SearchDocument | None:
    """The photo's search document, or None when the photo must not be found (not READY: pending, rejected).

    With the user's feedback overlay and/or the tags the tagging model suppresses, `tags` and `caption` are what
    feedback leaves of them (feedback.effects.apply_feedback over `labels`, the analysis labels with parents;
    without labels, `tags` stand for parentless labels): a rejected tag is not found, an added one is, a rejected
    caption is empty. `caption_context` is what a recomposed caption may name (people, place, time). `weak_tags`
    (the weak labels' terms) lose what the user rejected or the tagging model suppresses, and what is a tag."""
    if str(status) != SEARCHABLE_STATUS:
        return None
    suppressed = tuple(suppressed)
    if (feedback is not None and not feedback.empty) or suppressed:
        source = list(labels) if labels is not None else [Label(name=str(t), confidence=0) for t in tags if str(t).strip()]
        after = apply_feedback(source, caption, feedback, suppressed, caption_context)
        tags, caption = after.tags, after.caption
    final_tags = tuple(sorted({str(t).casefold() for t in tags if str(t).strip()}))
    gone = {t.casefold() for t in (*(feedback.rejected if feedback is not None else ()), *suppressed)}
    weak = {str(t).casefold() for t in weak_tags if str(t).strip()} - gone - set(final_tags)
    by_id = {person.person_id: person for person in reversed(tuple(people))}  # the first of an id wins
    if embedding is not None and len(embedding) != EMBEDDING_DIMENSIONS:
        embedding = None  # a malformed vector must not stop the text from being indexed
    return SearchDocument(
        owner=owner,
        photo_id=photo_id,
        version=version,
        taken_at=taken_at,
        uploaded_at=uploaded_at,
        filename=filename,
        tags=final_tags,
        weak_tags=tuple(sorted(weak)),
        people=tuple(by_id[person_id] for person_id in sorted(by_id)),
        place=place,
        ocr_text=ocr_text[:OCR_TEXT_MAX_CHARS],
        caption=caption,
        camera=camera_name(camera_make, camera_model),
        sensitive=sensitive,
        hidden=hidden,
        duplicate_of=duplicate_of or None,
        embedding=tuple(float(v) for v in embedding) if embedding is not None else None,
    )


# ---- the stream indexer (cloud) -------------------------------------------------------------------------------


@dataclass
class BatchOutcome:
    """What happened to one batch: the failed records by sequence number, and every write's result."""

    failures: dict[str, str] = field(default_factory=dict)
    results: list[WriteResult] = field(default_factory=list)
    bulk_failed: bool = False


@dataclass
class StreamIndexer:
    writer: SearchWriter
    plan: Callable[[Mapping[str, Any]], IndexWrite | None]  # one raw change record -> its write, or None
    sequence_of: Callable[[Mapping[str, Any]], str]
    # Account erasure: the record that says an owner's erasure finished -> that owner, and what then deletes the
    # owner's documents left in the index (the writer's side: the API may only search).
    erased_owner: Callable[[Mapping[str, Any]], str | None] | None = None
    forget_owner: Callable[[str], int] | None = None

    def index_batch(self, records: Sequence[Mapping[str, Any]]) -> BatchOutcome:
        outcome = self._write_batch(records)
        if self.erased_owner is None or self.forget_owner is None:
            return outcome
        for record in records:  # after the batch's writes: its tombstones are in place first
            owner = self.erased_owner(record)
            if owner is None:
                continue
            try:
                forgotten = self.forget_owner(owner)
            except (RetryableError, PermanentError) as exc:
                logger.warning("erased owner's documents not deleted", extra={"error": str(exc)})
                outcome.failures[self.sequence_of(record)] = str(exc)[:300]
                continue
            logger.info("erased owner's documents deleted", extra={"documents": forgotten})
        return outcome

    def _write_batch(self, records: Sequence[Mapping[str, Any]]) -> BatchOutcome:
        outcome = BatchOutcome()
        newest: dict[str, IndexWrite] = {}
        sequences_of: dict[str, list[str]] = {}
        for record in records:
            sequence = self.sequence_of(record)
            try:
                write = self.plan(record)
            except (KeyError, TypeError, ValueError) as exc:  # a malformed image: a poison record, alone
                logger.exception("unreadable stream record", extra={"sequence_number": sequence})
                outcome.failures[sequence] = f"unreadable record: {exc!r}"[:300]
                continue
            if write is None:
                continue
            sequences_of.setdefault(write.doc_id, []).append(sequence)
            current = newest.get(write.doc_id)
            if current is None or write.version >= current.version:
                newest[write.doc_id] = write
        if not newest:
            return outcome
        try:
            outcome.results = self.writer.write(list(newest.values()))
        except (RetryableError, PermanentError) as exc:
            logger.warning("bulk request failed", extra={"error": str(exc), "writes": len(newest)})
            outcome.bulk_failed = True
            for sequences in sequences_of.values():
                outcome.failures.update({s: str(exc)[:300] for s in sequences})
            return outcome
        for result in outcome.results:
            if result.outcome in (WriteOutcome.RETRYABLE, WriteOutcome.FAILED):
                logger.warning(
                    "index write failed",
                    extra={"doc_id": result.write.doc_id, "outcome": result.outcome.value, "reason": result.reason},
                )
                outcome.failures.update({s: result.reason for s in sequences_of[result.write.doc_id]})
        return outcome
