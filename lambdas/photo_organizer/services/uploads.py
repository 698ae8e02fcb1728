"""Starting an upload: record the photo as pending and hand out a presigned POST pinned to a server-built key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from photo_organizer.errors import AccountErasingError, ValidationError
from photo_organizer.keys import PhotoKeys, check_owner, new_photo_id
from photo_organizer.models import Photo, PhotoStatus, UploadRequest, UploadTicket, clean_filename, utcnow
from photo_organizer.ports.storage import BlobStore, MetadataStore
from photo_organizer.settings import Settings


class FileTooLargeError(ValidationError):
    code = "file_too_large"


@dataclass
class UploadService:
    originals: BlobStore
    metadata: MetadataStore
    settings: Settings
    # owner -> True while the account is being erased (AccountErasure): no new photo is started meanwhile.
    erasing: Callable[[str], bool] | None = None

    def start(self, owner: str, request: UploadRequest) -> UploadTicket:
        check_owner(owner)
        if self.erasing is not None and self.erasing(owner):
            raise AccountErasingError("the account is being erased")
        if request.size > self.settings.max_upload_bytes:
            raise FileTooLargeError(
                f"the file is {request.size} bytes; the limit is {self.settings.max_upload_bytes} bytes"
            )
        photo_id = new_photo_id()
        keys = PhotoKeys.for_photo(owner, photo_id)
        now = utcnow()
        self.metadata.create_photo(
            Photo(
                owner=owner,
                photo_id=photo_id,
                status=PhotoStatus.PENDING_UPLOAD,
                filename=clean_filename(request.filename),
                declared_content_type=request.content_type,
                declared_size=request.size,
                created_at=now,
                updated_at=now,
            ),
            pending_ttl=self.settings.pending_upload_ttl,
        )
        post = self.originals.presigned_post(
            keys.original,
            content_type=request.content_type,
            max_bytes=self.settings.max_upload_bytes,
            ttl=self.settings.upload_url_ttl,
        )
        return UploadTicket(photo_id=photo_id, url=post.url, fields=post.fields, expires_at=post.expires_at)
