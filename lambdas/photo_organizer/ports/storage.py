"""The narrow interfaces the services see. Adapters in adapters/aws and adapters/local implement them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from photo_organizer.models import Photo, PhotoStatus


@dataclass(frozen=True)
class PresignedPost:
    url: str
    fields: dict[str, str]
    expires_at: datetime


@dataclass(frozen=True)
class StoredBlob:
    data: bytes
    version: str | None
    content_type: str | None


class BlobStore(Protocol):
    """One storage area (originals, or derivatives). Keys are built by photo_organizer.keys only."""

    def put(self, key: str, data: bytes, *, content_type: str) -> None: ...

    def get(self, key: str, *, version: str | None = None) -> StoredBlob:
        """Raises BlobNotFoundError when the key (or that version) does not exist."""
        ...

    def exists(self, key: str) -> bool: ...

    def keys(self, prefix: str) -> list[str]:
        """Every key (newest version present) starting with prefix, sorted: the library audit's listing."""
        ...

    def delete(self, key: str) -> None:
        """Removes every version of the key; deleting a missing key is not an error."""
        ...

    def delete_version(self, key: str, version: str) -> None:
        """Removes one version of the key, leaving the others; a missing version is not an error."""
        ...

    def move(self, key: str, new_key: str) -> None:
        """Moves the newest version to new_key and removes every version of key."""
        ...

    def signed_get_url(
        self, key: str, *, ttl: timedelta, version: str | None = None, download_name: str | None = None
    ) -> str: ...

    def presigned_post(self, key: str, *, content_type: str, max_bytes: int, ttl: timedelta) -> PresignedPost:
        """A browser-style POST whose policy pins exactly this key, content type, size range and expiry."""
        ...


@dataclass(frozen=True)
class PhotoPageResult:
    photos: list[Photo]
    next_key: str | None
    """Opaque to the store's caller; the service wraps it into an API cursor bound to the owner."""


class MetadataStore(Protocol):
    def create_photo(self, photo: Photo, *, pending_ttl: timedelta) -> None:
        """Records a new PENDING_UPLOAD photo; raises ConflictError if the id exists. A pending record that
        is never uploaded expires after pending_ttl."""
        ...

    def get_photo(self, owner: str, photo_id: str) -> Photo | None: ...

    def finish_photo(self, photo: Photo, *, expected_status: PhotoStatus) -> None:
        """Replaces the record only while it is still in expected_status (ConflictError otherwise)."""
        ...

    def list_photos(
        self, owner: str, *, limit: int, after: str | None, before: datetime | None = None
    ) -> PhotoPageResult:
        """READY photos of one owner, newest first by Photo.sort_time, then photo_id descending; with before,
        only those whose sort_time is at or older than that instant (the cursor still pages on from there)."""
        ...

    def photo_months(self, owner: str) -> list[tuple[str, int]]:
        """('YYYY-MM', count) of one owner's READY photos by the UTC month of Photo.sort_time, newest first."""
        ...

    def photo_ids(self, owner: str) -> list[str]:
        """Every photo id of the owner in any status (pending, ready, rejected), sorted: account erasure walks it."""
        ...

    def delete_photo(self, owner: str, photo_id: str) -> None:
        """Removes the photo record and any content-hash claim that points at it. Idempotent."""
        ...

    def claim_content(self, owner: str, sha256: str, photo_id: str) -> str:
        """Atomically claims a content hash for a photo and returns the photo id that holds the claim
        (photo_id itself when it won, or was already the holder)."""
        ...


class IngestBacklog(Protocol):
    """Upload events not yet ingested (queued or dead-lettered) that name an owner's keys: the local queue's rows.
    The cloud's SQS messages expire by themselves (retention) and name keys whose objects erasure deletes."""

    def owner_events(self, owner: str) -> int: ...

    def forget_owner(self, owner: str) -> int:
        """Removes the owner's queued and dead-lettered events; returns how many."""
        ...


class UsedUploads(Protocol):
    """The local gateway's record of spent upload URLs, one row per key (the key names the owner). S3 keeps no such
    record in the cloud: a presigned POST may be repeated there until it expires."""

    def owner_claims(self, owner: str) -> int: ...

    def forget_owner(self, owner: str) -> int:
        """Removes the rows of the owner's keys; returns how many. A URL of theirs replayed before it expires then
        stores an original without a record, which the ingest removes as an orphan (as in the cloud)."""
        ...
