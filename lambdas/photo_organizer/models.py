"""Domain records and the API's request/response shapes (validated pydantic models at the edges)."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from photo_organizer.errors import RejectionReason

ALLOWED_CONTENT_TYPES: frozenset[str] = frozenset(
    {"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"}
)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class PhotoStatus(StrEnum):
    PENDING_UPLOAD = "PENDING_UPLOAD"
    READY = "READY"
    DUPLICATE = "DUPLICATE"
    REJECTED = "REJECTED"


class ImageFormat(StrEnum):
    JPEG = "JPEG"
    PNG = "PNG"
    WEBP = "WEBP"
    HEIF = "HEIF"

    @property
    def content_type(self) -> str:
        return {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "HEIF": "image/heif"}[self.value]


class GeoPoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    altitude_m: float | None = None


class ImageMetadata(BaseModel):
    """What the ingest step learns from the bytes; the declared type and filename count for nothing."""

    model_config = ConfigDict(frozen=True)

    format: ImageFormat
    width: int = Field(gt=0, description="Width after EXIF orientation is applied.")
    height: int = Field(gt=0)
    byte_size: int = Field(gt=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    phash: str = Field(pattern=r"^[0-9a-f]{16}$", description="64-bit DCT perceptual hash, hex.")
    taken_at: datetime | None = Field(
        default=None, description="Capture time; timezone-aware when the camera recorded an offset."
    )
    taken_at_offset: str | None = Field(default=None, description="The camera's UTC offset, e.g. '+02:00'.")
    gps: GeoPoint | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    orientation: int | None = Field(default=None, ge=1, le=8, description="EXIF orientation of the original.")


class Photo(BaseModel):
    """One photo record. The owner is always the verified token's `sub`."""

    owner: str
    photo_id: str
    status: PhotoStatus
    filename: str = Field(description="The client's name for the file, for display only; never part of a key.")
    declared_content_type: str
    declared_size: int
    created_at: datetime
    updated_at: datetime
    metadata: ImageMetadata | None = None
    rejection_reason: RejectionReason | None = None
    rejection_detail: str | None = None
    duplicate_of: str | None = None
    original_version: str | None = Field(
        default=None, description="The object version that was validated; later overwrites are never served."
    )

    @property
    def sort_time(self) -> datetime:
        """Newest-first listing order: capture time when known, else upload time, always in UTC."""
        taken = self.metadata.taken_at if self.metadata else None
        if taken is None:
            return self.created_at.astimezone(timezone.utc)
        if taken.tzinfo is None:
            return taken.replace(tzinfo=timezone.utc)
        return taken.astimezone(timezone.utc)


# ---- API shapes -------------------------------------------------------------------------------------------


def clean_filename(name: str) -> str:
    """Keep a display name printable: drop control and bidi-override characters, path parts and NULs."""
    bidi = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f"}
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(ch for ch in name if ch.isprintable() and ch not in bidi)
    return kept.strip()[:255] or "untitled"


class UploadRequest(BaseModel):
    # strict: request bodies are JSON, so a string is never a number ("size": "10" answers 422, not 10 bytes).
    model_config = ConfigDict(extra="forbid", strict=True)

    filename: str = Field(min_length=1, max_length=1024)
    # Listed as an enum so the document says what is accepted (Schemathesis' valid cases were all refused with 422);
    # the validator still takes any case and surrounding spaces.
    content_type: str = Field(
        description="One of image/jpeg, image/png, image/webp, image/heic, image/heif.",
        json_schema_extra={"enum": sorted(ALLOWED_CONTENT_TYPES)},
    )
    size: int = Field(gt=0, description="Size in bytes; the upload policy pins the allowed range.")

    @field_validator("content_type")
    @classmethod
    def _allowed_type(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ALLOWED_CONTENT_TYPES:
            raise ValueError(f"content_type must be one of {sorted(ALLOWED_CONTENT_TYPES)}")
        return value


class UploadTicket(BaseModel):
    photo_id: str
    url: str = Field(description="POST a multipart form with `fields` followed by the `file` part to this URL.")
    fields: dict[str, str]
    expires_at: datetime


class DerivativeUrls(BaseModel):
    thumbnail: str | None = None
    preview: str | None = None
    original: str | None = None
    expires_at: datetime


class PhotoSummary(BaseModel):
    photo_id: str
    status: PhotoStatus
    filename: str
    taken_at: datetime | None
    uploaded_at: datetime
    width: int | None = None
    height: int | None = None
    thumbnail_url: str | None = Field(default=None, description="Short-lived signed link to the 320 px WebP.")


class PhotoDetail(PhotoSummary):
    content_type: str | None = None
    byte_size: int | None = None
    sha256: str | None = None
    taken_at_offset: str | None = None
    gps: GeoPoint | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    duplicate_of: str | None = None
    rejection_reason: RejectionReason | None = None
    rejection_message: str | None = None
    urls: DerivativeUrls | None = None
    analysis: PhotoAnalysisView | None = None


class PhotoPerson(BaseModel):
    person_id: str
    name: str | None = None


class FaceBox(BaseModel):
    """Where a face is, as fractions of the photo's width and height (0..1, after EXIF orientation)."""

    left: float
    top: float
    width: float
    height: float


class PhotoFace(BaseModel):
    """One grouped face of a photo: its box and the person it is in (None: in no person yet). The face_id is what
    POST /faces/{face_id}/move and /not-person take."""

    face_id: str
    box: FaceBox
    person_id: str | None = None
    name: str | None = None


class SuggestedTag(BaseModel):
    """A tag the user's tagging model thinks the photo has (not on it until the user takes it)."""

    tag: str
    confidence: float = Field(ge=0, le=1)


class PhotoAnalysisView(BaseModel):
    """What analysis found, as the API shows it. Local analysis is more basic than Rekognition's (see source)."""

    source: str
    analysed_at: datetime
    caption: str = ""
    tags: list[str] = Field(
        default_factory=list,
        description="Label names with their parents, most confident first, as the user's feedback leaves them "
        "(rejected ones gone, the user's own added).",
    )
    suggested_tags: list[SuggestedTag] = Field(
        default_factory=list, description="Tags the user's tagging model suggests, most confident first."
    )
    text: list[str] = Field(default_factory=list, description="Lines of text read in the photo.")
    face_count: int = 0
    people: list[PhotoPerson] = Field(default_factory=list)
    faces: list[PhotoFace] = Field(
        default_factory=list, description="The photo's grouped faces with boxes (empty without biometric consent)."
    )
    place: str | None = None
    local_taken_at: datetime | None = None
    time_zone: str | None = None
    sensitive: bool = False


class PhotoPage(BaseModel):
    items: list[PhotoSummary]
    next_cursor: str | None = None


class MonthCount(BaseModel):
    month: str = Field(description="YYYY-MM, the UTC month of the photos' capture time (else upload time)")
    count: int


class PhotoMonths(BaseModel):
    months: list[MonthCount] = Field(description="Every month with READY photos, newest first")


class ErrorBody(BaseModel):
    code: str
    message: str
