"""Feedback: the user's corrections applied at once, recorded, and undoable.

One event per correction (feedback.models). `submit` checks that everything it names is the caller's (a photo
that is READY, a face, a person; anything else, or someone else's, is NotFoundError and nothing is recorded),
applies the effect, records the event with the photo's new overlay in one store write, then appends its line to
the dataset (local; in the cloud the feedback Lambda records from the table stream).

Effects: tag and caption events change the photo's overlay (feedback.effects: the photo view, its caption and its
search document read it); search_irrelevant takes the photo out of that query's results (search_relevant
cancels it); face events are the people corrections (PeopleService.move_face / not_this_person), and their undo
removes exactly the corrections they stored. `undo` records an `undo` event naming the one it reverses; an undo
is never undone (409 undo_refused), an event is undone once (409 already_undone).

Retries: a client that sends an idempotency key (the API's `Idempotency-Key` header) gets the event id derived
from it, so a retried request finds its first attempt's event and completes what that attempt left undone instead
of recording a second one; the same key with another correction is 409 idempotency_key_reused. A face event is
recorded BEFORE its people change, with where the face was: a retry after a throttled move must not read the
face's new person as its previous one (the undo would then leave the face where the move put it).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel

from photo_organizer.errors import FeedbackConflictError, NotFoundError, PhotoNotFoundError, RetryableError
from photo_organizer.feedback.models import (
    FACE_TYPES,
    fold,
    CaptionFeedback,
    FaceFeedback,
    FeedbackOrigin,
    FeedbackRecord,
    FeedbackRequest,
    FeedbackType,
    SearchFeedback,
    TagFeedback,
    TagOverlay,
    keyed_feedback_id,
    new_feedback_id,
    overlay_of,
)
from photo_organizer.keys import check_owner
from photo_organizer.models import PhotoStatus, utcnow
from photo_organizer.ports.feedback import FeedbackDataset, FeedbackStore
from photo_organizer.ports.storage import MetadataStore
from photo_organizer.services.people import PeopleService

logger = logging.getLogger(__name__)

DATASET_PART = "events"
_FEEDBACK_ID = re.compile(r"[0-9a-f]{32}")  # feedback.models.new_feedback_id  # the local dataset's file name in each date partition


class FeedbackNotFoundError(NotFoundError):
    pass


class FeedbackView(BaseModel):
    """An event as the API shows it: never the owner, nor the people store's internal correction id."""

    feedback_id: str
    type: FeedbackType
    created_at: datetime
    origin: FeedbackOrigin
    photo_id: str | None = None
    tag: str | None = None
    face_id: str | None = None
    person_id: str | None = None
    previous_person_id: str | None = None
    query: str | None = None
    rank: int | None = None
    undoes: str | None = None
    undone_at: datetime | None = None

    @classmethod
    def of(cls, record: FeedbackRecord) -> FeedbackView:
        return cls.model_validate(record.model_dump(exclude={"owner", "constraint_id"}))


@dataclass
class FeedbackService:
    store: FeedbackStore
    metadata: MetadataStore
    people: PeopleService
    dataset: FeedbackDataset | None = None  # local files; None in the cloud (the feedback Lambda records)
    on_photos_changed: Callable[[str, set[str]], None] | None = None  # (owner, photo ids): local search reindex
    now: Callable[[], datetime] = field(default=utcnow)
    _locks: dict[tuple[str, str], threading.Lock] = field(default_factory=dict, init=False, repr=False)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    # ---- submit ------------------------------------------------------------------------------------------------

    def submit(self, owner: str, request: FeedbackRequest, *, idempotency_key: str | None = None) -> FeedbackRecord:
        """`idempotency_key`: the client's name for this one correction; its retries return the same event."""
        check_owner(owner)
        feedback_id = keyed_feedback_id(owner, idempotency_key) if idempotency_key else new_feedback_id()
        earlier = self.store.get(owner, feedback_id) if idempotency_key else None
        if earlier is not None:
            return self._complete(owner, earlier, request)
        if isinstance(request, FaceFeedback):
            return self._face_event(owner, request, feedback_id)
        self._ready_photo(owner, request.photo_id)
        record = FeedbackRecord(
            feedback_id=feedback_id,
            owner=owner,
            type=request.type,
            created_at=self.now(),
            origin=request.origin,
            photo_id=request.photo_id,
            tag=request.tag if isinstance(request, TagFeedback) else None,
            query=request.query if isinstance(request, SearchFeedback) else None,
            rank=request.rank if isinstance(request, SearchFeedback) else None,
        )
        assert isinstance(request, TagFeedback | CaptionFeedback | SearchFeedback)
        with self._photo_lock(owner, request.photo_id):
            overlay = self._overlay_with(owner, request.photo_id, record)
            self.store.record(record, overlay=overlay)
        self._append(record)
        self._photo_changed(owner, request.photo_id)
        return record

    def _face_event(self, owner: str, request: FaceFeedback, feedback_id: str) -> FeedbackRecord:
        face = self.people.face(owner, request.face_id)
        person = self.people.person(owner, request.person_id)
        created_at = self.now()
        previous: str | None
        constraint_id: str | None = None
        if request.type is FeedbackType.FACE_ASSIGNED:
            previous = self.people.person_of_face(owner, face.face_id)
        else:
            previous = person.person_id if face.face_id in person.face_ids else None
            constraint_id = self.people.not_this_person_id(owner, face.face_id, person.person_id, at=created_at)
        record = FeedbackRecord(
            feedback_id=feedback_id,
            owner=owner,
            type=request.type,
            created_at=created_at,
            origin=request.origin,
            photo_id=face.photo_id,
            face_id=face.face_id,
            person_id=person.person_id,
            previous_person_id=previous,
            constraint_id=constraint_id,
        )
        self.store.record(record)  # first: it keeps where the face was, whatever happens to the change below
        self._apply_face_event(owner, record)
        self._append(record)
        return record

    def _apply_face_event(self, owner: str, record: FeedbackRecord) -> None:
        """The people change of a recorded face event; stating it again changes nothing (a retry's completion)."""
        assert record.face_id is not None and record.person_id is not None
        if record.type is FeedbackType.FACE_ASSIGNED:
            self.people.move_face(owner, record.face_id, record.person_id, at=record.created_at)
        else:
            self.people.not_this_person(owner, record.face_id, record.person_id, at=record.created_at)

    def _complete(self, owner: str, earlier: FeedbackRecord, request: FeedbackRequest) -> FeedbackRecord:
        """A retry of a keyed request: the same correction completes what its first attempt may have left undone
        (the people change, the search document); another correction under the key is refused."""
        if earlier.is_undo or not _same_correction(earlier, request):
            raise FeedbackConflictError(FeedbackConflictError.KEY_REUSED,
                                        "this idempotency key was used for another correction")
        if earlier.undone_at is None:
            if earlier.type in FACE_TYPES:
                self._apply_face_event(owner, earlier)
            elif earlier.photo_id is not None:
                self._photo_changed(owner, earlier.photo_id)
        # Its dataset line is not appended again: a line the first attempt did not write is appended by the next
        # retrain, which first appends the stored events missing from the files.
        return earlier

    # ---- undo ----------------------------------------------------------------------------------------------------

    def undo(self, owner: str, feedback_id: str) -> FeedbackRecord:
        check_owner(owner)
        original = self.store.get(owner, feedback_id) if _FEEDBACK_ID.fullmatch(feedback_id) else None
        if original is None:
            raise FeedbackNotFoundError(feedback_id)
        if original.is_undo:
            raise FeedbackConflictError(FeedbackConflictError.UNDO_REFUSED, "an undo cannot be undone")
        if original.undone_at is not None:
            raise FeedbackConflictError(FeedbackConflictError.ALREADY_UNDONE, "this feedback is already undone")
        undone_at = self.now()
        undo = FeedbackRecord(
            feedback_id=new_feedback_id(),
            owner=owner,
            type=FeedbackType.UNDO,
            created_at=undone_at,
            origin=original.origin,
            photo_id=original.photo_id,
            face_id=original.face_id,
            query=original.query,  # the cloud store keeps the query's search mark in step with the overlay
            undoes=original.feedback_id,
        )
        if original.type in FACE_TYPES:
            # Recorded first: the store refuses a second undo atomically, before the people change is reversed.
            self.store.record_undo(undo, undone_at=undone_at)
            self._reverse_face_event(owner, original)
        else:
            assert original.photo_id is not None
            undone = original.model_copy(update={"undone_at": undone_at})
            with self._photo_lock(owner, original.photo_id):
                overlay = self._overlay_with(owner, original.photo_id, undone)
                self.store.record_undo(undo, undone_at=undone_at, overlay=overlay)
            self._photo_changed(owner, original.photo_id)
        self._append(undo)
        return undo

    def _reverse_face_event(self, owner: str, original: FeedbackRecord) -> None:
        assert original.face_id is not None and original.person_id is not None
        if original.type is FeedbackType.FACE_ASSIGNED:
            self.people.undo_move(owner, original.face_id, original.previous_person_id, original.person_id,
                                  at=original.created_at)
        elif original.constraint_id:
            self.people.undo_not_this_person(
                owner, original.face_id, original.person_id, original.constraint_id,
                was_in_person=original.previous_person_id == original.person_id,
            )

    # ---- reading ---------------------------------------------------------------------------------------------------

    def list_for_photo(self, owner: str, photo_id: str) -> list[FeedbackRecord]:
        """The caller's events about one of their photos (undone ones included, undo events not), oldest first."""
        check_owner(owner)
        if self.metadata.get_photo(owner, photo_id) is None:
            raise PhotoNotFoundError(photo_id)
        return self.store.for_photo(owner, photo_id)

    # ---- helpers -----------------------------------------------------------------------------------------------------

    def _ready_photo(self, owner: str, photo_id: str) -> None:
        photo = self.metadata.get_photo(owner, photo_id)
        if photo is None or photo.status is not PhotoStatus.READY:
            raise PhotoNotFoundError(photo_id)  # missing, someone else's, deleted or not a library photo (yet)

    @contextmanager
    def _photo_lock(self, owner: str, photo_id: str) -> Iterator[None]:
        """Read the photo's events, fold, write: one at a time per photo in this process (the local gateway serves
        requests on threads). Concurrent Lambda invocations for one photo may still race: the later overlay write
        can miss the other's event until the photo's next feedback (both events are recorded either way)."""
        with self._locks_guard:
            lock = self._locks.setdefault((owner, photo_id), threading.Lock())
        with lock:
            yield

    def _overlay_with(self, owner: str, photo_id: str, changed: FeedbackRecord) -> TagOverlay:
        if changed.undone_at is None:
            # A new event is the newest: folding it onto the stored overlay equals folding every event again.
            return fold(self.store.overlay(owner, photo_id), changed)
        records = {r.feedback_id: r for r in self.store.for_photo(owner, photo_id)}
        records[changed.feedback_id] = changed
        return overlay_of(records.values())

    def _append(self, record: FeedbackRecord) -> None:
        if self.dataset is None:
            return
        try:
            self.dataset.append([record], part=DATASET_PART)
        except (RetryableError, OSError) as exc:
            # The event is stored; the local retrain appends stored events missing from the files first.
            logger.warning("feedback dataset append failed", extra={"feedback_id": record.feedback_id,
                                                                    "error": str(exc)})

    def _photo_changed(self, owner: str, photo_id: str) -> None:
        if self.on_photos_changed is not None:
            self.on_photos_changed(owner, {photo_id})


def _same_correction(record: FeedbackRecord, request: FeedbackRequest) -> bool:
    """Whether a stored event is the one this request states (what it names, not when or its derived fields)."""
    stated = request.model_dump(exclude={"origin"}, exclude_none=True)
    return all(getattr(record, name) == value for name, value in stated.items())
