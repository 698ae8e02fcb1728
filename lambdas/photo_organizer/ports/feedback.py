"""The feedback ports: the current state of the user's corrections, the append-only dataset they are recorded
in, and the tagging model's suggestions per photo."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from photo_organizer.feedback.models import FeedbackRecord, TagOverlay, TagSuggestion


class FeedbackStore(Protocol):
    """local: tables in the SQLite file. aws: `FEEDBACK#{feedback_id}` items in the owner's partition (the stream
    hands INSERTs to the feedback Lambda), and the photo's overlay as attributes of its photo item (so the stream
    indexer re-indexes the photo), written in one transaction."""

    def record(self, record: FeedbackRecord, *, overlay: TagOverlay | None = None) -> None:
        """Stores a new event; with `overlay`, also the photo's new overlay (record.photo_id), atomically.
        Idempotent by feedback id."""
        ...

    def get(self, owner: str, feedback_id: str) -> FeedbackRecord | None: ...

    def record_undo(self, undo: FeedbackRecord, *, undone_at: datetime, overlay: TagOverlay | None = None) -> None:
        """Stores the undo event, marks the event it undoes as undone and, with `overlay`, the photo's new overlay,
        atomically. ConflictError when that event is already undone."""
        ...

    def for_photo(self, owner: str, photo_id: str) -> list[FeedbackRecord]:
        """The photo's events (undone ones included, undo events excluded), oldest first."""
        ...

    def overlay(self, owner: str, photo_id: str) -> TagOverlay:
        """The photo's stored overlay (an empty one when it has no feedback)."""
        ...

    def overlays(self, owner: str) -> dict[str, TagOverlay]:
        """photo id -> overlay, for the owner's photos that have feedback."""
        ...

    def events(self, owner: str, *, since: datetime | None = None) -> list[FeedbackRecord]:
        """The owner's events (undo events included), oldest first."""
        ...

    def irrelevant_photos(self, owner: str, query: str) -> set[str]:
        """Photo ids the owner marked irrelevant for this normalised query (feedback.models.normalize_query) and
        not relevant again since: the search service leaves them out of that query's results."""
        ...

    def forget_photo(self, owner: str, photo_id: str) -> None:
        """The photo is being deleted: its current state goes (the dataset's lines stay, training drops them
        because the photo has no features any more)."""
        ...

    def forget_owner(self, owner: str) -> int:
        """Account erasure: deletes every event and overlay of the owner; returns how many events went.
        Idempotent; other owners untouched."""
        ...


class FeedbackDataset(Protocol):
    """The append-only JSON Lines dataset (feedback.dataset): local files, or the dataset bucket."""

    def append(self, records: Sequence[FeedbackRecord], *, part: str) -> None:
        """Writes the records' lines; `part` names the write (the same part written again replaces itself with
        the same lines: a retried batch is not recorded twice)."""
        ...

    def forget_owner(self, owner: str) -> int:
        """Account erasure: the owner's lines go from every part; returns how many. Idempotent."""
        ...


class SuggestionStore(Protocol):
    """The tagging model's beliefs per photo (re-application writes them, the photo view, search and the review
    queue read them). aws: a `suggestions` attribute on the photo item; local: a table."""

    def replace_suggestions(self, owner: str, photo_id: str, suggestions: Sequence[TagSuggestion]) -> None: ...

    def suggestions(self, owner: str, photo_id: str) -> list[TagSuggestion]: ...

    def all_suggestions(self, owner: str) -> dict[str, list[TagSuggestion]]:
        """photo id -> its suggestions, for the owner's photos that have any."""
        ...

    def forget_owner(self, owner: str) -> int:
        """Account erasure: deletes every suggestion of the owner; returns how many photos' went. Idempotent."""
        ...
