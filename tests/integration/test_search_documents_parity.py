"""One search-document builder for both backends: the same photo and analysis, stored by each backend's own
stores, make the same document — locally through SearchService.document, in the cloud through the photo item the
stream indexer reads (moto). Only what is per backend by design differs: the version (local write time, cloud
updated_at) and the capture time's zone (the local index takes the local wall-clock time, the cloud the camera's
instant in UTC; both are the same instant here)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3

from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbAnalysisStore
from photo_organizer.adapters.aws.dynamodb_metadata import DynamoDbMetadataStore, table_definition
from photo_organizer.adapters.aws.stream_documents import document_from_image
from photo_organizer.analysis.models import AnalysisResult, AnalysisSource, Label, TextLine
from photo_organizer.analysis.store import PhotoAnalysis, StoredPlace
from photo_organizer.bootstrap import build_services
from photo_organizer.models import GeoPoint, ImageFormat, ImageMetadata, Photo, PhotoStatus, utcnow
from photo_organizer.settings import Settings

OWNER = "owner-parity"
TAKEN = datetime(2024, 5, 17, 10, 11, 12, tzinfo=timezone(timedelta(hours=-5)))


def photo_and_analysis() -> tuple[Photo, Photo, PhotoAnalysis]:
    now = utcnow()
    pending = Photo(owner=OWNER, photo_id="p-1", status=PhotoStatus.PENDING_UPLOAD, filename="cup.jpg",
                    declared_content_type="image/jpeg", declared_size=10, created_at=now, updated_at=now)
    metadata = ImageMetadata(format=ImageFormat.JPEG, width=10, height=10, byte_size=10, sha256="c" * 64,
                             phash="0" * 16, taken_at=TAKEN, taken_at_offset="-05:00",
                             gps=GeoPoint(lat=43.0731, lon=-89.4012), camera_make="Canon",
                             camera_model="Canon EOS 5D")
    ready = pending.model_copy(update={"status": PhotoStatus.READY, "metadata": metadata})
    result = AnalysisResult(photo_id="p-1", analysis_version=1, analysed_at=now, source=AnalysisSource.REKOGNITION,
                            labels=(Label(name="Cup", confidence=95, parents=("Tableware",)),),
                            text_lines=(TextLine(text="LATTE $4.50", confidence=97),))
    analysis = PhotoAnalysis(owner=OWNER, result=result, caption="A cup in Madison, United States · May 2024",
                             place=StoredPlace(city="Madison", region="Wisconsin", country_code="US",
                                               country="United States", lat=43.0731, lon=-89.4012),
                             local_taken_at=TAKEN, time_zone="America/Chicago")
    return pending, ready, analysis


def test_the_local_and_the_cloud_backend_build_the_same_document_for_the_same_photo(tmp_path, aws_env):
    pending, ready, analysis = photo_and_analysis()

    local = build_services(Settings(data_dir=tmp_path))
    local.metadata.create_photo(pending, pending_ttl=timedelta(days=1))
    local.metadata.finish_photo(ready, expected_status=PhotoStatus.PENDING_UPLOAD)
    assert local.analysis.save(analysis)
    assert local.search is not None
    local_document = local.search.document(local.metadata.get_photo(OWNER, "p-1"))

    boto3.client("dynamodb").create_table(**table_definition("po-parity"))
    cloud_photos = DynamoDbMetadataStore("po-parity")
    cloud_photos.create_photo(pending, pending_ttl=timedelta(days=1))
    cloud_photos.finish_photo(ready, expected_status=PhotoStatus.PENDING_UPLOAD)
    assert DynamoDbAnalysisStore("po-parity").save(analysis)
    item = boto3.client("dynamodb").get_item(
        TableName="po-parity", Key={"PK": {"S": f"OWNER#{OWNER}"}, "SK": {"S": "PHOTO#p-1"}}, ConsistentRead=True
    )["Item"]
    cloud_document = document_from_image(item)

    assert local_document is not None and cloud_document is not None
    per_backend = {"version", "taken_at", "embedding"}
    assert local_document.model_dump(exclude=per_backend) == cloud_document.model_dump(exclude=per_backend)
    assert local_document.taken_at == cloud_document.taken_at  # the same instant (zones differ by design)
    assert cloud_document.camera == "Canon EOS 5D" and cloud_document.tags == ("cup", "tableware")
