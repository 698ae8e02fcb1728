"""Turning an uploaded original into a library photo: validate, derive previews, extract metadata, dedupe.

Idempotency comes from the photo's state machine rather than a separate idempotency table: only a photo in
PENDING_UPLOAD is processed, derivative keys are deterministic (a crash half-way is redone, not duplicated),
and the final write is conditional on the status still being PENDING_UPLOAD. A repeated or late event for the
same (bucket, key, sequencer) therefore changes nothing, on both backends alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


from photo_organizer.errors import BlobNotFoundError, ConflictError, InvalidImageError, PermanentError, RejectionReason
from photo_organizer.imaging import DerivativeSpec, DerivedImage, derive
from photo_organizer.keys import PhotoKeys
from photo_organizer.models import Photo, PhotoStatus, utcnow
from photo_organizer.ports.storage import BlobStore, MetadataStore
from photo_organizer.settings import RejectedAction, Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ObjectCreated:
    """The parts of an S3 Object Created notification that ingest needs."""

    bucket: str
    key: str
    size: int | None = None
    version: str | None = None
    sequencer: str | None = None


class IngestOutcome(StrEnum):
    READY = "ready"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    ALREADY_PROCESSED = "already_processed"
    ORPHAN_REMOVED = "orphan_removed"


@dataclass
class IngestService:
    originals: BlobStore
    derivatives: BlobStore
    metadata: MetadataStore
    settings: Settings
    on_ready: Callable[[Photo], None] | None = None  # local backend: index the photo for search

    @property
    def spec(self) -> DerivativeSpec:
        return DerivativeSpec(max_pixels=self.settings.max_pixels)

    def process(self, event: ObjectCreated) -> IngestOutcome:
        keys = PhotoKeys.from_original_key(event.key)
        photo = self.metadata.get_photo(keys.owner, keys.photo_id)
        if photo is None:
            # No record: the photo was deleted while uploading, or its pending record expired.
            self.originals.delete(keys.original)
            logger.warning("removed an original without a photo record", extra={"key": event.key})
            return IngestOutcome.ORPHAN_REMOVED
        if photo.status is not PhotoStatus.PENDING_UPLOAD:
            self._remove_stray_upload(photo, keys, event)
            if photo.status is PhotoStatus.READY and self.on_ready is not None:
                # A redelivery may be the retry of a delivery whose record was written but whose indexing failed
                # (the index was unavailable): indexing again is idempotent, so the retry completes it.
                self.on_ready(photo)
            logger.info("event for a finished photo ignored", extra={"photo_id": photo.photo_id, "sequencer": event.sequencer})
            return IngestOutcome.ALREADY_PROCESSED

        try:
            blob = self.originals.get(keys.original, version=event.version)
        except BlobNotFoundError:
            # The event outlived its object (deleted by the owner in between): nothing left to do.
            logger.warning("original vanished before ingest", extra={"key": event.key})
            return IngestOutcome.ALREADY_PROCESSED

        try:
            if not blob.data:
                raise InvalidImageError(RejectionReason.EMPTY_FILE)
            if len(blob.data) > self.settings.max_upload_bytes:
                raise InvalidImageError(RejectionReason.FILE_TOO_LARGE, f"{len(blob.data)} bytes")
            derived = derive(blob.data, self.spec)
        except InvalidImageError as rejection:
            return self._reject(photo, keys, rejection)
        return self._accept(photo, keys, derived, blob.version)

    def _remove_stray_upload(self, photo: Photo, keys: PhotoKeys, event: ObjectCreated) -> None:
        """S3's POST policy lets one upload URL be used again until it expires (two POSTs at once, or one after
        the photo was validated or rejected): each adds a version under the same key, never validated. The photo
        keeps the version it validated (READY/DUPLICATE record `original_version`; signed GETs pin it); any other
        version is removed here, and after a rejection, whatever the key holds. A repeated event for the
        validated version itself removes nothing (events arrive at least once)."""
        if event.version is None:
            return  # an unversioned bucket: the object was overwritten in place; nothing to tell apart
        if photo.status is PhotoStatus.REJECTED:
            if self.settings.rejected_action is RejectedAction.QUARANTINE and not self.originals.exists(keys.quarantine):
                # The rejection's move to quarantine/ was interrupted (a throttled copy): the redelivery finishes
                # it, or the refused file the operators keep for review would be lost.
                self.originals.move(keys.original, keys.quarantine)
                return
            self.originals.delete(keys.original)
        elif photo.original_version is not None and event.version != photo.original_version:
            self.originals.delete_version(keys.original, event.version)
        else:
            return
        logger.warning("removed an upload to an already used URL", extra={"photo_id": photo.photo_id})

    def _accept(self, photo: Photo, keys: PhotoKeys, derived: DerivedImage, version: str | None) -> IngestOutcome:
        try:
            self.derivatives.put(keys.preview, derived.preview_jpeg, content_type="image/jpeg")
            self.derivatives.put(keys.thumbnail, derived.thumbnail_webp, content_type="image/webp")
        except PermanentError:
            # Refused for good (e.g. the role may not use the bucket's KMS key): take back what was written, so the
            # photo stays cleanly PENDING while the message goes through its retries to the dead-letter queue.
            # A retryable failure keeps what was written: the redelivery overwrites it (keys are deterministic).
            for key in (keys.preview, keys.thumbnail):
                self.derivatives.delete(key)
            raise
        holder = self.metadata.claim_content(photo.owner, derived.metadata.sha256, photo.photo_id)
        is_duplicate = holder != photo.photo_id
        finished = photo.model_copy(
            update={
                "status": PhotoStatus.DUPLICATE if is_duplicate else PhotoStatus.READY,
                "metadata": derived.metadata,
                "duplicate_of": holder if is_duplicate else None,
                "original_version": version,
                "updated_at": utcnow(),
            }
        )
        if not self._finish(finished, keys):
            return IngestOutcome.ALREADY_PROCESSED
        logger.info("photo ingested", extra={"photo_id": photo.photo_id, "status": finished.status.value})
        if self.on_ready is not None and not is_duplicate:
            self.on_ready(finished)
        return IngestOutcome.DUPLICATE if is_duplicate else IngestOutcome.READY

    def _reject(self, photo: Photo, keys: PhotoKeys, rejection: InvalidImageError) -> IngestOutcome:
        finished = photo.model_copy(
            update={
                "status": PhotoStatus.REJECTED,
                "rejection_reason": rejection.reason,
                "rejection_detail": rejection.detail[:500] or None,
                "updated_at": utcnow(),
            }
        )
        # Record first, then remove the bytes: a crash in between is redone by the retry, and the user
        # already sees why the file was refused.
        if not self._finish(finished, keys):
            return IngestOutcome.ALREADY_PROCESSED
        if self.settings.rejected_action is RejectedAction.QUARANTINE:
            self.originals.move(keys.original, keys.quarantine)
        else:
            self.originals.delete(keys.original)
        logger.info("upload rejected", extra={"photo_id": photo.photo_id, "reason": rejection.reason.value})
        return IngestOutcome.REJECTED

    def _finish(self, finished: Photo, keys: PhotoKeys) -> bool:
        try:
            self.metadata.finish_photo(finished, expected_status=PhotoStatus.PENDING_UPLOAD)
            return True
        except ConflictError:
            if self.metadata.get_photo(keys.owner, keys.photo_id) is None:
                # Deleted while we worked: leave nothing behind.
                for store, key in (
                    (self.derivatives, keys.preview),
                    (self.derivatives, keys.thumbnail),
                    (self.originals, keys.original),
                ):
                    store.delete(key)
                self.metadata.delete_photo(keys.owner, keys.photo_id)
            return False
