"""The analysis job's transforms. They live in the domain package (photo_organizer.analysis), which Glue
receives as an extra Python module, so that the local backend runs exactly the same decisions; this module is
the job's single import point for them."""

from photo_organizer.analysis.captions import compose_caption
from photo_organizer.analysis.costs import REKOGNITION_TIER1_PRICES, PriceTable, RunSummary, estimate_cost
from photo_organizer.analysis.dedupe import dedupe
from photo_organizer.analysis.planning import (
    DEFAULT_FACE_TRIGGER_LABELS,
    DEFAULT_TEXT_TRIGGER_CATEGORIES,
    DEFAULT_TEXT_TRIGGER_LABELS,
    DEFAULT_TPS_PER_API,
    AnalysisSettings,
    PhotoRecord,
    needs_analysis,
    plan_calls,
)
from photo_organizer.analysis.throttling import (
    BackoffResult,
    BackoffStats,
    TokenBucket,
    call_with_backoff,
    split_tps,
)
from photo_organizer.imaging.phash import hamming_distance as hamming

__all__ = [
    "DEFAULT_FACE_TRIGGER_LABELS",
    "DEFAULT_TEXT_TRIGGER_CATEGORIES",
    "DEFAULT_TEXT_TRIGGER_LABELS",
    "DEFAULT_TPS_PER_API",
    "REKOGNITION_TIER1_PRICES",
    "AnalysisSettings",
    "BackoffResult",
    "BackoffStats",
    "PhotoRecord",
    "PriceTable",
    "RunSummary",
    "TokenBucket",
    "call_with_backoff",
    "compose_caption",
    "dedupe",
    "estimate_cost",
    "hamming",
    "needs_analysis",
    "plan_calls",
    "split_tps",
]
