"""The cloud clustering runs' pure decisions (the cluster_faces Glue job, services.clustering): no Spark, no boto3.
Which faces to search, which edges the stored searches give, whether an owner needs clustering and how (full or
incremental), and the run summary.

Clustering itself is photo_organizer.people (cluster_people, attach_new_faces): the same code the local backend
runs on descriptor edges.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from photo_organizer.people import ClusteringResult, Constraint, Person, SimilarityEdge
from photo_organizer.people.searches import ClusteringMark, FaceSearch
from photo_organizer.people.store import StoredFace, constraint_sort_key

Mode = Literal["full", "incremental", "unchanged", "consent_withdrawn"]

# SearchFaces has its own quota, separate from the image APIs': 5 TPS in most regions, more in a few large
# ones (Rekognition quotas page). The lower figure is the safe default; raise it with --search-tps.
DEFAULT_SEARCH_TPS = 5.0
# A Group 1 API like IndexFaces, at the same tier-1 price (see photo_organizer.analysis.costs: unverified).
SEARCH_FACES_PRICE_USD = 0.001


# With the owner's promoted face matcher (learning.faces.FaceMatcher), a pair is the same person when the matcher's
# calibrated probability reaches one half; clustering then weighs pairs by that probability, not by similarity.
MATCH_PROBABILITY = 0.5
# SearchFaces returns only matches at or above its FaceMatchThreshold: under a matcher whose similarity cut is lower
# than the configured threshold, faces are searched at that cut rounded down to a step, never below the floor. Every
# change of the search threshold re-searches every face (faces_to_search), so the step keeps that to rare events.
SEARCH_THRESHOLD_STEP = 5.0
SEARCH_THRESHOLD_FLOOR = 50.0


def search_threshold(configured: float, matcher_cut: float | None) -> float:
    """SearchFaces' FaceMatchThreshold (percent) for an owner: `configured`, or lower under a promoted matcher whose
    similarity cut (0..1) is below it, so that the pairs the matcher would accept are returned at all."""
    if matcher_cut is None:
        return configured
    stepped = SEARCH_THRESHOLD_STEP * math.floor(matcher_cut * 100 / SEARCH_THRESHOLD_STEP + 1e-9)
    return min(configured, max(SEARCH_THRESHOLD_FLOOR, stepped))


def matched_edges(
    edges: Iterable[SimilarityEdge],
    faces: Iterable[StoredFace],
    probability: Callable[..., float],
) -> list[SimilarityEdge]:
    """The edges a promoted matcher accepts, weighted by its probability that both faces are one person:
    `probability(similarity, quality_a, quality_b, area_a=, area_b=)` (learning.faces.FaceMatcher.probability;
    areas are the boxes' share of the preview, as the training pairs had them)."""
    quality = {f.face_id: f.quality for f in faces}
    area = {f.face_id: f.box.width * f.box.height for f in faces}
    matched = []
    for edge in edges:
        p = float(probability(edge.similarity, quality.get(edge.a), quality.get(edge.b),
                              area_a=area.get(edge.a), area_b=area.get(edge.b)))
        if math.isfinite(p) and p >= MATCH_PROBABILITY:
            matched.append(SimilarityEdge(edge.a, edge.b, min(1.0, p)))
    return matched


def matcher_digest(document: Mapping[str, Any]) -> str:
    """A promoted matcher's identity in the clustering inputs' digest: sha256 of its canonical JSON."""
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def faces_to_search(
    faces: Iterable[StoredFace],
    searches: Mapping[str, FaceSearch],
    *,
    full: bool,
    threshold: float,
    max_faces: int,
) -> list[StoredFace]:
    """Faces never searched (or searched under other parameters), oldest first; every face on a full run.
    Faces without a Rekognition FaceId (local ones) cannot be searched in a collection."""
    todo = []
    for face in faces:
        if face.rekognition_face_id is None:
            continue
        done = searches.get(face.face_id)
        if full or done is None or (done.threshold, done.max_faces) != (threshold, max_faces):
            todo.append(face)
    return sorted(todo, key=lambda f: (f.created_at, f.face_id))


def edges_from_searches(faces: Iterable[StoredFace], searches: Mapping[str, FaceSearch]) -> list[SimilarityEdge]:
    """Similarity edges between the owner's present faces. A pair is usually found from both ends (or only by the
    later-searched face, which saw the earlier one in the collection); clustering keeps the best of duplicates.
    Matches of faces no longer stored (a photo deleted, a face re-indexed) are dropped."""
    face_of = {f.rekognition_face_id: f.face_id for f in faces if f.rekognition_face_id}
    present = set(face_of.values())
    edges = []
    for face_id in sorted(present & searches.keys()):
        for matched, similarity in sorted(searches[face_id].matches.items()):
            other = face_of.get(matched)
            if other is not None and other != face_id:
                edges.append(SimilarityEdge.of(face_id, other, similarity))
    return edges


def prune_people(people: Iterable[Person], present: set[str]) -> list[Person]:
    """The stored people without faces that are gone; a person left with no face survives only if the user named
    or hid it (as clustering itself does)."""
    kept = []
    for person in people:
        faces = person.face_ids & present
        if faces == person.face_ids:
            kept.append(person)
            continue
        cover, chosen = person.cover_face_id, person.cover_chosen_by_user
        if cover not in faces:
            cover, chosen = (min(faces) if faces else None), False
        if faces or person.named or person.hidden:
            kept.append(person.model_copy(update={"face_ids": faces, "cover_face_id": cover,
                                                  "cover_chosen_by_user": chosen}))
    return kept


def input_digest(
    faces: Iterable[StoredFace], searches: Mapping[str, FaceSearch], constraints: Iterable[Constraint],
    settings: Mapping[str, Any],
) -> str:
    """Everything a clustering depends on besides the stored people (which only the user and this job change):
    face ids, their searches' matches, the corrections and the clustering settings."""
    document = {
        "faces": sorted(
            (f.face_id, sorted((m, round(s, 4)) for m, s in searches[f.face_id].matches.items())
             if f.face_id in searches else None)
            for f in faces
        ),
        "constraints": sorted(constraint_sort_key(c) for c in constraints),
        "settings": dict(sorted(settings.items())),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


def choose_mode(
    *,
    full: bool,
    previous: Sequence[Person],
    new_faces: int,
    total_faces: int,
    last: ClusteringMark | None,
    now: datetime,
    incremental_max_ratio: float,
    full_every: timedelta,
) -> Literal["full", "incremental"]:
    """Incremental attachment when only a few faces are new and people exist: it never moves a face that has a
    person, so the UI does not reshuffle nightly. It also never makes a new person, so a full clustering runs
    at least every `full_every` (new people appear within that delay) and whenever many faces are new."""
    if full or last is None or last.last_full_at is None or now - last.last_full_at >= full_every:
        return "full"
    if not any(p.face_ids for p in previous):
        return "full"
    return "incremental" if new_faces <= incremental_max_ratio * total_faces else "full"


@dataclass
class OwnerOutcome:
    mode: Mode
    faces: int = 0
    new_faces: int = 0
    searches: int = 0
    faces_missing: int = 0  # searched but no longer in the collection
    unassigned_faces: int = 0
    people: int = 0
    changes: Counter[str] = field(default_factory=Counter)  # Change.kind -> count
    learned_matcher: int = 0  # 1 when the owner's promoted face matcher decided the pairs

    @classmethod
    def of(cls, mode: Mode, result: ClusteringResult | None = None, **counts: int) -> OwnerOutcome:
        outcome = cls(mode, **counts)
        if result is not None:
            outcome.unassigned_faces = len(result.unassigned_face_ids)
            outcome.people = len(result.people)
            moved = ("faces_added", "faces_removed")
            outcome.changes = Counter(c.kind for c in result.changes if c.kind not in moved)
            outcome.changes["person_changed"] = len({c.person_id for c in result.changes if c.kind in moved})
        return outcome


@dataclass
class ClusterSummary:
    run_id: str
    owners: int = 0  # owners with consent this run looked at
    modes: Counter[str] = field(default_factory=Counter)
    faces: int = 0
    new_faces: int = 0
    searches: int = 0
    faces_missing: int = 0
    throttles: int = 0
    unassigned_faces: int = 0
    people: int = 0
    people_created: int = 0
    people_removed: int = 0
    people_changed: int = 0
    constraints_ignored: int = 0
    learned_matchers: int = 0  # owners clustered with their promoted face matcher instead of the fixed threshold
    failures: Counter[str] = field(default_factory=Counter)  # reason -> owners left for the next run

    def add(self, outcome: OwnerOutcome) -> None:
        self.owners += 1
        self.modes[outcome.mode] += 1
        self.faces += outcome.faces
        self.new_faces += outcome.new_faces
        self.searches += outcome.searches
        self.faces_missing += outcome.faces_missing
        self.unassigned_faces += outcome.unassigned_faces
        self.people += outcome.people
        self.people_created += outcome.changes["person_created"]
        self.people_removed += outcome.changes["person_removed"]
        self.people_changed += outcome.changes["person_changed"]
        self.constraints_ignored += outcome.changes["constraint_ignored"]
        self.learned_matchers += outcome.learned_matcher

    def record_failure(self, reason: str) -> None:
        self.owners += 1
        self.failures[reason] += 1

    def merge(self, other: ClusterSummary) -> ClusterSummary:
        merged = ClusterSummary(self.run_id)
        for name, value in vars(self).items():
            if name != "run_id":
                setattr(merged, name, value + getattr(other, name))
        return merged

    def to_document(self) -> dict[str, Any]:
        document = {name: (dict(value) if isinstance(value, Counter) else value) for name, value in vars(self).items()}
        document["estimated_cost_usd"] = round(self.searches * SEARCH_FACES_PRICE_USD, 6)
        return document

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> ClusterSummary:
        summary = cls(document["run_id"])
        for name, value in document.items():
            if name in ("run_id", "estimated_cost_usd"):
                continue
            setattr(summary, name, Counter(value) if isinstance(value, dict) else value)
        return summary

    def metric_data(self, *, timestamp: datetime) -> list[dict[str, Any]]:
        dimensions = [{"Name": "Job", "Value": "cluster_faces"}]
        values = {
            "OwnersClustered": self.modes["full"] + self.modes["incremental"],
            "FacesSearched": self.searches,
            "SearchThrottles": self.throttles,
            "PeopleCreated": self.people_created,
            "PeopleChanged": self.people_changed,
            "FailedOwners": sum(self.failures.values()),
        }
        return [{"MetricName": name, "Dimensions": dimensions, "Timestamp": timestamp, "Value": float(value),
                 "Unit": "Count"} for name, value in values.items()]
