"""The reindex/reconcile source: every READY photo of the table, converted as the stream indexer converts it."""

from datetime import timedelta

import boto3

from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbAnalysisStore
from photo_organizer.adapters.aws.dynamodb_metadata import DynamoDbMetadataStore, table_definition
from photo_organizer.adapters.aws.table_documents import documents_in_table
from photo_organizer.analysis.models import AnalysisResult, AnalysisSource, Label
from photo_organizer.analysis.store import PhotoAnalysis
from photo_organizer.models import ImageFormat, ImageMetadata, Photo, PhotoStatus, utcnow

TABLE = "po-reindex"


def add(store: DynamoDbMetadataStore, owner: str, photo_id: str, status: PhotoStatus) -> None:
    now = utcnow()
    pending = Photo(owner=owner, photo_id=photo_id, status=PhotoStatus.PENDING_UPLOAD, filename=f"{photo_id}.jpg",
                    declared_content_type="image/jpeg", declared_size=10, created_at=now, updated_at=now)
    store.create_photo(pending, pending_ttl=timedelta(days=1))
    if status is PhotoStatus.PENDING_UPLOAD:
        return
    meta = ImageMetadata(format=ImageFormat.JPEG, width=10, height=10, byte_size=10, sha256=f"{abs(hash(photo_id)):064x}"[:64],
                         phash="0" * 16)
    store.finish_photo(pending.model_copy(update={"status": status, "metadata": meta}),
                       expected_status=PhotoStatus.PENDING_UPLOAD)


def test_reindex_source_holds_every_ready_photo_with_its_analysis_and_nothing_else(aws_env):
    boto3.client("dynamodb").create_table(**table_definition(TABLE))
    photos, analyses = DynamoDbMetadataStore(TABLE), DynamoDbAnalysisStore(TABLE)
    add(photos, "ana", "p1", PhotoStatus.READY)
    add(photos, "ana", "p2", PhotoStatus.PENDING_UPLOAD)
    add(photos, "ben", "p3", PhotoStatus.READY)
    add(photos, "ben", "p4", PhotoStatus.REJECTED)
    result = AnalysisResult(photo_id="p1", analysis_version=1, labels=(Label(name="Dog", confidence=90, parents=("Animal",)),),
                            analysed_at=utcnow(), source=AnalysisSource.REKOGNITION)
    assert analyses.save(PhotoAnalysis(owner="ana", result=result, caption="A dog"))
    documents = {(d.owner, d.photo_id): d for d in documents_in_table(TABLE, page_size=1)}
    assert set(documents) == {("ana", "p1"), ("ben", "p3")}
    assert {"dog", "animal"} <= set(documents[("ana", "p1")].tags) and documents[("ana", "p1")].caption == "A dog"
