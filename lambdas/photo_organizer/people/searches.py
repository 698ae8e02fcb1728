"""What face clustering keeps between runs: each face's last similarity search and the owner's last clustering."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class FaceSearch:
    """What one SearchFaces call found for a face: the matching Rekognition FaceIds and their similarity (0..1),
    with the parameters it ran with (a search under other parameters is stale)."""

    searched_at: datetime
    threshold: float  # FaceMatchThreshold, percent
    max_faces: int
    matches: Mapping[str, float]


@dataclass(frozen=True)
class ClusteringMark:
    """The owner's last clustering: the digest of its inputs and when a full clustering last ran."""

    digest: str
    clustered_at: datetime
    last_full_at: datetime | None
    matcher_digest: str | None = None  # the promoted face matcher it ran with (None: the fixed threshold)
