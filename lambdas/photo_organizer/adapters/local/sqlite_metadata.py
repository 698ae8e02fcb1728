"""MetadataStore in one SQLite file, for the embedded local stack; same semantics as the DynamoDB adapter.

Tables: `photos` (owner, photo_id, status, sort_key, expires_at, sha256, document JSON) with the listing index
(owner, status, sort_key DESC), and `content_claims` (owner, sha256, photo_id). `sort_key` is the DynamoDB
adapter's GSI1SK, so both adapters list and page in the same order with the same cursors (see records.py).

The local stack calls this from its HTTP server thread and its ingest worker thread: one connection, a lock
around every use, WAL so other processes (the CLI) can read meanwhile, and BEGIN IMMEDIATE around each
read-check-write so the conditional operations are atomic across processes too.

A PENDING_UPLOAD record past its expires_at is treated as gone, as DynamoDB's TTL would eventually make it;
`purge_expired()` deletes such records for real.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from photo_organizer.adapters.records import (
    decode_cursor,
    encode_cursor,
    before_bound,
    listing_sort_key,
    photo_document,
    photo_from_document,
)
from photo_organizer.adapters.local.sqlite_access import SqliteAccess
from photo_organizer.errors import ConflictError, ValidationError
from photo_organizer.models import Photo, PhotoStatus, utcnow
from photo_organizer.ports.storage import PhotoPageResult

MAX_PAGE_SIZE = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS photos (
    owner      TEXT NOT NULL,
    photo_id   TEXT NOT NULL,
    status     TEXT NOT NULL,
    sort_key   TEXT NOT NULL,
    expires_at INTEGER,
    sha256     TEXT,
    document   TEXT NOT NULL,
    PRIMARY KEY (owner, photo_id)
);
CREATE INDEX IF NOT EXISTS photos_listing ON photos (owner, status, sort_key DESC);
CREATE INDEX IF NOT EXISTS photos_expiry ON photos (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS content_claims (
    owner    TEXT NOT NULL,
    sha256   TEXT NOT NULL,
    photo_id TEXT NOT NULL,
    PRIMARY KEY (owner, sha256)
);
"""


class SqliteMetadataStore(SqliteAccess):
    def __init__(self, path: Path | str, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock
        self._open(path, _SCHEMA)

    # ---- MetadataStore ----------------------------------------------------------------------------------

    def create_photo(self, photo: Photo, *, pending_ttl: timedelta) -> None:
        expires_at = _epoch(photo.created_at + pending_ttl) if photo.status is PhotoStatus.PENDING_UPLOAD else None
        with self._write() as db:
            existing = db.execute(
                "SELECT status, expires_at FROM photos WHERE owner = ? AND photo_id = ?",
                (photo.owner, photo.photo_id),
            ).fetchone()
            if existing is not None and not self._is_expired(existing[0], existing[1]):
                raise ConflictError(f"photo {photo.photo_id} already exists")
            db.execute(
                "INSERT OR REPLACE INTO photos VALUES (?, ?, ?, ?, ?, ?, ?)", _row(photo, expires_at=expires_at)
            )

    def get_photo(self, owner: str, photo_id: str) -> Photo | None:
        with self._read() as db:
            row = db.execute(
                "SELECT status, expires_at, document FROM photos WHERE owner = ? AND photo_id = ?",
                (owner, photo_id),
            ).fetchone()
        if row is None or self._is_expired(row[0], row[1]):
            return None
        return photo_from_document(json.loads(row[2]))

    def finish_photo(self, photo: Photo, *, expected_status: PhotoStatus) -> None:
        with self._write() as db:
            row = db.execute(
                "SELECT status, expires_at FROM photos WHERE owner = ? AND photo_id = ?",
                (photo.owner, photo.photo_id),
            ).fetchone()
            if row is None or row[0] != expected_status.value or self._is_expired(row[0], row[1]):
                raise ConflictError(
                    f"photo {photo.photo_id} is no longer {expected_status.value} (or no longer exists)"
                )
            # Still pending: keep the expiry the record was created with; otherwise it no longer expires.
            expires_at = row[1] if photo.status is PhotoStatus.PENDING_UPLOAD else None
            db.execute("INSERT OR REPLACE INTO photos VALUES (?, ?, ?, ?, ?, ?, ?)", _row(photo, expires_at=expires_at))

    def list_photos(
        self, owner: str, *, limit: int, after: str | None, before: datetime | None = None
    ) -> PhotoPageResult:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValidationError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        # The owner of the query is always the caller's; the cursor only says where to continue.
        sql = "SELECT sort_key, document FROM photos WHERE owner = ? AND status = ?"
        params: list[object] = [owner, PhotoStatus.READY.value]
        if after is not None:
            sql += " AND sort_key < ?"
            params.append(decode_cursor(owner, after))
        if before is not None:
            sql += " AND sort_key < ?"  # the listing index (owner, status, sort_key) bounds the range
            params.append(before_bound(before))
        sql += " ORDER BY sort_key DESC LIMIT ?"
        params.append(limit + 1)
        with self._read() as db:
            rows = db.execute(sql, params).fetchall()
        next_key = encode_cursor(owner, rows[limit - 1][0]) if len(rows) > limit else None
        photos = [photo_from_document(json.loads(document)) for _, document in rows[:limit]]
        return PhotoPageResult(photos=photos, next_key=next_key)

    def photo_months(self, owner: str) -> list[tuple[str, int]]:
        # One GROUP BY over the listing index (a covering scan of owner + status + sort_key, no documents read).
        with self._read() as db:
            rows = db.execute(
                "SELECT substr(sort_key, 1, 7) AS month, count(*) FROM photos WHERE owner = ? AND status = ?"
                " GROUP BY month ORDER BY month DESC",
                (owner, PhotoStatus.READY.value),
            ).fetchall()
        return [(month, count) for month, count in rows]

    def photo_ids(self, owner: str) -> list[str]:
        with self._read() as db:
            rows = db.execute("SELECT photo_id FROM photos WHERE owner = ? ORDER BY photo_id", (owner,)).fetchall()
        return [row[0] for row in rows]

    def delete_photo(self, owner: str, photo_id: str) -> None:
        with self._write() as db:
            row = db.execute(
                "SELECT sha256 FROM photos WHERE owner = ? AND photo_id = ?", (owner, photo_id)
            ).fetchone()
            if row is None:
                return
            db.execute("DELETE FROM photos WHERE owner = ? AND photo_id = ?", (owner, photo_id))
            if row[0]:
                db.execute(
                    "DELETE FROM content_claims WHERE owner = ? AND sha256 = ? AND photo_id = ?",
                    (owner, row[0], photo_id),
                )

    def claim_content(self, owner: str, sha256: str, photo_id: str) -> str:
        with self._write() as db:
            row = db.execute(
                "SELECT photo_id FROM content_claims WHERE owner = ? AND sha256 = ?", (owner, sha256)
            ).fetchone()
            if row is not None:
                holder = row[0]
                if holder == photo_id:
                    return photo_id
                holder_row = db.execute(
                    "SELECT status, expires_at FROM photos WHERE owner = ? AND photo_id = ?", (owner, holder)
                ).fetchone()
                # Same rule as DynamoDbMetadataStore: READY and live pending holders keep the claim.
                if holder_row is not None and not self._is_expired(holder_row[0], holder_row[1]) and holder_row[
                    0
                ] in (PhotoStatus.READY.value, PhotoStatus.PENDING_UPLOAD.value):
                    return holder
            db.execute(
                "INSERT OR REPLACE INTO content_claims (owner, sha256, photo_id) VALUES (?, ?, ?)",
                (owner, sha256, photo_id),
            )
            return photo_id

    def owners(self) -> list[str]:
        """Every owner with a READY photo (the local retrain trains and re-applies per owner)."""
        with self._read() as db:
            rows = db.execute(
                "SELECT DISTINCT owner FROM photos WHERE status = ? ORDER BY owner", (PhotoStatus.READY.value,)
            ).fetchall()
        return [row[0] for row in rows]

    def purge_expired(self) -> int:
        """Deletes pending records past their expiry; returns how many."""
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM photos WHERE status = ? AND expires_at IS NOT NULL AND expires_at <= ?",
                (PhotoStatus.PENDING_UPLOAD.value, _epoch(self._clock())),
            )
            return cursor.rowcount

    # ---- helpers ----------------------------------------------------------------------------------------

    def _is_expired(self, status: str, expires_at: int | None) -> bool:
        return (
            status == PhotoStatus.PENDING_UPLOAD.value
            and expires_at is not None
            and expires_at <= _epoch(self._clock())
        )



def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _row(photo: Photo, *, expires_at: int | None) -> tuple[object, ...]:
    sha256 = photo.metadata.sha256 if photo.metadata else None
    return (
        photo.owner,
        photo.photo_id,
        photo.status.value,
        listing_sort_key(photo),
        expires_at,
        sha256,
        json.dumps(photo_document(photo), separators=(",", ":")),
    )
