"""A READY photo put straight into the stores (record, original, thumbnail), for handler-level tests under moto."""

from __future__ import annotations

from datetime import datetime, timedelta

from photo_organizer.keys import PhotoKeys
from photo_organizer.models import ImageFormat, ImageMetadata, Photo, PhotoStatus


def add_ready_photo(services, owner: str, photo_id: str, n: int, *, filename: str, now: datetime) -> PhotoKeys:
    """The n-th photo of an owner: a distinct content hash per (n, owner), as the ingest would record it."""
    pending = Photo(owner=owner, photo_id=photo_id, status=PhotoStatus.PENDING_UPLOAD, filename=filename,
                    declared_content_type="image/jpeg", declared_size=4, created_at=now, updated_at=now)
    services.metadata.create_photo(pending, pending_ttl=timedelta(days=1))
    metadata = ImageMetadata(format=ImageFormat.JPEG, width=4, height=4, byte_size=4,
                             sha256=f"{n}{owner}".encode().hex().ljust(64, "0")[:64], phash="0123456789abcdef")
    services.metadata.finish_photo(
        pending.model_copy(update={"status": PhotoStatus.READY, "metadata": metadata, "original_version": "v1"}),
        expected_status=PhotoStatus.PENDING_UPLOAD)
    keys = PhotoKeys.for_photo(owner, photo_id)
    services.originals.put(keys.original, b"jpeg", content_type="image/jpeg")
    services.derivatives.put(keys.thumbnail, b"webp", content_type="image/webp")
    return keys
