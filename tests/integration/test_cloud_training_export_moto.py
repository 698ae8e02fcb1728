"""The cloud's feature snapshot (bootstrap.cloud_training_export, what the retraining's export Lambda calls) from the
single table on moto: the real DynamoDB adapters, the library written by the real stores as the analysis job, the
clustering job and the API leave it. The three files are read back with learning.datasets' own readers, as the
training scripts read them.

What it proves: only owners who gave feedback are exported (the others' partitions are never read into it); each
analysed photo carries its image embedding (float16, as stored), labels, OCR tokens, place, people and its
effective tags after feedback (a rejected tag gone, an added custom tag present, an undone rejection ignored); a
photo not analysed yet and a deleted photo are absent; faces carry person, quality and box area, and no
descriptor (Rekognition has none); pairs are the stored SearchFaces similarities mapped back to face ids, once per
pair, never to a face that is gone."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbAnalysisStore
from photo_organizer.adapters.aws.dynamodb_clustering import DynamoDbClusteringState
from photo_organizer.adapters.aws.dynamodb_features import DynamoDbFeatureStore
from photo_organizer.adapters.aws.dynamodb_feedback import DynamoDbFeedbackStore
from photo_organizer.adapters.aws.dynamodb_metadata import DynamoDbMetadataStore, table_definition
from photo_organizer.adapters.aws.dynamodb_people import DynamoDbPeopleStore
from photo_organizer.analysis.models import AnalysisResult, AnalysisSource, BoundingBox, Label, TextLine
from photo_organizer.analysis.store import PhotoAnalysis, StoredPlace
from photo_organizer.bootstrap import cloud_training_export
from photo_organizer.feedback.models import FeedbackRecord, FeedbackType, TagOverlay, new_feedback_id
from photo_organizer.learning.datasets import read_faces, read_pairs, read_photos
from photo_organizer.models import ImageFormat, ImageMetadata, Photo, PhotoStatus, utcnow
from photo_organizer.people.models import Person
from photo_organizer.people.searches import FaceSearch
from photo_organizer.people.store import StoredFace
from photo_organizer.services.snapshot_export import SNAPSHOT_FILES

TABLE = "po-training-export-test"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
PHASH = "c3a5c3a5c3a5c3a5"


class Library:
    def __init__(self) -> None:
        import boto3

        boto3.client("dynamodb").create_table(**table_definition(TABLE))
        self.photos = DynamoDbMetadataStore(TABLE)
        self.analysis = DynamoDbAnalysisStore(TABLE)
        self.features = DynamoDbFeatureStore(TABLE)
        self.people = DynamoDbPeopleStore(TABLE)
        self.state = DynamoDbClusteringState(TABLE)
        self.feedback = DynamoDbFeedbackStore(TABLE)

    def photo(self, owner: str, photo_id: str, *, labels=(), text=(), embedding: np.ndarray | None = None,
              analysed: bool = True) -> None:
        now = utcnow()
        pending = Photo(owner=owner, photo_id=photo_id, status=PhotoStatus.PENDING_UPLOAD, filename=f"{photo_id}.jpg",
                        declared_content_type="image/jpeg", declared_size=1234, created_at=now, updated_at=now)
        self.photos.create_photo(pending, pending_ttl=timedelta(hours=1))
        metadata = ImageMetadata(format=ImageFormat.JPEG, width=640, height=480, byte_size=1234,
                                 sha256=hashlib.sha256(photo_id.encode()).hexdigest(), phash=PHASH)
        self.photos.finish_photo(pending.model_copy(update={"status": PhotoStatus.READY, "metadata": metadata}),
                                 expected_status=PhotoStatus.PENDING_UPLOAD)
        if not analysed:
            return
        result = AnalysisResult(photo_id=photo_id, analysis_version=1, labels=tuple(labels),
                                text_lines=tuple(TextLine(text=t, confidence=95.0) for t in text),
                                analysed_at=T0, source=AnalysisSource.REKOGNITION)
        self.analysis.save(PhotoAnalysis(
            owner=owner, result=result, caption="", local_taken_at=T0,
            place=StoredPlace(city="Lagos", region="Faro", country_code="PT", country="Portugal", lat=37.1, lon=-8.7)))
        if embedding is not None:
            self.features.save_image_embedding(owner, photo_id, embedding)

    def face(self, owner: str, face_id: str, photo_id: str, quality: float) -> None:
        self.people.save_faces([StoredFace(
            face_id=face_id, owner=owner, photo_id=photo_id, quality=quality, created_at=T0,
            box=BoundingBox(left=0.1, top=0.1, width=0.2, height=0.25), rekognition_face_id=face_id)])

    def event(self, owner: str, photo_id: str, kind: FeedbackType, tag: str, overlay: TagOverlay,
              *, minutes: int) -> FeedbackRecord:
        record = FeedbackRecord(feedback_id=new_feedback_id(), owner=owner, type=kind, photo_id=photo_id, tag=tag,
                                created_at=T0 + timedelta(minutes=minutes))
        self.feedback.record(record, overlay=overlay)
        return record


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(1280).astype(np.float32)
    return vector / np.linalg.norm(vector)


@pytest.fixture
def library(aws_env) -> Library:
    lib = Library()
    beach = (Label(name="Beach", confidence=91.5, parents=("Outdoors",)), Label(name="Dog", confidence=70.0,
                                                                              parents=("Animal",)))
    lib.photo("ana", "p1", labels=beach, text=("Praia da Luz", "2026"), embedding=unit(1))
    lib.photo("ana", "p2", labels=(Label(name="Person", confidence=99.0),), embedding=unit(2))
    lib.photo("ana", "p3", analysed=False)  # READY, not analysed yet
    lib.photo("ana", "p4", labels=beach, embedding=unit(4))
    lib.photos.delete_photo("ana", "p4")  # deleted after analysis: its feedback must find no features
    lib.photo("ben", "q1", labels=beach, embedding=unit(9))  # ben gave no feedback: not exported
    # faces of ana (consenting): f1, f2 in p2, f3 in p1; f1 and f2 are one person
    lib.people.set_biometric_consent("ana", True)
    for face_id, photo_id, quality in (("f1", "p2", 0.9), ("f2", "p2", 0.8), ("f3", "p1", 0.4)):
        lib.face("ana", face_id, photo_id, quality)
    lib.people.replace_people("ana", [Person(person_id="person-1", owner="ana", face_ids=frozenset({"f1", "f2"}),
                                             cover_face_id="f1")])
    lib.state.record_search("ana", "f1", FaceSearch(T0, 80.0, 100, {"f2": 0.97, "f3": 0.81, "gone": 0.9}))
    lib.state.record_search("ana", "f2", FaceSearch(T0, 80.0, 100, {"f1": 0.96}))
    lib.state.record_search("ana", "f3", FaceSearch(T0, 80.0, 100, {}))
    # ana's feedback on p1: rejects "dog", adds "grandma's house", rejects "beach" then undoes it
    lib.event("ana", "p1", FeedbackType.TAG_REJECTED, "dog", TagOverlay(rejected=frozenset({"dog"})), minutes=1)
    kept = TagOverlay(rejected=frozenset({"dog"}), added=frozenset({"grandma's house"}))
    lib.event("ana", "p1", FeedbackType.TAG_ADDED, "grandma's house", kept, minutes=2)
    rejected = lib.event("ana", "p1", FeedbackType.TAG_REJECTED, "beach",
                         kept.model_copy(update={"rejected": frozenset({"dog", "beach"})}), minutes=3)
    undo = FeedbackRecord(feedback_id=new_feedback_id(), owner="ana", type=FeedbackType.UNDO, photo_id="p1",
                          undoes=rejected.feedback_id, created_at=T0 + timedelta(minutes=4))
    lib.feedback.record_undo(undo, undone_at=undo.created_at, overlay=kept)
    return lib


def export_to(tmp_path: Path) -> tuple[dict[str, int], object]:
    written: dict[str, int] = {}
    features = tmp_path / "features"
    features.mkdir()

    def write(name: str, lines) -> int:
        assert name not in written, "each file is written once"
        count = 0
        with (features / name).open("w", encoding="utf-8") as f:
            for line in lines:
                assert "\n" not in line
                f.write(line + "\n")
                count += 1
        written[name] = count
        return count

    counts = cloud_training_export(TABLE).write_snapshot(write)
    return written, counts


def test_the_cloud_snapshot_holds_what_the_training_scripts_read_for_owners_with_feedback(library, tmp_path):
    written, counts = export_to(tmp_path)
    assert set(written) == set(SNAPSHOT_FILES) == {"photos.jsonl", "faces.jsonl", "pairs.jsonl"}

    photos = {row.photo_id: row for row in read_photos(tmp_path)}
    assert {row.owner for row in photos.values()} == {"ana"}  # ben gave no feedback
    assert set(photos) == {"p1", "p2"}  # p3 is not analysed yet, p4 was deleted
    p1 = photos["p1"]
    embedding = p1.embedding_vector()
    assert embedding.shape == (1280,)
    np.testing.assert_allclose(embedding, unit(1), atol=2e-3)  # float16, as stored
    assert p1.labels["beach"] == 91.5 and p1.labels["outdoors"] == 91.5 and "dog" in p1.labels
    assert {"praia", "da", "luz", "2026"} <= set(p1.ocr_tokens)
    assert p1.place == {"city": "Lagos", "country_code": "PT"} and p1.taken_at is not None
    # effective tags after feedback: the rejected tag gone, the custom tag there
    assert "dog" not in p1.tags and "grandma's house" in p1.tags and "beach" in p1.tags
    assert photos["p2"].people == ["person-1"]
    assert counts.photos == len(photos) == written["photos.jsonl"] and counts.embeddings == len(photos)

    faces = {row.face_id: row for row in read_faces(tmp_path)}
    assert set(faces) == {"f1", "f2", "f3"}
    assert (faces["f1"].person_id, faces["f1"].photo_id, faces["f1"].quality) == ("person-1", "p2", 0.9)
    assert faces["f3"].person_id is None and faces["f3"].box_area == pytest.approx(0.05)
    assert all(row.descriptor is None for row in faces.values())

    pairs = {(row.a, row.b): row.similarity for row in read_pairs(tmp_path)}
    assert pairs == {("f1", "f2"): 0.97, ("f1", "f3"): 0.81}  # best of both directions; "gone" dropped
    assert counts.faces == 3 and counts.pairs == 2


def test_a_table_without_feedback_exports_three_empty_files(aws_env, tmp_path):
    library = Library()
    library.photo("ben", "q1", labels=(Label(name="Beach", confidence=90.0),), embedding=unit(3))
    written, counts = export_to(tmp_path)
    assert written == {"photos.jsonl": 0, "faces.jsonl": 0, "pairs.jsonl": 0}
    assert (counts.photos, counts.faces, counts.pairs) == (0, 0, 0)


def test_the_snapshot_rows_for_the_export_step_are_the_written_files_rows(library, tmp_path):
    """feature_snapshot(): the rows themselves (the export step's FeatureSnapshot shape), equal to the files'."""
    export_to(tmp_path)
    rows = cloud_training_export(TABLE).feature_snapshot()
    assert list(rows.pairs) == list(read_pairs(tmp_path))  # any order of reading
    assert list(rows.photos) == list(read_photos(tmp_path))
    assert list(rows.faces) == list(read_faces(tmp_path))
    assert (rows.counts.photos, rows.counts.faces, rows.counts.pairs, rows.counts.embeddings) == (2, 3, 2, 2)
