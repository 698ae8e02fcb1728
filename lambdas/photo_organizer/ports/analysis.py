"""The analysis ports: the analyzer (Rekognition on the preview object in the cloud, CPU models shipped in packages
locally), the analysis store, the captioner (composed, or a SageMaker endpoint's), and the hooks the analysis
service is given (places, local times, face recording, consent, embeddings)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

import numpy as np

from photo_organizer.analysis.captioner import CaptionInputs
from photo_organizer.analysis.models import AnalysisPlan, AnalysisResult, FaceDetection
from photo_organizer.analysis.planning import PhotoRecord
from photo_organizer.analysis.store import AnalysisFailure, PendingPage, PhotoAnalysis, StoredPlace
from photo_organizer.models import GeoPoint


class Analyzer(Protocol):
    def analyze(self, preview_jpeg: bytes, plan: AnalysisPlan) -> AnalysisResult:
        """Runs the planned calls only, on the preview (never the original). Raises RetryableError on
        throttling/time-outs and PermanentError (e.g. InvalidImageError) on images the service refuses."""
        ...


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


class Captioner(Protocol):
    def caption(self, inputs: CaptionInputs) -> str:
        """One short caption; "" when nothing is known. Never raises for bad model output: falls back instead."""
        ...


PlaceResolver = Callable[[GeoPoint], StoredPlace | None]
LocalTimeResolver = Callable[[datetime | None, str | None, GeoPoint | None], tuple[datetime | None, str | None]]
FaceRecorder = Callable[[str, str, Sequence[FaceDetection]], None]
ConsentLookup = Callable[[str], bool]
Embed = Callable[[list[str]], np.ndarray]  # texts -> (len(texts), 384) float32, rows L2-normalised
ImageEmbed = Callable[[bytes], np.ndarray]  # preview JPEG -> (1280,) float32: the label model's penultimate layer


class FeatureStore(Protocol):
    """The image embedding of each analysed photo (learning.datasets.IMAGE_EMBEDDING_DIMENSIONS floats, stored as
    little-endian float16: 2.5 KB). aws: the `image_embedding` attribute (B) of the photo item; local: a table."""

    def save_image_embedding(self, owner: str, photo_id: str, embedding: np.ndarray) -> None: ...

    def image_embedding(self, owner: str, photo_id: str) -> np.ndarray | None: ...

    def image_embeddings(self, owner: str) -> dict[str, np.ndarray]:
        """photo id -> embedding, for the owner's photos that have one."""
        ...

    def forget_owner(self, owner: str) -> int:
        """Account erasure: deletes every embedding of the owner (also rows of photos already deleted); returns
        how many went. Idempotent; other owners untouched."""
        ...
