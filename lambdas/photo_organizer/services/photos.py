"""Reading and deleting an owner's photos. Another owner's photo is indistinguishable from a missing one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from photo_organizer.analysis.captions import compose_caption
from photo_organizer.analysis.store import PhotoAnalysis
from photo_organizer.ports.analysis import AnalysisStore
from photo_organizer.errors import REJECTION_MESSAGES, PhotoNotFoundError, RetryableError
from photo_organizer.feedback.effects import apply_feedback, caption_context, shown_suggestions, suppressed_tags
from photo_organizer.feedback.models import TagOverlay
from photo_organizer.keys import PhotoKeys, check_owner
from photo_organizer.models import (
    DerivativeUrls,
    FaceBox,
    MonthCount,
    Photo,
    PhotoAnalysisView,
    PhotoDetail,
    PhotoPage,
    PhotoFace,
    PhotoMonths,
    PhotoPerson,
    PhotoStatus,
    PhotoSummary,
    SuggestedTag,
    utcnow,
)
from photo_organizer.ports.feedback import FeedbackStore, SuggestionStore
from photo_organizer.ports.storage import BlobStore, MetadataStore
from photo_organizer.settings import Settings

if TYPE_CHECKING:
    from photo_organizer.services.people import PeopleService

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100


def summarize(photo: Photo) -> PhotoSummary:
    meta = photo.metadata
    return PhotoSummary(
        photo_id=photo.photo_id,
        status=photo.status,
        filename=photo.filename,
        taken_at=meta.taken_at if meta else None,
        uploaded_at=photo.created_at,
        width=meta.width if meta else None,
        height=meta.height if meta else None,
    )


@dataclass
class PhotoService:
    originals: BlobStore
    derivatives: BlobStore
    metadata: MetadataStore
    settings: Settings
    analysis: AnalysisStore | None = None
    people: PeopleService | None = None
    on_deleted: Callable[[str, str], None] | None = None  # (owner, photo id): local search forgets it
    feedback: FeedbackStore | None = None  # the user's corrections: the view shows the photo as they leave it
    suggestions: SuggestionStore | None = None  # the tagging model's beliefs: suppressed and suggested tags

    def list(
        self, owner: str, *, limit: int = 50, cursor: str | None = None, before: datetime | None = None
    ) -> PhotoPage:
        """Newest first; with before, starting at the photos taken (else uploaded) at or before that instant."""
        check_owner(owner)
        page = self.metadata.list_photos(
            owner, limit=max(1, min(limit, MAX_PAGE_SIZE)), after=cursor, before=before
        )
        return PhotoPage(items=self._with_thumbnails(page.photos), next_cursor=page.next_key)

    def months(self, owner: str) -> PhotoMonths:
        """Every month of the owner's timeline with its photo count, newest first (the date scrubber)."""
        check_owner(owner)
        return PhotoMonths(
            months=[MonthCount(month=month, count=count) for month, count in self.metadata.photo_months(owner)]
        )

    def summaries(self, owner: str, photo_ids: list[str]) -> PhotoPage:
        """READY photos among photo_ids, newest first (a person's photos; later, search hits)."""
        check_owner(owner)
        photos = [p for p in (self.metadata.get_photo(owner, i) for i in photo_ids) if p and p.status is PhotoStatus.READY]
        photos.sort(key=lambda p: (p.sort_time, p.photo_id), reverse=True)
        return PhotoPage(items=self._with_thumbnails(photos))

    def _with_thumbnails(self, photos: list[Photo]) -> list[PhotoSummary]:
        items = []
        for photo in photos:
            item = summarize(photo)
            item.thumbnail_url = self.thumbnail_url(photo)
            items.append(item)
        return items

    def thumbnail_url(self, photo: Photo) -> str:
        key = PhotoKeys.for_photo(photo.owner, photo.photo_id).thumbnail
        return self.derivatives.signed_get_url(key, ttl=self.settings.download_url_ttl)

    def get(self, owner: str, photo_id: str) -> PhotoDetail:
        photo = self._owned(owner, photo_id)
        meta = photo.metadata
        detail = PhotoDetail(
            **summarize(photo).model_dump(),
            content_type=meta.format.content_type if meta else None,
            byte_size=meta.byte_size if meta else None,
            sha256=meta.sha256 if meta else None,
            taken_at_offset=meta.taken_at_offset if meta else None,
            gps=meta.gps if meta else None,
            camera_make=meta.camera_make if meta else None,
            camera_model=meta.camera_model if meta else None,
            duplicate_of=photo.duplicate_of,
            rejection_reason=photo.rejection_reason,
            rejection_message=REJECTION_MESSAGES[photo.rejection_reason] if photo.rejection_reason else None,
        )
        if photo.status in (PhotoStatus.READY, PhotoStatus.DUPLICATE):
            detail.urls = self._urls(photo)
        if self.analysis is not None and photo.status is PhotoStatus.READY:
            analysis = self.analysis.get(owner, photo.photo_id)
            if analysis is not None:
                detail.analysis = self._analysis_view(analysis)
        return detail

    def _analysis_view(self, analysis: PhotoAnalysis) -> PhotoAnalysisView:
        result = analysis.result
        labels = sorted(result.labels, key=lambda label: -label.confidence)
        people = self.people.people_in_photo(analysis.owner, result.photo_id) if self.people else []
        place = analysis.place
        caption = analysis.caption
        names = [p.name for p in people if p.name and not p.hidden]
        place_name = place.short_name if place else None
        context = caption_context(names, len(result.faces), place_name, analysis.local_taken_at)
        if names:
            # Names change after analysis (the user names a person): the caption is recomposed when read.
            caption = compose_caption(list(context.people_names), list(result.labels), place_name,
                                      analysis.local_taken_at)
        overlay = self.feedback.overlay(analysis.owner, result.photo_id) if self.feedback else TagOverlay()
        suggestions = self.suggestions.suggestions(analysis.owner, result.photo_id) if self.suggestions else []
        after = apply_feedback(labels, caption, overlay, suppressed_tags(suggestions), context)
        return PhotoAnalysisView(
            source=result.source.value,
            analysed_at=result.analysed_at,
            caption=after.caption,
            tags=after.tags,
            suggested_tags=[
                SuggestedTag(tag=s.tag, confidence=round(s.confidence, 4))
                for s in shown_suggestions(suggestions, overlay, after.tags)
            ],
            text=[line.text for line in result.text_lines],
            face_count=len(result.faces),
            people=[PhotoPerson(person_id=p.person_id, name=p.name) for p in people if not p.hidden],
            faces=[
                PhotoFace(
                    face_id=face.face_id,
                    box=FaceBox(left=face.box.left, top=face.box.top, width=face.box.width, height=face.box.height),
                    person_id=person.person_id if person else None,
                    name=person.name if person else None,
                )
                for face, person in (self.people.faces_in_photo(analysis.owner, result.photo_id) if self.people else [])
            ],
            place=", ".join(x for x in (place.city, place.region, place.country) if x) if place else None,
            local_taken_at=analysis.local_taken_at,
            time_zone=analysis.time_zone,
            sensitive=result.sensitive,
        )

    def delete(self, owner: str, photo_id: str) -> None:
        photo = self._owned(owner, photo_id)
        keys = PhotoKeys.for_photo(owner, photo.photo_id)
        # Bytes first, record last: an interrupted delete can be repeated, and nothing is ever orphaned
        # behind a record that no longer exists.
        self.originals.delete(keys.original)
        self.originals.delete(keys.quarantine)
        self.derivatives.delete(keys.preview)
        self.derivatives.delete(keys.thumbnail)
        if self.people is not None:
            self.people.forget_photo(owner, photo.photo_id)
        if self.feedback is not None:
            self.feedback.forget_photo(owner, photo.photo_id)
        if self.analysis is not None:
            self.analysis.delete(owner, photo.photo_id)
        self.metadata.delete_photo(owner, photo.photo_id)
        if self.on_deleted is not None:
            try:
                self.on_deleted(owner, photo.photo_id)
            except RetryableError:
                # The photo is deleted (its record is the truth, and search answers only photos with a record);
                # its document goes with the next reconcile (SearchService.reconcile) rather than a failed delete.
                logger.warning("search document left for reconcile", extra={"photo_id": photo.photo_id})

    def _owned(self, owner: str, photo_id: str) -> Photo:
        check_owner(owner)
        try:
            keys = PhotoKeys.for_photo(owner, photo_id)
        except Exception as exc:
            raise PhotoNotFoundError(photo_id) from exc
        photo = self.metadata.get_photo(keys.owner, keys.photo_id)
        if photo is None:
            raise PhotoNotFoundError(photo_id)
        return photo

    def _urls(self, photo: Photo) -> DerivativeUrls:
        keys = PhotoKeys.for_photo(photo.owner, photo.photo_id)
        ttl = self.settings.download_url_ttl
        return DerivativeUrls(
            thumbnail=self.derivatives.signed_get_url(keys.thumbnail, ttl=ttl),
            preview=self.derivatives.signed_get_url(keys.preview, ttl=ttl),
            original=self.originals.signed_get_url(
                keys.original, ttl=ttl, version=photo.original_version, download_name=photo.filename
            ),
            expires_at=utcnow() + ttl,
        )
