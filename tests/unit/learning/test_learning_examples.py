"""From feedback lines and a feature snapshot to examples: active feedback only, the last word wins, every labelled
example written once with its photo's fold (the folds themselves: test_learning_cross_fitting.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from photo_organizer.learning.datasets import FaceFeatures, PhotoFeatures, encode_vector, write_lines
from photo_organizer.learning.cross_fitting import fold_of
from photo_organizer.learning.examples import (
    LABELLED_DIR,
    active_events,
    build_examples,
    events_through,
    face_labels,
    feedback_through,
    read_face_examples,
    read_pair_examples,
    read_tagging_examples,
    tag_labels,
)

N = 0


def event(kind: str, **fields) -> dict:
    global N
    N += 1
    return {"schema": 1, "feedback_id": f"{N:032x}", "owner": fields.pop("owner", "o"), "type": kind,
            "created_at": f"2026-11-01T10:00:{N % 60:02d}Z", **fields}


def test_undone_events_and_undos_teach_nothing():
    added = event("tag_added", photo_id="p", tag="school trip")
    undo = event("undo", undoes=added["feedback_id"])
    rejected = event("tag_rejected", photo_id="p", tag="dog")
    stored_undone = {**event("tag_added", photo_id="p", tag="x"), "undone_at": "2026-11-02T00:00:00Z"}
    assert active_events([added, undo, rejected, stored_undone]) == [rejected]
    assert tag_labels([added, undo, rejected, stored_undone]) == {("o", "p"): {"dog": 0}}


def test_the_feedback_a_model_saw_is_every_event_up_to_its_instant_later_undos_not_yet_applied():
    added = {**event("tag_added", photo_id="p", tag="school trip"), "created_at": "2026-11-01T10:00:00Z"}
    rejected = {**event("tag_rejected", photo_id="p", tag="dog"), "created_at": "2026-11-01T10:00:00.5Z"}
    undo = {**event("undo", undoes=added["feedback_id"]), "created_at": "2026-11-01T11:00:00+01:00"}  # 10:00 UTC
    stored_undone = {**event("tag_added", photo_id="p", tag="x"), "created_at": "2026-11-01T09:00:00Z",
                     "undone_at": "2026-11-02T00:00:00Z"}
    later = {**event("tag_confirmed", photo_id="p", tag="dog"), "created_at": "2026-11-03T00:00:00Z"}
    events = [added, rejected, undo, stored_undone, later]
    assert feedback_through(events) == "2026-11-03T00:00:00+00:00"
    through = feedback_through([added, rejected, stored_undone])
    assert through == "2026-11-01T10:00:00.500000+00:00", "the instant, not the text (.5 s sorts after 'Z')"
    seen = events_through(events, through)
    assert [e["feedback_id"] for e in seen] == [e["feedback_id"] for e in (added, rejected, undo, stored_undone)]
    # "x" was undone after that instant: the model trained then still learnt it; the undo at 10:00 was already in
    assert tag_labels(seen) == {("o", "p"): {"dog": 0, "x": 1}}
    assert tag_labels(events) == {("o", "p"): {"dog": 1}}
    assert feedback_through([]) is None


def test_the_last_word_on_a_tag_wins():
    events = [event("tag_rejected", photo_id="p", tag="dog"), event("tag_confirmed", photo_id="p", tag="dog")]
    assert tag_labels(events) == {("o", "p"): {"dog": 1}}


def test_face_feedback_confirms_and_rejects_people():
    events = [
        event("face_assigned", face_id="f1", person_id="ana"),
        event("face_not_person", face_id="f2", person_id="ana"),
        event("face_assigned", face_id="f3", person_id="ana"),
        event("face_not_person", face_id="f3", person_id="ana"),  # changed their mind
    ]
    confirmed, rejected = face_labels(events)
    assert confirmed == {("o", "f1"): "ana"}
    assert rejected == {("o", "f2"): {"ana"}, ("o", "f3"): {"ana"}}


def dataset(root: Path, photos: int = 40) -> Path:
    rng = np.random.default_rng(0)
    rows, faces, lines = [], [], []
    for i in range(photos):
        pid = f"p{i}"
        rows.append(PhotoFeatures(owner="o", photo_id=pid, analysed_at="2026-11-01T00:00:00Z",
                                  labels={"dog": 80.0} if i % 2 else {"cat": 70.0}))
        lines.append(event("tag_rejected" if i % 4 == 1 else "tag_confirmed", photo_id=pid,
                           tag="dog" if i % 2 else "cat"))
        person = "ana" if i % 3 else "bob"
        centre = np.full(128, 0.1 if person == "ana" else -0.1, dtype=np.float32)
        faces.append(FaceFeatures(owner="o", face_id=f"f{i}", photo_id=pid, quality=0.7, box_area=0.05,
                                  descriptor=encode_vector(centre + 0.01 * rng.standard_normal(128), "float32")))
        lines.append(event("face_assigned", face_id=f"f{i}", person_id=person))
    lines.append(event("tag_added", photo_id="gone", tag="school trip"))  # a deleted photo: not in the snapshot
    write_lines(root / "features" / "photos.jsonl", rows)
    write_lines(root / "features" / "faces.jsonl", faces)
    part = root / "feedback" / "date=2026-11-01" / "a.jsonl"
    part.parent.mkdir(parents=True)
    part.write_text("".join(json.dumps(e) + "\n" for e in lines + lines[:3]))  # a retried batch: repeated lines
    return root


def test_build_examples_writes_every_labelled_example_once_with_its_photos_fold(tmp_path):
    summary = build_examples(dataset(tmp_path / "d"), tmp_path / "out")
    labelled = tmp_path / "out" / LABELLED_DIR
    examples = read_tagging_examples(labelled)
    assert sorted(e.photo.photo_id for e in examples) == sorted(f"p{i}" for i in range(40))  # "gone" dropped
    assert all(e.fold == fold_of("o", e.photo.photo_id) for e in examples)
    assert summary["events"] == 81  # repeated lines counted once
    assert sum(int(f["tagging_examples"]) for f in summary["per_fold"].values()) == 40
    faces = {f.face_id: f for f in read_face_examples(labelled)}
    assert all(f.fold == fold_of("o", f.photo_id) for f in faces.values())  # a face goes with its photo
    pairs = read_pair_examples(labelled)
    for pair in pairs:
        assert pair.a in faces and pair.b in faces
        assert (pair.fold_a, pair.fold_b) == (faces[pair.a].fold, faces[pair.b].fold)
        assert pair.same == (faces[pair.a].person == faces[pair.b].person)
        assert pair.similarity > 0.8 if pair.same else pair.similarity < 0.8
    across = [p for p in pairs if p.fold is None]
    assert across and summary["face_pairs_across_folds"] == len(across)  # trained on, never judged
    assert summary["face_pairs"] == len(pairs) and len(pairs) - len(across) > 0


def test_tag_targets_mix_explicit_labels_with_weak_analysis_labels(tmp_path):
    build_examples(dataset(tmp_path / "d"), tmp_path / "out")
    examples = read_tagging_examples(tmp_path / "out" / LABELLED_DIR)
    by_id = {e.photo.photo_id: e for e in examples}
    from photo_organizer.learning.examples import WEAK_NEGATIVE_WEIGHT

    # cat: analysis did not put it on p1 and the owner said nothing about it there: a weak "no"
    assert by_id["p1"].targets == {"cat": 0, "dog": 0}
    assert by_id["p1"].weights == {"cat": WEAK_NEGATIVE_WEIGHT, "dog": 1.0} and WEAK_NEGATIVE_WEIGHT < 0.5
    assert by_id["p3"].targets == {"cat": 0, "dog": 1} and by_id["p2"].targets == {"cat": 1, "dog": 0}


def test_an_owner_with_many_labelled_faces_gets_a_bounded_pair_set():
    from photo_organizer.learning.examples import MAX_PAIRS_PER_OWNER, face_examples

    rng = np.random.default_rng(1)
    faces, events = [], []
    for i in range(700):
        faces.append(FaceFeatures(owner="o", face_id=f"f{i:04d}", photo_id=f"p{i}",
                                  descriptor=encode_vector(rng.standard_normal(128) * 0.05, "float32")))
        events.append(event("face_assigned", face_id=f"f{i:04d}", person_id=f"person-{i % 7}"))
    events.append(event("face_not_person", face_id="f0699", person_id="person-0"))
    examples, pairs = face_examples(faces, [], events, {("o", f"p{i}") for i in range(700)})
    assert len(examples) == 700 and len(pairs) == MAX_PAIRS_PER_OWNER
    assert any("f0699" in (p.a, p.b) for p in pairs)  # the rejected face is never sampled away


def test_the_feedback_dataset_lines_the_product_writes_are_the_labels_training_reads(tmp_path):
    from datetime import datetime, timedelta, timezone

    from photo_organizer.feedback.dataset import lines_by_partition
    from photo_organizer.feedback.models import FeedbackRecord, FeedbackType, new_feedback_id
    from photo_organizer.learning.datasets import read_feedback

    start = datetime(2026, 12, 3, 23, 59, 59, 500000, tzinfo=timezone.utc)

    def record(kind, at, **fields):
        return FeedbackRecord(feedback_id=new_feedback_id(), owner="o", type=kind,
                              created_at=start + timedelta(seconds=at), **fields)

    added = record(FeedbackType.TAG_ADDED, 0, photo_id="p", tag="grandma's house")
    rejected = record(FeedbackType.TAG_REJECTED, 1, photo_id="p", tag="dog")
    undo = record(FeedbackType.UNDO, 2, undoes=rejected.feedback_id)
    assigned = record(FeedbackType.FACE_ASSIGNED, 3, face_id="f", person_id="ana", previous_person_id="bob")
    for prefix, text in lines_by_partition([added, rejected, undo, assigned]).items():  # two dates
        (tmp_path / prefix).mkdir(parents=True)
        (tmp_path / prefix / "part.jsonl").write_text(text)
    events = read_feedback(tmp_path)
    assert len(events) == 4
    assert tag_labels(events) == {("o", "p"): {"grandma's house": 1}}
    assert face_labels(events) == ({("o", "f"): "ana"}, {})


def test_events_are_ordered_by_instant_not_by_text():
    later = {**event("tag_confirmed", photo_id="p", tag="dog"), "created_at": "2026-11-01T10:00:01Z"}
    earlier = {**event("tag_rejected", photo_id="p", tag="dog"), "created_at": "2026-11-01T10:00:00.500000Z"}
    assert tag_labels([later, earlier]) == {("o", "p"): {"dog": 1}}
    same_second = {**event("tag_rejected", photo_id="q", tag="dog"), "created_at": "2026-11-01T10:00:00Z"}
    after = {**event("tag_confirmed", photo_id="q", tag="dog"), "created_at": "2026-11-01T10:00:00.250000Z"}
    assert tag_labels([after, same_second]) == {("o", "q"): {"dog": 1}}
