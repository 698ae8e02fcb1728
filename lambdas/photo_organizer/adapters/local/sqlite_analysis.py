"""AnalysisStore in the local stack's SQLite file, beside SqliteMetadataStore's `photos` table.

Tables (created if missing; the photos schema is made by SqliteMetadataStore itself):
- `photo_analysis` (owner, photo_id, analysis_version, document JSON, sensitive, caption, label_names, ocr_text,
  saved_at): one row per analysed photo. `document` holds the stored result plus caption/place/local time;
  the flattened columns mirror the DynamoDB item's search fields for a local search.
- `analysis_failures` (owner, photo_id, analysis_version, reason, attempts, last_failed_at).

Same semantics as DynamoDbAnalysisStore: writes need the photo to exist and be READY (so a deleted photo never
gets analysis back), `save` only raises the version, and the analysis of a photo that is no longer in `photos`
is invisible. Every write is one BEGIN IMMEDIATE transaction, so the checks hold across processes too.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from photo_organizer.adapters.local.sqlite_metadata import SqliteMetadataStore
from photo_organizer.analysis.planning import PhotoRecord
from photo_organizer.analysis.store import (
    AnalysisFailure,
    PendingPage,
    PhotoAnalysis,
    analysis_from_parts,
    decode_pending_cursor,
    encode_pending_cursor,
    label_terms,
    ocr_text,
    result_document,
)
from photo_organizer.adapters.local.sqlite_access import SqliteAccess
from photo_organizer.errors import ValidationError
from photo_organizer.models import PhotoStatus, utcnow

MAX_PAGE_SIZE = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS photo_analysis (
    owner            TEXT NOT NULL,
    photo_id         TEXT NOT NULL,
    analysis_version INTEGER NOT NULL,
    document         TEXT NOT NULL,
    sensitive        INTEGER NOT NULL,
    caption          TEXT NOT NULL,
    label_names      TEXT NOT NULL,
    ocr_text         TEXT NOT NULL,
    saved_at         TEXT NOT NULL,
    PRIMARY KEY (owner, photo_id)
);
CREATE TABLE IF NOT EXISTS analysis_failures (
    owner            TEXT NOT NULL,
    photo_id         TEXT NOT NULL,
    analysis_version INTEGER NOT NULL,
    reason           TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    last_failed_at   TEXT NOT NULL,
    PRIMARY KEY (owner, photo_id)
);
"""

_RECORD_COLUMNS = "p.owner, p.photo_id, p.status, p.document, COALESCE(a.analysis_version, 0)"
_JOIN = "photos p LEFT JOIN photo_analysis a ON a.owner = p.owner AND a.photo_id = p.photo_id"


class SqliteAnalysisStore(SqliteAccess):
    def __init__(self, path: Path | str) -> None:
        # The photos table this store joins: made (idempotently) by its own adapter, never redefined here.
        SqliteMetadataStore(path).close()
        self._open(path, _SCHEMA)

    # ---- AnalysisStore ----------------------------------------------------------------------------------------

    def pending(
        self, current_version: int, *, owner: str | None = None, limit: int = 500, after: str | None = None
    ) -> PendingPage:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValidationError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        sql = f"SELECT {_RECORD_COLUMNS} FROM {_JOIN} WHERE p.status = ? AND COALESCE(a.analysis_version, 0) < ?"
        params: list[object] = [PhotoStatus.READY.value, current_version]
        if owner is not None:
            sql += " AND p.owner = ?"
            params.append(owner)
        if after is not None:
            last_owner, last_photo = decode_pending_cursor(owner, after)
            sql += " AND (p.owner > ? OR (p.owner = ? AND p.photo_id > ?))"
            params += [last_owner, last_owner, last_photo]
        sql += " ORDER BY p.owner, p.photo_id LIMIT ?"
        params.append(limit + 1)
        with self._read() as db:
            records = [_record(row) for row in db.execute(sql, params)]
        next_key = None
        if len(records) > limit:
            records = records[:limit]
            next_key = encode_pending_cursor(owner, records[-1].owner, records[-1].photo_id)
        return PendingPage(photos=records, next_key=next_key)

    def analysed(self, owner: str, *, min_version: int) -> list[PhotoRecord]:
        with self._read() as db:
            rows = db.execute(
                f"SELECT {_RECORD_COLUMNS} FROM {_JOIN} WHERE p.owner = ? AND p.status = ? "
                "AND a.analysis_version >= ? ORDER BY p.photo_id",
                (owner, PhotoStatus.READY.value, min_version),
            ).fetchall()
        return [_record(row) for row in rows]

    def save(self, analysis: PhotoAnalysis) -> bool:
        result = analysis.result
        document = {
            "result": result_document(result),
            "caption": analysis.caption,
            "place": analysis.place.model_dump(mode="json", exclude_none=True) if analysis.place else None,
            "local_taken_at": analysis.local_taken_at.isoformat() if analysis.local_taken_at else None,
            "time_zone": analysis.time_zone,
        }
        with self._write() as db:
            if not _is_ready(db, analysis.owner, analysis.photo_id):
                return False
            row = db.execute(
                "SELECT analysis_version FROM photo_analysis WHERE owner = ? AND photo_id = ?",
                (analysis.owner, analysis.photo_id),
            ).fetchone()
            if row is not None and row[0] >= result.analysis_version:
                return False
            db.execute(
                "INSERT OR REPLACE INTO photo_analysis VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    analysis.owner,
                    analysis.photo_id,
                    result.analysis_version,
                    json.dumps(document, separators=(",", ":")),
                    int(result.sensitive),
                    analysis.caption,
                    json.dumps(label_terms(result)),
                    ocr_text(result),
                    utcnow().isoformat(),
                ),
            )
            db.execute(
                "DELETE FROM analysis_failures WHERE owner = ? AND photo_id = ?", (analysis.owner, analysis.photo_id)
            )
        return True

    def ids_by_analysis(self, owner: str, current_version: int) -> tuple[set[str], set[str]]:
        """The owner's READY photo ids (pending, analysed at current_version or later): what `pending` and
        `analysed` list, without reading the records (GET /analysis/progress is polled)."""
        with self._read() as db:
            rows = db.execute(
                f"SELECT p.photo_id, COALESCE(a.analysis_version, 0) >= ? FROM {_JOIN} "
                "WHERE p.owner = ? AND p.status = ?",
                (current_version, owner, PhotoStatus.READY.value),
            ).fetchall()
        return {r[0] for r in rows if not r[1]}, {r[0] for r in rows if r[1]}

    def get(self, owner: str, photo_id: str) -> PhotoAnalysis | None:
        with self._read() as db:
            row = db.execute(
                "SELECT a.analysis_version, a.document FROM photo_analysis a JOIN photos p "
                "ON p.owner = a.owner AND p.photo_id = a.photo_id WHERE a.owner = ? AND a.photo_id = ?",
                (owner, photo_id),
            ).fetchone()
        if row is None:
            return None
        document: dict[str, Any] = json.loads(row[1])
        return analysis_from_parts(
            owner,
            photo_id,
            row[0],
            document["result"],
            caption=document.get("caption", ""),
            place=document.get("place"),
            local_taken_at=document.get("local_taken_at"),
            time_zone=document.get("time_zone"),
        )

    def record_failure(self, owner: str, photo_id: str, *, analysis_version: int, reason: str) -> int:
        """Returns the attempts counted for this version; 0 when nothing was recorded (the photo is gone, not
        READY, or already analysed at this version or later)."""
        with self._write() as db:
            if not _is_ready(db, owner, photo_id):
                return 0
            stored = db.execute(
                "SELECT analysis_version FROM photo_analysis WHERE owner = ? AND photo_id = ?", (owner, photo_id)
            ).fetchone()
            if stored is not None and stored[0] >= analysis_version:
                return 0
            previous = db.execute(
                "SELECT analysis_version, attempts FROM analysis_failures WHERE owner = ? AND photo_id = ?",
                (owner, photo_id),
            ).fetchone()
            attempts = previous[1] + 1 if previous is not None and previous[0] == analysis_version else 1
            db.execute(
                "INSERT OR REPLACE INTO analysis_failures VALUES (?, ?, ?, ?, ?, ?)",
                (owner, photo_id, analysis_version, reason, attempts, utcnow().isoformat()),
            )
            return attempts

    def failures(self, owner: str | None = None) -> list[AnalysisFailure]:
        sql = (
            "SELECT f.owner, f.photo_id, f.analysis_version, f.reason, f.attempts, f.last_failed_at "
            "FROM analysis_failures f JOIN photos p ON p.owner = f.owner AND p.photo_id = f.photo_id"
        )
        params: tuple[object, ...] = ()
        if owner is not None:
            sql += " WHERE f.owner = ?"
            params = (owner,)
        with self._read() as db:
            rows = db.execute(sql + " ORDER BY f.owner, f.photo_id", params).fetchall()
        return [
            AnalysisFailure(
                owner=row[0],
                photo_id=row[1],
                analysis_version=row[2],
                reason=row[3],
                attempts=row[4],
                last_failed_at=datetime.fromisoformat(row[5]),
            )
            for row in rows
        ]

    def delete(self, owner: str, photo_id: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM photo_analysis WHERE owner = ? AND photo_id = ?", (owner, photo_id))
            db.execute("DELETE FROM analysis_failures WHERE owner = ? AND photo_id = ?", (owner, photo_id))

    # ---- helpers ----------------------------------------------------------------------------------------------



def _is_ready(db: sqlite3.Connection, owner: str, photo_id: str) -> bool:
    row = db.execute("SELECT status FROM photos WHERE owner = ? AND photo_id = ?", (owner, photo_id)).fetchone()
    return row is not None and row[0] == PhotoStatus.READY.value


def _record(row: tuple[Any, ...]) -> PhotoRecord:
    metadata = json.loads(row[3]).get("metadata") or {}
    return PhotoRecord(
        owner=row[0],
        photo_id=row[1],
        status=PhotoStatus(row[2]),
        sha256=metadata.get("sha256"),
        phash=metadata.get("phash"),
        analysis_version=row[4],
    )
