"""Where analysis results live, and the port both backends implement.

aws: attributes on the photo's own DynamoDB item (one item = one search document, so the stream that feeds
OpenSearch sees a photo whole), written with UpdateItem conditional on the stored analysis_version being
older. local: a table beside the photos table in the same SQLite file.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from photo_organizer.analysis.models import AnalysisResult
from photo_organizer.analysis.planning import PhotoRecord
from photo_organizer.errors import ValidationError
from photo_organizer.learning.datasets import IMAGE_EMBEDDING_DIMENSIONS
from photo_organizer.search.models import EMBEDDING_DIMENSIONS

EMBEDDING_BYTES = 4 * EMBEDDING_DIMENSIONS
_IMAGE_EMBEDDING_DTYPE = np.dtype("<f2")  # little-endian float32, as adapters.aws.stream_documents reads it back


def image_embedding_bytes(embedding: np.ndarray) -> bytes:
    """An image embedding as both feature stores keep it: little-endian float16 (2.5 KB)."""
    vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
    if vector.shape != (IMAGE_EMBEDDING_DIMENSIONS,) or not np.isfinite(vector).all():
        raise ValidationError(f"an image embedding is {IMAGE_EMBEDDING_DIMENSIONS} finite floats, got {vector.shape}")
    return vector.astype(_IMAGE_EMBEDDING_DTYPE).tobytes()


def image_embedding_from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype=_IMAGE_EMBEDDING_DTYPE).astype(np.float32)


class StoredPlace(BaseModel):
    """A reverse-geocoded place (GeoNames via a package: no paid geocoding API, in the cloud too)."""

    model_config = ConfigDict(frozen=True)

    city: str | None = None
    region: str | None = None
    country_code: str | None = None
    country: str | None = None
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)

    @property
    def short_name(self) -> str | None:
        """"Lagos, Portugal": what a caption says."""
        return ", ".join(part for part in (self.city, self.country) if part) or None


class PhotoAnalysis(BaseModel):
    """Everything analysis learned about one photo, stored as one unit."""

    model_config = ConfigDict(frozen=True)

    owner: str
    result: AnalysisResult
    caption: str = ""
    place: StoredPlace | None = None
    local_taken_at: datetime | None = Field(default=None, description="Capture time in the place's time zone.")
    time_zone: str | None = None
    # Written by the DynamoDB store only (the local index embeds at indexing time) and never read back: `get`
    # leaves it None. Out of dumps and reprs: 1.5 KB of float bytes says nothing to a reader of either.
    embedding: bytes | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description=f"The description's {EMBEDDING_DIMENSIONS}-d vector as little-endian float32.",
    )

    @field_validator("embedding")
    @classmethod
    def _embedding_size(cls, value: bytes | None) -> bytes | None:
        if value is not None and len(value) != EMBEDDING_BYTES:
            raise ValueError(f"embedding must be {EMBEDDING_BYTES} bytes, got {len(value)}")
        return value

    @property
    def photo_id(self) -> str:
        return self.result.photo_id

    @property
    def analysis_version(self) -> int:
        return self.result.analysis_version


@dataclass(frozen=True)
class PendingPage:
    photos: list[PhotoRecord]
    next_key: str | None


@dataclass(frozen=True)
class AnalysisFailure:
    owner: str
    photo_id: str
    analysis_version: int
    reason: str
    attempts: int
    last_failed_at: datetime


# ---- what both adapters share: the stored document, the search fields, the pending cursor ------------------

OCR_TEXT_MAX_CHARS = 4000
"""Enough for a receipt or a page; keeps a photo item (limit 400 KB) and its search document small."""

PENDING_CURSOR_VERSION = 1
_CURSOR_PART = re.compile(r"^[^#\x00]{1,256}$")
_MAX_CURSOR_CHARS = 2048
_RESULT_KEYS_OUTSIDE_DOCUMENT = frozenset({"photo_id", "analysis_version", "sensitive"})


def result_document(result: AnalysisResult) -> dict[str, Any]:
    """The result as JSON-ready values, without its keys (photo id, version: stored beside it) and without the
    derived sensitive flag (stored on its own for search, recomputed on read)."""
    document = result.model_dump(mode="json", exclude=set(_RESULT_KEYS_OUTSIDE_DOCUMENT))
    # weak_labels only when there are some: results of analysers without them keep their stored shape
    return {k: v for k, v in document.items() if v is not None and (v or k != "weak_labels")}


def analysis_from_parts(
    owner: str,
    photo_id: str,
    analysis_version: int,
    document: dict[str, Any],
    *,
    caption: str = "",
    place: dict[str, Any] | None = None,
    local_taken_at: str | datetime | None = None,
    time_zone: str | None = None,
) -> PhotoAnalysis:
    result = AnalysisResult.model_validate({**document, "photo_id": photo_id, "analysis_version": analysis_version})
    return PhotoAnalysis(
        owner=owner,
        result=result,
        caption=caption,
        place=StoredPlace.model_validate(place) if place else None,
        local_taken_at=local_taken_at,
        time_zone=time_zone,
    )


def label_terms(result: AnalysisResult) -> list[str]:
    """Every label name and ancestor, case-folded, sorted: what a search for "cat" or "animal" matches."""
    return sorted({name.casefold() for label in result.labels for name in (label.name, *label.parents)})


def weak_label_terms(result: AnalysisResult) -> list[str]:
    """Weak labels' names and ancestors, case-folded, sorted, minus what the labels already say."""
    strong = set(label_terms(result))
    return sorted({name.casefold() for label in result.weak_labels for name in (label.name, *label.parents)} - strong)


def ocr_text(result: AnalysisResult) -> str:
    """The text lines read from the photo, one per line, cut at OCR_TEXT_MAX_CHARS."""
    return "\n".join(line.text for line in result.text_lines)[:OCR_TEXT_MAX_CHARS]


def encode_pending_cursor(scope: str | None, owner: str, photo_id: str) -> str:
    """Cursor of `pending`: base64url (no padding) of the JSON {"v", "scope", "owner", "photo_id"}, where scope is
    the owner the listing was asked for (None: every owner) and owner/photo_id the last photo returned."""
    raw = json.dumps(
        {"v": PENDING_CURSOR_VERSION, "scope": scope, "owner": owner, "photo_id": photo_id}, separators=(",", ":")
    )
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode("ascii")


def decode_pending_cursor(scope: str | None, cursor: str) -> tuple[str, str]:
    """(owner, photo_id) to continue after; ValidationError for a cursor not made for this scope (a per-owner
    cursor never continues in another owner's photos)."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > _MAX_CURSOR_CHARS:
        raise ValidationError("invalid pending cursor")
    try:
        body = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("invalid pending cursor") from exc
    if (
        not isinstance(body, dict)
        or set(body) != {"v", "scope", "owner", "photo_id"}
        or body["v"] != PENDING_CURSOR_VERSION
        or body["scope"] != scope
    ):
        raise ValidationError("invalid pending cursor")
    owner, photo_id = body["owner"], body["photo_id"]
    if not all(isinstance(part, str) and _CURSOR_PART.fullmatch(part) for part in (owner, photo_id)):
        raise ValidationError("invalid pending cursor")
    if scope is not None and owner != scope:
        raise ValidationError("invalid pending cursor")
    return owner, photo_id
