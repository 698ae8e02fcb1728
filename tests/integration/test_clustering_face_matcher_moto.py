"""The cloud clustering with the owner's promoted face matcher (services.clustering, SETTINGS#face_matcher):
the real DynamoDB adapters on moto, and a SearchFaces stand-in that answers like Rekognition (matches at or above
FaceMatchThreshold only) from a fixed similarity table, since moto has no face collections.

The library: two look-alike people (Rekognition similarity 0.86 between them, above its usual 80 % bar) and a
third one that resembles the first at 0.74 (below it). With the fixed threshold the look-alikes are one person;
with a promoted matcher that learned (from the user's corrections) that 0.86 is not enough, they are two, and the
user's name and "not this person" still hold. Without a matcher, nothing changes."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest

from photo_organizer.adapters.aws.dynamodb_clustering import DynamoDbClusteringState
from photo_organizer.adapters.aws.dynamodb_face_matchers import FACE_MATCHER_SK, DynamoDbFaceMatcherStore
from photo_organizer.adapters.aws.dynamodb_metadata import table_definition
from photo_organizer.adapters.aws.dynamodb_people import DynamoDbPeopleStore
from photo_organizer.analysis.models import BoundingBox
from photo_organizer.analysis.throttling import BackoffStats, TokenBucket
from photo_organizer.people.models import CannotLink, SimilarityEdge
from photo_organizer.people.runs import search_threshold
from photo_organizer.people.store import StoredFace
from photo_organizer.services.clustering import ClusteringService

TABLE = "po-cluster-matcher-test"
OWNER = "ana"
T0 = datetime(2026, 2, 1, 8, 0, tzinfo=timezone.utc)
# face -> identity; a and b are look-alikes, c resembles a a little.
IDENTITY = {**{f"a{i}": "a" for i in range(3)}, **{f"b{i}": "b" for i in range(3)}, **{f"c{i}": "c" for i in range(3)}}
SIMILARITY = {frozenset("aa"): 0.97, frozenset("bb"): 0.96, frozenset("cc"): 0.95,
              frozenset("ab"): 0.86, frozenset("ac"): 0.74, frozenset("bc"): 0.40}


@dataclass
class Config:
    """The cluster_faces job's JobConfig, as far as the service reads it."""

    full: bool = True
    threshold: float = 80.0
    max_faces: int = 100
    min_cluster_size: int = 2
    incremental_max_ratio: float = 0.2
    full_every_days: float = 7.0

    def settings(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "max_faces": self.max_faces, "min_cluster_size": self.min_cluster_size}

    def now(self) -> datetime:
        return T0


@dataclass
class SearchFacesStandin:
    """SearchFaces on the owner's collection: every other face at or above the threshold (percent)."""

    similarity: dict[frozenset[str], float] = field(default_factory=lambda: dict(SIMILARITY))
    stats: BackoffStats = field(default_factory=BackoffStats)
    calls: list[tuple[str, float]] = field(default_factory=list)

    def search_faces(self, owner: str, face_id: str, *, threshold: float, max_faces: int) -> list[SimilarityEdge]:
        self.calls.append((face_id, threshold))
        edges = []
        for other in IDENTITY:
            similarity = self.similarity[frozenset(IDENTITY[face_id] + IDENTITY[other])]
            if other != face_id and similarity * 100 >= threshold:
                edges.append(SimilarityEdge.of(face_id, other, similarity))
        return edges[:max_faces]


@dataclass(frozen=True)
class StandinMatcher:
    """learning.faces.FaceMatcher's surface: a logistic in similarity centred on `threshold`, sharper with quality."""

    threshold: float
    slope: float = 40.0

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> StandinMatcher:
        return cls(threshold=float(document["threshold"]), slope=float(document.get("slope", 40.0)))

    def probability(self, similarity: float, quality_a: float, quality_b: float, *, area_a: float | None = None,
                    area_b: float | None = None) -> float:
        assert area_a == area_b == pytest.approx(0.075)  # the boxes' share of the preview, as in training
        return 1.0 / (1.0 + math.exp(-self.slope * (similarity - self.threshold) * (0.5 + min(quality_a, quality_b))))


@pytest.fixture
def table(aws_env):
    boto3.client("dynamodb").create_table(**table_definition(TABLE))
    people = DynamoDbPeopleStore(TABLE)
    people.set_biometric_consent(OWNER, True)
    people.save_faces([
        StoredFace(face_id=face_id, owner=OWNER, photo_id=f"photo-{face_id}",
                   box=BoundingBox(left=0.3, top=0.2, width=0.25, height=0.3), quality=0.9,
                   created_at=T0 - timedelta(days=1, minutes=n), rekognition_face_id=face_id)
        for n, face_id in enumerate(sorted(IDENTITY))
    ])
    return people


def service(people, searcher, *, matchers: bool = True, **config) -> ClusteringService:
    return ClusteringService(
        config=Config(**config), people=people, state=DynamoDbClusteringState(TABLE), rekognition=searcher,
        bucket=TokenBucket(1000.0, burst=10.0),
        matchers=DynamoDbFaceMatcherStore(TABLE) if matchers else None, load_matcher=StandinMatcher.from_json,
    )


def groups(people) -> dict[frozenset[str], tuple[str, str | None]]:
    """{identities of a person's faces: (person id, name)}."""
    return {frozenset(IDENTITY[f] for f in p.face_ids): (p.person_id, p.name)
            for p in people.people(OWNER) if p.face_ids}


def test_without_a_promoted_matcher_clustering_keeps_the_fixed_threshold_and_merges_the_look_alikes(table):
    searcher = SearchFacesStandin()
    outcome = service(table, searcher).cluster_owner(OWNER)
    assert set(groups(table)) == {frozenset("ab"), frozenset("c")}
    assert outcome.learned_matcher == 0
    assert {threshold for _, threshold in searcher.calls} == {80.0} and len(searcher.calls) == len(IDENTITY)
    # The same run without any matcher store wired: the same people, and the same digest (nothing re-clusters).
    state = DynamoDbClusteringState(TABLE)
    digest = state.last_clustering(OWNER).digest
    again = service(table, SearchFacesStandin(), matchers=False, full=False).cluster_owner(OWNER)
    assert again.mode == "unchanged" and state.last_clustering(OWNER).digest == digest


def test_a_promoted_matcher_that_learned_the_look_alikes_apart_splits_them_and_corrections_still_hold(table):
    searcher = SearchFacesStandin()
    service(table, searcher).cluster_owner(OWNER)
    before = groups(table)
    merged_id, _ = before[frozenset("ab")]
    grandpa_id, _ = before[frozenset("c")]
    # The user named c's person and said a0 is never that person.
    table.save_person(table.person(OWNER, grandpa_id).model_copy(update={"name": "Grandpa"}))
    table.add_constraint(OWNER, CannotLink(face_id="a0", person_id=grandpa_id, created_at=T0))

    DynamoDbFaceMatcherStore(TABLE).promote(OWNER, {"kind": "faces", "threshold": 0.90, "slope": 40.0})
    searcher.calls.clear()
    outcome = service(table, searcher, full=False).cluster_owner(OWNER)

    assert outcome.mode == "full"  # another judge of every pair: clustered from scratch, ids kept by overlap
    assert outcome.learned_matcher == 1
    assert searcher.calls == []  # its cut (0.90) is above the 80 % bar: the stored searches serve as they are
    after = groups(table)
    assert set(after) == {frozenset("a"), frozenset("b"), frozenset("c")}
    assert after[frozenset("c")] == (grandpa_id, "Grandpa")  # the name holds, under the same id
    assert merged_id in {after[frozenset("a")][0], after[frozenset("b")][0]}  # one side keeps the merged id
    assert "a0" not in table.person(OWNER, grandpa_id).face_ids
    # The next run changes nothing and says so.
    assert service(table, searcher, full=False).cluster_owner(OWNER).mode == "unchanged"


def test_a_promoted_matcher_with_a_lower_cut_searches_down_to_it_and_joins_what_rekognition_hid(table):
    # Here a and b are not alike at all; c is a at 0.74 (another age, say), which the 80 % bar never returns.
    searcher = SearchFacesStandin(similarity={**SIMILARITY, frozenset("ab"): 0.30})
    service(table, searcher).cluster_owner(OWNER)
    assert set(groups(table)) == {frozenset("a"), frozenset("b"), frozenset("c")}
    # A matcher that learned 0.74 is the same person for these faces.
    DynamoDbFaceMatcherStore(TABLE).promote(OWNER, {"kind": "faces", "threshold": 0.72, "slope": 40.0})
    searcher.calls.clear()
    outcome = service(table, searcher, full=False).cluster_owner(OWNER)
    # Every face searched again, once, at the matcher's cut rounded down to the step (70 %)...
    assert sorted(searcher.calls) == sorted((face, 70.0) for face in IDENTITY)
    assert outcome.searches == len(IDENTITY) and outcome.learned_matcher == 1
    # ...which returns the 0.74 pairs the 80 % bar hid, and the matcher accepts them.
    assert set(groups(table)) == {frozenset("ac"), frozenset("b")}
    # Nothing new since: the next run searches nothing and writes nothing.
    searcher.calls.clear()
    assert service(table, searcher, full=False).cluster_owner(OWNER).mode == "unchanged"
    assert searcher.calls == []


def test_an_unreadable_matcher_document_leaves_the_fixed_threshold_instead_of_failing_the_owner(table):
    boto3.client("dynamodb").put_item(TableName=TABLE, Item={
        "PK": {"S": f"OWNER#{OWNER}"}, "SK": {"S": FACE_MATCHER_SK}, "entity": {"S": "settings"},
        "matcher": {"S": json.dumps({"kind": "faces"})}})  # no threshold: StandinMatcher.from_json raises KeyError
    outcome = service(table, SearchFacesStandin()).cluster_owner(OWNER)
    assert outcome.learned_matcher == 0 and set(groups(table)) == {frozenset("ab"), frozenset("c")}


def test_the_matcher_item_round_trips_exactly_and_is_the_owners_own(table):
    from photo_organizer.bootstrap import cloud_face_matchers

    store = cloud_face_matchers(TABLE)  # what the retraining's re-application writes with
    document = {"kind": "faces", "schema": 1, "threshold": 0.8123456789, "weights": [0.1, -2.5e-7, 3.0]}
    assert store.promoted(OWNER) is None
    store.promote(OWNER, document)
    assert store.promoted(OWNER) == document
    assert store.promoted("someone-else") is None
    item = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"PK": {"S": f"OWNER#{OWNER}"},
                                                                   "SK": {"S": FACE_MATCHER_SK}})["Item"]
    assert item["entity"] == {"S": "settings"} and json.loads(item["matcher"]["S"]) == document


@pytest.mark.parametrize(("configured", "cut", "expected"), [
    (80.0, None, 80.0),  # no matcher: as configured
    (80.0, 0.93, 80.0),  # a stricter matcher: the searches already return everything it could accept
    (80.0, 0.72, 70.0),  # a looser one: down to its cut, in 5-point steps (fewer re-searches)
    (80.0, 0.75, 75.0),
    (80.0, 0.20, 50.0),  # never below the floor
])
def test_search_threshold(configured, cut, expected):
    assert search_threshold(configured, cut) == expected
