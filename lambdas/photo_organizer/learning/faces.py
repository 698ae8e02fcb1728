"""The per-owner face matcher at inference: is this pair of faces one person? numpy only.

A calibrated logistic pair classifier over what both backends know about a pair: its similarity on the common
0..1 scale (Rekognition SearchFaces Similarity/100 in the cloud; locally dlib's descriptor distance through
`similarity_from_distance`), both faces' qualities and box areas. Where the faces have dlib descriptors (local
backend), a learned linear projection head (trained on the owner's confirmed and rejected faces) maps the 128-d
descriptors first, and the similarity is that of the projected descriptors.

`threshold` is the similarity at which the matcher says 0.5 for a pair of typical faces (the training pairs'
mean quality and area): the one cut the people clustering uses on its similarity edges, so a promoted matcher
replaces people.models.DEFAULT_THRESHOLD without the clustering knowing about logistic models. With a projection
head the clustering projects the descriptors (`project`) before measuring distances, and applies that cut.

The logistic distance->similarity map is people.models' (mirrored: this package may not import people; a unit
test keeps them equal).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from photo_organizer.learning.arrays import array_from_json, array_to_json

KIND = "faces"
MODEL_FORMAT = 1
DEFAULT_THRESHOLD = 0.80  # people.models.DEFAULT_THRESHOLD
DLIB_DECISION_DISTANCE = 0.6
_LOGISTIC_SLOPE = 15.0
_LOGISTIC_MIDPOINT = DLIB_DECISION_DISTANCE + math.log(1 / DEFAULT_THRESHOLD - 1) / -_LOGISTIC_SLOPE
PAIR_FEATURES = ("similarity_logit", "quality_min", "quality_max", "area_min_sqrt", "area_max_sqrt")
_EPS = 1e-6


def similarities_from_distances(distances: np.ndarray | float) -> np.ndarray:
    """people.models.similarities_from_distances: dlib's 0.6 decision distance lands on 0.80."""
    return 1.0 / (1.0 + np.exp(_LOGISTIC_SLOPE * (np.asarray(distances, dtype=np.float64) - _LOGISTIC_MIDPOINT)))


def logit(p: np.ndarray | float) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


def pair_features(
    similarity: np.ndarray | float,
    quality_a: np.ndarray | float,
    quality_b: np.ndarray | float,
    area_a: np.ndarray | float,
    area_b: np.ndarray | float,
) -> np.ndarray:
    """(pairs, len(PAIR_FEATURES)): symmetric in a and b. Qualities 0..1; areas are ratios of the preview."""
    qa, qb = np.asarray(quality_a, dtype=np.float64), np.asarray(quality_b, dtype=np.float64)
    aa = np.sqrt(np.clip(np.asarray(area_a, dtype=np.float64), 0.0, 1.0))
    ab = np.sqrt(np.clip(np.asarray(area_b, dtype=np.float64), 0.0, 1.0))
    columns = [logit(similarity), np.minimum(qa, qb), np.maximum(qa, qb), np.minimum(aa, ab), np.maximum(aa, ab)]
    return np.column_stack([np.broadcast_to(c, np.broadcast(*columns).shape).reshape(-1) for c in columns])


@dataclass
class FaceMatcher:
    owner: str
    coef: np.ndarray  # (len(PAIR_FEATURES),) on standardised pair features
    intercept: float
    mean: np.ndarray  # (len(PAIR_FEATURES),): also what a missing quality/area is taken to be
    scale: np.ndarray
    projection: np.ndarray | None = None  # (k, 128): descriptors -> projected descriptors
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(PAIR_FEATURES)
        if self.coef.shape != (n,) or self.mean.shape != (n,) or self.scale.shape != (n,):
            raise ValueError(f"face matcher arrays must have {n} values")
        if self.projection is not None and self.projection.ndim != 2:
            raise ValueError("a projection head is a matrix")

    @classmethod
    def untrained(cls, owner: str = "", threshold: float = DEFAULT_THRESHOLD) -> FaceMatcher:
        """The fixed-threshold behaviour as a matcher: p = 0.5 at `threshold`, logistic in the similarity's logit
        (what the review queue ranks by before any matcher was promoted)."""
        n = len(PAIR_FEATURES)
        coef = np.zeros(n)
        coef[0] = 1.0
        mean = np.array([float(logit(threshold)), 0.5, 0.5, 0.3, 0.3])
        return cls(owner, coef, 0.0, mean, np.ones(n), None, {"untrained": True})

    @property
    def trained(self) -> bool:
        return not self.info.get("untrained", False)

    def _impute(self, value, column: int) -> np.ndarray:
        raw = np.asarray(np.nan if value is None else value, dtype=np.float64)
        if column >= 3:  # areas enter as square roots; the mean is stored on that scale
            fallback = float(self.mean[column]) ** 2
        else:
            fallback = float(self.mean[column])
        return np.where(np.isnan(raw), fallback, raw)

    def probabilities(self, similarity, quality_a=None, quality_b=None, area_a=None, area_b=None) -> np.ndarray:
        """Vectorised `probability`; a missing quality or area (None or NaN) counts as a typical one."""
        features = pair_features(
            similarity,
            self._impute(quality_a, 1),
            self._impute(quality_b, 1),
            self._impute(area_a, 3),
            self._impute(area_b, 3),
        )
        z = ((features - self.mean) / self.scale) @ self.coef + self.intercept
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    def probability(
        self,
        similarity: float,
        quality_a: float | None = None,
        quality_b: float | None = None,
        *,
        area_a: float | None = None,
        area_b: float | None = None,
    ) -> float:
        """Calibrated P(same person) for a pair with this similarity (0..1, on the projected descriptors when the
        matcher has a projection head)."""
        return float(self.probabilities(similarity, quality_a, quality_b, area_a, area_b)[0])

    @property
    def threshold(self) -> float:
        """The similarity (0..1) where a pair of typical faces reaches p = 0.5."""
        if self.coef[0] <= 0:
            return DEFAULT_THRESHOLD  # a degenerate fit: similarity does not raise the odds; keep the default
        rest = float(self.intercept)  # the other features sit at their means: their standardised value is 0
        x0 = self.mean[0] - rest * self.scale[0] / self.coef[0]
        return float(min(0.999, max(0.001, 1.0 / (1.0 + math.exp(-x0)))))

    def project(self, descriptors: np.ndarray) -> np.ndarray:
        """(n, 128) -> (n, k) projected descriptors; the descriptors themselves without a projection head."""
        values = np.asarray(descriptors, dtype=np.float64)
        if self.projection is None:
            return values
        return values @ self.projection.T

    def similarity(self, descriptor_a: np.ndarray, descriptor_b: np.ndarray) -> float:
        """The pair's similarity on the common scale, after the projection head (if any)."""
        a, b = self.project(np.atleast_2d(descriptor_a)), self.project(np.atleast_2d(descriptor_b))
        return float(similarities_from_distances(np.linalg.norm(a - b, axis=1))[0])

    def to_json(self) -> dict:
        return {
            "kind": KIND,
            "format": MODEL_FORMAT,
            "owner": self.owner,
            "features": list(PAIR_FEATURES),
            "coef": [float(v) for v in self.coef],
            "intercept": float(self.intercept),
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
            "projection": None if self.projection is None else array_to_json(self.projection),
            "threshold": self.threshold,  # informative: recomputed from the weights on load
            "info": self.info,
        }

    @classmethod
    def from_json(cls, body: Mapping) -> FaceMatcher:
        if body.get("kind", KIND) != KIND or int(body.get("format", MODEL_FORMAT)) != MODEL_FORMAT:
            raise ValueError(f"not a format-{MODEL_FORMAT} face matcher: {body.get('kind')}/{body.get('format')}")
        if list(body.get("features", PAIR_FEATURES)) != list(PAIR_FEATURES):
            raise ValueError(f"face matcher features {body.get('features')} are not {list(PAIR_FEATURES)}")
        projection = body.get("projection")
        return cls(
            owner=str(body["owner"]),
            coef=np.asarray(body["coef"], dtype=np.float64),
            intercept=float(body["intercept"]),
            mean=np.asarray(body["mean"], dtype=np.float64),
            scale=np.asarray(body["scale"], dtype=np.float64),
            projection=None if projection is None else array_from_json(projection),
            info=dict(body.get("info", {})),
        )


def matchers_from_document(document: Mapping | None) -> dict[str, FaceMatcher]:
    """owner -> matcher, from a model.json ({"kind": "faces", "owners": {owner: matcher}}); {} for None."""
    if not document:
        return {}
    if document.get("kind", KIND) != KIND:
        raise ValueError(f"not a face matcher document: {document.get('kind')}")
    return {owner: FaceMatcher.from_json(body) for owner, body in (document.get("owners") or {}).items()}


def document(matchers, skipped: Mapping[str, str] | None = None, **info) -> dict:
    return {
        "kind": KIND,
        "schema": MODEL_FORMAT,
        "owners": {m.owner: m.to_json() for m in matchers},
        "skipped": dict(skipped or {}),
        **info,
    }
