"""The cloud's feature snapshot (bootstrap.cloud_training_export) from the single table in moto: the same rows as
locally, pairs from each face's last SearchFaces (FaceIds mapped to face ids), no descriptors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import numpy as np

from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbAnalysisStore
from photo_organizer.adapters.aws.dynamodb_clustering import DynamoDbClusteringState
from photo_organizer.adapters.aws.dynamodb_features import DynamoDbFeatureStore, DynamoDbSuggestionStore
from photo_organizer.adapters.aws.dynamodb_feedback import DynamoDbFeedbackStore
from photo_organizer.adapters.aws.dynamodb_metadata import DynamoDbMetadataStore, table_definition
from photo_organizer.adapters.aws.dynamodb_people import DynamoDbPeopleStore
from photo_organizer.analysis.models import AnalysisResult, AnalysisSource, BoundingBox, Label
from photo_organizer.analysis.store import PhotoAnalysis
from photo_organizer.bootstrap import cloud_training_export
from photo_organizer.feedback.models import FeedbackRecord, FeedbackType, TagOverlay, TagSuggestion, new_feedback_id
from photo_organizer.learning.datasets import read_faces, read_pairs, read_photos
from photo_organizer.models import ImageFormat, ImageMetadata, Photo, PhotoStatus, utcnow
from photo_organizer.people.models import Person
from photo_organizer.people.searches import FaceSearch
from photo_organizer.people.store import StoredFace

REGION = "us-east-1"
TABLE = "po-export-test"
OWNER = "ana"


def add_photo(photos, photo_id: str) -> None:
    now = utcnow()
    pending = Photo(owner=OWNER, photo_id=photo_id, status=PhotoStatus.PENDING_UPLOAD, filename=f"{photo_id}.jpg",
                    declared_content_type="image/jpeg", declared_size=10, created_at=now, updated_at=now)
    photos.create_photo(pending, pending_ttl=timedelta(days=1))
    metadata = ImageMetadata(format=ImageFormat.JPEG, width=64, height=48, byte_size=10,
                             sha256=photo_id.encode().hex().ljust(64, "0")[:64], phash="0" * 16)
    photos.finish_photo(pending.model_copy(update={"status": PhotoStatus.READY, "metadata": metadata,
                                                   "original_version": "v1"}),
                        expected_status=PhotoStatus.PENDING_UPLOAD)


def test_cloud_snapshot_rows_from_the_table(aws_env, tmp_path) -> None:
    boto3.client("dynamodb", region_name=REGION).create_table(**table_definition(TABLE))
    photos, analysis = DynamoDbMetadataStore(TABLE), DynamoDbAnalysisStore(TABLE)
    people, clustering = DynamoDbPeopleStore(TABLE, default_consent=True), DynamoDbClusteringState(TABLE)
    for photo_id in ("p1", "p2"):
        add_photo(photos, photo_id)
        result = AnalysisResult(photo_id=photo_id, analysis_version=1,
                                labels=(Label(name="Dog", confidence=91.5, parents=("Animal",)),
                                        Label(name="Beach", confidence=70)),
                                analysed_at=datetime(2026, 5, 1, tzinfo=timezone.utc), source=AnalysisSource.REKOGNITION)
        analysis.save(PhotoAnalysis(owner=OWNER, result=result, caption="a dog on a beach"))
    DynamoDbFeatureStore(TABLE).save_image_embedding(OWNER, "p1", np.ones(1280, dtype=np.float32) / np.sqrt(1280))
    DynamoDbSuggestionStore(TABLE).replace_suggestions(OWNER, "p2", [TagSuggestion(tag="beach", confidence=0.1,
                                                                                   on_photo=True)])
    DynamoDbFeedbackStore(TABLE).record(
        FeedbackRecord(feedback_id=new_feedback_id(), owner=OWNER, type=FeedbackType.TAG_REJECTED,
                       created_at=utcnow(), photo_id="p1", tag="dog"),
        overlay=TagOverlay(rejected=frozenset({"dog"})),
    )
    box = BoundingBox(left=0.1, top=0.1, width=0.5, height=0.4)
    people.save_faces([StoredFace(face_id=f, owner=OWNER, photo_id=p, box=box, quality=0.9, created_at=utcnow(),
                                  rekognition_face_id=f) for f, p in (("f1", "p1"), ("f2", "p2"))])
    people.replace_people(OWNER, [Person(person_id="bo", owner=OWNER, face_ids=frozenset({"f1", "f2"}))])
    clustering.record_search(OWNER, "f1", FaceSearch(utcnow(), 80.0, 50, {"f2": 0.97}))

    counts = cloud_training_export(TABLE).write(tmp_path, [OWNER])
    assert (counts.photos, counts.faces, counts.pairs, counts.embeddings) == (2, 2, 1, 1)
    rows = {r.photo_id: r for r in read_photos(tmp_path)}
    assert rows["p1"].tags == ["beach"], "the rejected dog is off, its parent with it"
    assert rows["p2"].tags == ["animal", "dog"], "beach is suppressed by the approved model"
    assert rows["p1"].labels == {"animal": 91.5, "beach": 70.0, "dog": 91.5}
    assert rows["p1"].people == ["bo"] and rows["p1"].embedding_vector().shape == (1280,)
    faces = {f.face_id: f for f in read_faces(tmp_path)}
    assert faces["f1"].person_id == "bo" and faces["f1"].descriptor is None
    assert faces["f1"].box_area == 0.2
    assert [(p.a, p.b, p.similarity) for p in read_pairs(tmp_path)] == [("f1", "f2", 0.97)]
