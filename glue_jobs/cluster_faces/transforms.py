"""The clustering job's transforms. They live in the domain package (photo_organizer.people.runs), which Glue
receives as an extra Python module, so that services.clustering runs exactly these decisions; this module is the
job's single import point for them."""

from photo_organizer.people.runs import (
    DEFAULT_SEARCH_TPS,
    SEARCH_FACES_PRICE_USD,
    ClusterSummary,
    Mode,
    OwnerOutcome,
    choose_mode,
    edges_from_searches,
    faces_to_search,
    input_digest,
    prune_people,
)
from photo_organizer.people.searches import ClusteringMark, FaceSearch

__all__ = [
    "DEFAULT_SEARCH_TPS",
    "SEARCH_FACES_PRICE_USD",
    "ClusterSummary",
    "ClusteringMark",
    "FaceSearch",
    "Mode",
    "OwnerOutcome",
    "choose_mode",
    "edges_from_searches",
    "faces_to_search",
    "input_digest",
    "prune_people",
]
