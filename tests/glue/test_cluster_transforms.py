"""cluster_faces' pure decisions: which faces are searched, which edges count, full versus incremental."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cluster_faces.transforms import (
    ClusteringMark,
    FaceSearch,
    choose_mode,
    edges_from_searches,
    faces_to_search,
    prune_people,
)

from photo_organizer.analysis.models import BoundingBox
from photo_organizer.people import Person, SimilarityEdge
from photo_organizer.people.store import StoredFace

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


def face(face_id: str, minute: int = 0, *, cloud: bool = True) -> StoredFace:
    return StoredFace(face_id=face_id, owner="o", photo_id=f"p-{face_id}", box=BoundingBox(left=0, top=0, width=1,
                      height=1), quality=0.5, created_at=NOW + timedelta(minutes=minute),
                      rekognition_face_id=face_id if cloud else None, descriptor=None if cloud else bytes(512))


def search(**matches: float) -> FaceSearch:
    return FaceSearch(NOW, 80.0, 100, matches)


def test_only_unsearched_or_stale_cloud_faces_are_searched_oldest_first_and_all_on_a_full_run():
    faces = [face("c", 3), face("a", 1), face("b", 2), face("local", 0, cloud=False)]
    searches = {"a": search(), "b": FaceSearch(NOW, 90.0, 100, {})}  # b ran under another threshold
    assert [f.face_id for f in faces_to_search(faces, searches, full=False, threshold=80.0, max_faces=100)] == ["b", "c"]
    assert [f.face_id for f in faces_to_search(faces, searches, full=True, threshold=80.0, max_faces=100)] == [
        "a", "b", "c"]


def test_edges_come_from_either_end_and_skip_faces_that_are_gone():
    faces = [face("a"), face("b"), face("c")]
    searches = {"a": search(b=0.99, gone=0.95), "c": search(a=0.9)}
    assert edges_from_searches(faces, searches) == [SimilarityEdge.of("a", "b", 0.99), SimilarityEdge.of("a", "c", 0.9)]


def test_gone_faces_leave_people_and_only_named_or_hidden_people_outlive_all_their_faces():
    people = [Person(person_id="p1", owner="o", face_ids=frozenset({"a", "b"}), cover_face_id="a"),
              Person(person_id="p2", owner="o", name="Ana", face_ids=frozenset({"c"}), cover_face_id="c"),
              Person(person_id="p3", owner="o", face_ids=frozenset({"d"}))]
    kept = prune_people(people, {"b"})
    assert [(p.person_id, p.face_ids, p.cover_face_id) for p in kept] == [
        ("p1", frozenset({"b"}), "b"), ("p2", frozenset(), None)]


def test_incremental_only_for_few_new_faces_with_people_and_a_recent_full_run():
    people = [Person(person_id="p", owner="o", face_ids=frozenset({"a"}))]
    recent = ClusteringMark("d", NOW, last_full_at=NOW - timedelta(days=1))
    args = dict(full=False, previous=people, total_faces=10, now=NOW, incremental_max_ratio=0.2,
                full_every=timedelta(days=7))
    assert choose_mode(new_faces=2, last=recent, **args) == "incremental"
    assert choose_mode(new_faces=3, last=recent, **args) == "full"
    assert choose_mode(new_faces=1, last=None, **args) == "full"
    assert choose_mode(new_faces=1, last=ClusteringMark("d", NOW, NOW - timedelta(days=7)), **args) == "full"
    assert choose_mode(new_faces=1, last=recent, **{**args, "previous": []}) == "full"
    assert choose_mode(new_faces=0, last=recent, **{**args, "full": True}) == "full"
