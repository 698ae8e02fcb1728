"""Faces, similarity edges, people and the user's corrections: the records the people clustering works on.

Similarities are on one 0..1 scale for both backends so that one threshold serves both:
- cloud: Rekognition SearchFaces `Similarity / 100`; its own default FaceMatchThreshold is 80;
- local: dlib's 128-d ResNet descriptor distance through `similarity_from_distance`, calibrated so that dlib's
  documented 0.6 decision distance lands on 0.80 (same person, distance ~0.33-0.42 -> 0.98-0.996; different
  people, ~0.82-0.89 -> 0.13-0.05).

Edges are a slotted dataclass, not a pydantic model: a few thousand faces give a few hundred thousand of them,
and nothing outside this package parses them.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from photo_organizer.errors import PermanentError

DEFAULT_THRESHOLD = 0.80
"""Edges below this similarity say nothing: Rekognition's default FaceMatchThreshold, dlib's 0.6 distance."""

DLIB_DECISION_DISTANCE = 0.6
_LOGISTIC_SLOPE = 15.0  # per unit of distance; steep enough that the documented ranges land far on either side
_LOGISTIC_MIDPOINT = DLIB_DECISION_DISTANCE + math.log(1 / DEFAULT_THRESHOLD - 1) / -_LOGISTIC_SLOPE

_PERSON_NAMESPACE = uuid.UUID("6f1b7a8e-3c55-5a0e-9d43-0c9f0e5b2a61")


class OwnerMismatchError(PermanentError):
    """A face or person of another owner reached a per-owner computation: people never span owners."""


def similarity_from_distance(distance: float) -> float:
    """Map a euclidean distance between two dlib face descriptors to the 0..1 similarity scale.

    A logistic in the distance, decreasing, with `similarity_from_distance(0.6) == DEFAULT_THRESHOLD`.
    """
    if distance < 0 or math.isnan(distance):
        raise ValueError(f"distance must be >= 0, got {distance}")
    return 1.0 / (1.0 + math.exp(_LOGISTIC_SLOPE * (distance - _LOGISTIC_MIDPOINT)))


def similarities_from_distances(distances: np.ndarray) -> np.ndarray:
    """`similarity_from_distance` over an array (for the nearest-neighbour search)."""
    return 1.0 / (1.0 + np.exp(_LOGISTIC_SLOPE * (np.asarray(distances, dtype=np.float64) - _LOGISTIC_MIDPOINT)))


def distance_from_similarity(similarity: float) -> float:
    """The inverse of `similarity_from_distance` (for turning a similarity threshold into a distance cut-off)."""
    if not 0.0 < similarity < 1.0:
        raise ValueError(f"similarity must be strictly between 0 and 1, got {similarity}")
    return max(0.0, _LOGISTIC_MIDPOINT + math.log(1 / similarity - 1) / _LOGISTIC_SLOPE)


def new_person_id(owner: str, seed_face_id: str, attempt: int = 0) -> str:
    """A person id derived from its owner and a face (the smallest face id of its first cluster): re-running on
    the same faces yields the same id, and ids never collide across owners."""
    suffix = f"/{attempt}" if attempt else ""
    return uuid.uuid5(_PERSON_NAMESPACE, f"{owner}/{seed_face_id}{suffix}").hex


class FaceRef(BaseModel):
    """One detected face: enough to cluster and to choose a cover; the descriptor/collection entry lives elsewhere."""

    model_config = ConfigDict(frozen=True)

    face_id: str = Field(min_length=1)
    photo_id: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    quality: float = Field(ge=0.0, le=1.0, description="Sharpness/pose/size score; the best face becomes the cover.")
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SimilarityEdge:
    """Two faces of one owner that look alike. Stored with `a < b`; build through `SimilarityEdge.of`."""

    a: str
    b: str
    similarity: float

    def __post_init__(self) -> None:
        if not self.a < self.b:
            raise ValueError(f"edge ends must be ordered and distinct: {self.a!r}, {self.b!r}")
        if not 0.0 <= self.similarity <= 1.0:
            raise ValueError(f"similarity must be within 0..1, got {self.similarity}")

    @classmethod
    def of(cls, a: str, b: str, similarity: float) -> SimilarityEdge:
        return cls(a, b, similarity) if a < b else cls(b, a, similarity)


class Person(BaseModel):
    """A group of faces the app shows as one person. `named` is derived: a person is named when it has a name."""

    model_config = ConfigDict(frozen=True)

    person_id: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    name: str | None = None
    hidden: bool = False
    face_ids: frozenset[str] = frozenset()
    cover_face_id: str | None = None
    cover_chosen_by_user: bool = Field(default=False, description="A user-chosen cover survives re-clustering.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def named(self) -> bool:
        return self.name is not None

    @model_validator(mode="after")
    def _cover_is_one_of_the_faces(self) -> Person:
        if self.cover_face_id is not None and self.cover_face_id not in self.face_ids:
            raise ValueError(f"cover face {self.cover_face_id!r} is not one of the person's faces")
        return self


# ---- the user's corrections ---------------------------------------------------------------------------------
# Each carries the time the user made it: when two corrections contradict each other the newer one wins.


class _Constraint(BaseModel):
    model_config = ConfigDict(frozen=True)

    created_at: datetime | None = Field(default=None, description="When the user made it; None sorts oldest.")


class MustLink(_Constraint):
    """Faces `a` and `b` belong to the same person (a merge: see `merge_people` for the whole-person form)."""

    kind: Literal["must_link"] = "must_link"
    a: str
    b: str


class CannotLink(_Constraint):
    """"Not this person": the face never ends in `person_id`, whatever the similarities say."""

    kind: Literal["cannot_link"] = "cannot_link"
    face_id: str
    person_id: str


class PinnedFace(_Constraint):
    """The user put this face in `person_id` (a move): it stays there."""

    kind: Literal["pinned_face"] = "pinned_face"
    face_id: str
    person_id: str


class Split(_Constraint):
    """The user split `face_ids` off `person_id` into `new_person_id`: the two parts never join again."""

    kind: Literal["split"] = "split"
    person_id: str
    face_ids: frozenset[str] = Field(min_length=1)
    new_person_id: str


Constraint = Union[MustLink, CannotLink, PinnedFace, Split]


class Change(BaseModel):
    """What a run changed, for the activity log and for writing only what moved."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["person_created", "person_removed", "faces_added", "faces_removed", "constraint_ignored"]
    person_id: str | None = None
    face_ids: frozenset[str] = frozenset()
    detail: str = ""


class ClusteringResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    people: tuple[Person, ...] = Field(description="Sorted by person id.")
    unassigned_face_ids: frozenset[str]
    changes: tuple[Change, ...]

    def person_of(self, face_id: str) -> Person | None:
        return next((p for p in self.people if face_id in p.face_ids), None)
