"""Where analysis results live, and the port both backends implement.

aws: attributes on the photo's own DynamoDB item (one item = one search document, so the stream that feeds
OpenSearch sees a photo whole), written with UpdateItem conditional on the stored analysis_version being
older. local: a table beside the photos table in the same SQLite file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from photo_organizer.analysis.models import AnalysisResult
from photo_organizer.analysis.planning import PhotoRecord


class StoredPlace(BaseModel):
    """A reverse-geocoded place (GeoNames via a package: no paid geocoding API, in the cloud too)."""

    model_config = ConfigDict(frozen=True)

    city: str | None = None
    region: str | None = None
    country_code: str | None = None
    country: str | None = None
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class PhotoAnalysis(BaseModel):
    """Everything analysis learned about one photo, stored as one unit."""

    model_config = ConfigDict(frozen=True)

    owner: str
    result: AnalysisResult
    caption: str = ""
    place: StoredPlace | None = None
    local_taken_at: datetime | None = Field(default=None, description="Capture time in the place's time zone.")
    time_zone: str | None = None

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


class AnalysisStore(Protocol):
    def pending(
        self, current_version: int, *, owner: str | None = None, limit: int = 500, after: str | None = None
    ) -> PendingPage:
        """READY photos whose stored analysis_version is below current_version, oldest photo id first.
        owner=None walks every owner (the batch job); a photo that failed is still pending (it is retried)."""
        ...

    def analysed(self, owner: str, *, min_version: int) -> list[PhotoRecord]:
        """The owner's photos already analysed at min_version or later (sources for duplicate copying)."""
        ...

    def save(self, analysis: PhotoAnalysis) -> bool:
        """Writes the analysis only while the stored version is older (True); a repeated or late write of the
        same or an older version changes nothing (False). Clears a recorded failure of that version."""
        ...

    def get(self, owner: str, photo_id: str) -> PhotoAnalysis | None: ...

    def record_failure(self, owner: str, photo_id: str, *, analysis_version: int, reason: str) -> int:
        """Remembers why a photo could not be analysed this run; returns how many times it has failed."""
        ...

    def failures(self, owner: str | None = None) -> list[AnalysisFailure]: ...

    def delete(self, owner: str, photo_id: str) -> None:
        """Forgets the analysis of a photo (the photo is being deleted). Idempotent."""
        ...
