"""FeedbackStore in the local stack's SQLite file (beside the photos, analysis and people tables).

Tables (created if missing): `feedback` (owner, feedback_id, photo_id, type, created_at as a UTC stamp that sorts
as text, undone_at, document JSON = the record without undone_at) indexed by (owner, photo_id) and (owner,
created_at); `photo_feedback` (owner, photo_id, document JSON = feedback.effects.overlay_document), one row per
photo that has an overlay. Every write is one BEGIN IMMEDIATE transaction: an event and its photo's overlay, or an
undo, the mark on the event it undoes and the overlay, are stored together or not at all.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from photo_organizer.adapters.local.sqlite_access import SqliteAccess
from photo_organizer.errors import FeedbackConflictError, ValidationError
from photo_organizer.feedback.effects import overlay_document, overlay_from_document
from photo_organizer.feedback.models import FeedbackRecord, FeedbackType, TagOverlay

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    owner       TEXT NOT NULL,
    feedback_id TEXT NOT NULL,
    photo_id    TEXT,
    type        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    undone_at   TEXT,
    document    TEXT NOT NULL,
    PRIMARY KEY (owner, feedback_id)
);
CREATE INDEX IF NOT EXISTS feedback_by_photo ON feedback (owner, photo_id, created_at);
CREATE INDEX IF NOT EXISTS feedback_by_time ON feedback (owner, created_at);
CREATE TABLE IF NOT EXISTS photo_feedback (
    owner    TEXT NOT NULL,
    photo_id TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (owner, photo_id)
);
"""


class SqliteFeedbackStore(SqliteAccess):
    def __init__(self, path: Path | str) -> None:
        self._open(path, _SCHEMA)

    def record(self, record: FeedbackRecord, *, overlay: TagOverlay | None = None) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.owner, record.feedback_id, record.photo_id, record.type.value, _stamp(record.created_at),
                 _stamp(record.undone_at) if record.undone_at else None, _document(record)),
            )
            if overlay is not None:
                self._put_overlay(db, record.owner, _photo_of(record), overlay)

    def get(self, owner: str, feedback_id: str) -> FeedbackRecord | None:
        with self._read() as db:
            row = db.execute(
                "SELECT document, undone_at FROM feedback WHERE owner = ? AND feedback_id = ?", (owner, feedback_id)
            ).fetchone()
        return _record(*row) if row else None

    def record_undo(self, undo: FeedbackRecord, *, undone_at: datetime, overlay: TagOverlay | None = None) -> None:
        if not undo.undoes:
            raise ValidationError("an undo event names the event it undoes")
        with self._write() as db:
            row = db.execute(
                "SELECT undone_at FROM feedback WHERE owner = ? AND feedback_id = ?", (undo.owner, undo.undoes)
            ).fetchone()
            if row is None or row[0] is not None:
                raise FeedbackConflictError(FeedbackConflictError.ALREADY_UNDONE, "this feedback is already undone")
            db.execute(
                "UPDATE feedback SET undone_at = ? WHERE owner = ? AND feedback_id = ?",
                (_stamp(undone_at), undo.owner, undo.undoes),
            )
            db.execute(
                "INSERT OR IGNORE INTO feedback VALUES (?, ?, ?, ?, ?, NULL, ?)",
                (undo.owner, undo.feedback_id, undo.photo_id, undo.type.value, _stamp(undo.created_at),
                 _document(undo)),
            )
            if overlay is not None:
                self._put_overlay(db, undo.owner, _photo_of(undo), overlay)

    def for_photo(self, owner: str, photo_id: str) -> list[FeedbackRecord]:
        with self._read() as db:
            rows = db.execute(
                "SELECT document, undone_at FROM feedback WHERE owner = ? AND photo_id = ? AND type != ? "
                "ORDER BY created_at, feedback_id",
                (owner, photo_id, FeedbackType.UNDO.value),
            ).fetchall()
        return [_record(*row) for row in rows]

    def overlay(self, owner: str, photo_id: str) -> TagOverlay:
        with self._read() as db:
            row = db.execute(
                "SELECT document FROM photo_feedback WHERE owner = ? AND photo_id = ?", (owner, photo_id)
            ).fetchone()
        return overlay_from_document(json.loads(row[0])) if row else TagOverlay()

    def overlays(self, owner: str) -> dict[str, TagOverlay]:
        with self._read() as db:
            rows = db.execute(
                "SELECT photo_id, document FROM photo_feedback WHERE owner = ? ORDER BY photo_id", (owner,)
            ).fetchall()
        return {photo_id: overlay_from_document(json.loads(document)) for photo_id, document in rows}

    def events(self, owner: str, *, since: datetime | None = None) -> list[FeedbackRecord]:
        with self._read() as db:
            rows = db.execute(
                "SELECT document, undone_at FROM feedback WHERE owner = ? AND created_at >= ? "
                "ORDER BY created_at, feedback_id",
                (owner, _stamp(since) if since else ""),
            ).fetchall()
        return [_record(*row) for row in rows]

    def irrelevant_photos(self, owner: str, query: str) -> set[str]:
        """Photo ids the owner marked irrelevant for this normalised query (and not relevant again since)."""
        return {photo_id for photo_id, overlay in self.overlays(owner).items() if query in overlay.irrelevant_queries}

    def forget_photo(self, owner: str, photo_id: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM feedback WHERE owner = ? AND photo_id = ?", (owner, photo_id))
            db.execute("DELETE FROM photo_feedback WHERE owner = ? AND photo_id = ?", (owner, photo_id))

    def forget_owner(self, owner: str) -> int:
        with self._write() as db:
            events = db.execute("DELETE FROM feedback WHERE owner = ?", (owner,)).rowcount
            db.execute("DELETE FROM photo_feedback WHERE owner = ?", (owner,))
        return events

    @staticmethod
    def _put_overlay(db, owner: str, photo_id: str, overlay: TagOverlay) -> None:
        if overlay.empty:
            db.execute("DELETE FROM photo_feedback WHERE owner = ? AND photo_id = ?", (owner, photo_id))
            return
        db.execute(
            "INSERT OR REPLACE INTO photo_feedback VALUES (?, ?, ?)",
            (owner, photo_id, json.dumps(overlay_document(overlay), sort_keys=True, separators=(",", ":"))),
        )


def _photo_of(record: FeedbackRecord) -> str:
    if not record.photo_id:
        raise ValidationError("an overlay belongs to a photo: the record names none")
    return record.photo_id


def _stamp(moment: datetime) -> str:
    """UTC, fixed width: sorts as text in time order."""
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _document(record: FeedbackRecord) -> str:
    return record.model_dump_json(exclude={"undone_at"}, exclude_none=True)


def _record(document: str, undone_at: str | None) -> FeedbackRecord:
    body = json.loads(document)
    if undone_at:
        body["undone_at"] = undone_at.replace("Z", "+00:00")
    return FeedbackRecord.model_validate(body)
