"""The analysis port. Adapters: Rekognition on the preview object (aws), CPU models shipped in packages (local)."""

from __future__ import annotations

from typing import Protocol

from photo_organizer.analysis.models import AnalysisPlan, AnalysisResult


class Analyzer(Protocol):
    def analyze(self, preview_jpeg: bytes, plan: AnalysisPlan) -> AnalysisResult:
        """Runs the planned calls only, on the preview (never the original). Raises RetryableError on
        throttling/time-outs and PermanentError (e.g. InvalidImageError) on images the service refuses."""
        ...
