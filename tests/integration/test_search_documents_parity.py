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
                            weak_labels=(Label(name="Coffee", confidence=14, parents=("Beverage",)),),
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
    assert cloud_document.weak_tags == ("beverage", "coffee")  # the weak labels reach both backends' documents


def test_both_backends_embed_the_same_description_file_name_included(tmp_path):
    """The cloud embeds at analysis time (AnalysisService over description_document), the local index at
    indexing time (SearchService.document): the same text, the file name's words leading ("cup.jpg")."""
    from photo_organizer.search.describe import describe
    from photo_organizer.services.analysis import description_document

    pending, ready, analysis = photo_and_analysis()
    local = build_services(Settings(data_dir=tmp_path))
    local.metadata.create_photo(pending, pending_ttl=timedelta(days=1))
    local.metadata.finish_photo(ready, expected_status=PhotoStatus.PENDING_UPLOAD)
    assert local.analysis.save(analysis)
    local_document = local.search.document(local.metadata.get_photo(OWNER, "p-1"))
    cloud_text = describe(description_document(ready, analysis))
    assert cloud_text == describe(local_document) and cloud_text.startswith("cup. A cup in Madison")


def test_both_backends_apply_the_same_feedback_and_suggestions_to_the_document(tmp_path, aws_env):
    """Rejected tag (and the caption that named it), a custom tag, a suppressed analysis tag: the local document
    (SearchService.document over the SQLite overlay) and the cloud one (the photo item's `feedback` map and
    `suggestions` list, as the stream indexer reads them) say the same."""
    from photo_organizer.adapters.aws.dynamodb_feedback import DynamoDbFeedbackStore
    from photo_organizer.adapters.aws.dynamodb_people import DynamoDbPeopleStore
    from photo_organizer.feedback.models import FeedbackType, TagFeedback, TagSuggestion
    from photo_organizer.services.feedback import FeedbackService
    from photo_organizer.services.people import PeopleService

    pending, ready, analysis = photo_and_analysis()
    result = analysis.result.model_copy(update={"labels": (
        Label(name="Cup", confidence=95, parents=("Tableware",)), Label(name="Table", confidence=88),
        Label(name="Coffee", confidence=91, parents=("Beverage",)),
    )})
    analysis = analysis.model_copy(update={"result": result})
    events = [TagFeedback(type=FeedbackType.TAG_REJECTED, photo_id="p-1", tag="cup"),
              TagFeedback(type=FeedbackType.TAG_ADDED, photo_id="p-1", tag="Grandma's House")]
    suggestions = [TagSuggestion(tag="table", confidence=0.05, on_photo=True),
                   TagSuggestion(tag="garden", confidence=0.9)]

    class Suggestions:
        def suggestions(self, owner, photo_id):
            return suggestions

    local = build_services(Settings(data_dir=tmp_path))
    local.metadata.create_photo(pending, pending_ttl=timedelta(days=1))
    local.metadata.finish_photo(ready, expected_status=PhotoStatus.PENDING_UPLOAD)
    assert local.analysis.save(analysis)
    local.search.suggestions = Suggestions()
    for request in events:
        local.feedback.submit(OWNER, request)
    local_document = local.search.document(local.metadata.get_photo(OWNER, "p-1"))

    client = boto3.client("dynamodb")
    client.create_table(**table_definition("po-parity"))
    cloud_photos = DynamoDbMetadataStore("po-parity")
    cloud_photos.create_photo(pending, pending_ttl=timedelta(days=1))
    cloud_photos.finish_photo(ready, expected_status=PhotoStatus.PENDING_UPLOAD)
    assert DynamoDbAnalysisStore("po-parity").save(analysis)
    people = DynamoDbPeopleStore("po-parity")
    cloud_feedback = FeedbackService(store=DynamoDbFeedbackStore("po-parity"), metadata=cloud_photos,
                                     people=PeopleService(people, people, DynamoDbAnalysisStore("po-parity")))
    for request in events:
        cloud_feedback.submit(OWNER, request)
    # The `suggestions` attribute as the retrain part's DynamoDB SuggestionStore writes it (design contract).
    client.update_item(
        TableName="po-parity", Key={"PK": {"S": f"OWNER#{OWNER}"}, "SK": {"S": "PHOTO#p-1"}},
        UpdateExpression="SET suggestions = :s",
        ExpressionAttributeValues={":s": {"L": [
            {"M": {"tag": {"S": s.tag}, "confidence": {"N": str(s.confidence)}, "on_photo": {"BOOL": s.on_photo}}}
            for s in suggestions
        ]}},
    )
    item = client.get_item(
        TableName="po-parity", Key={"PK": {"S": f"OWNER#{OWNER}"}, "SK": {"S": "PHOTO#p-1"}}, ConsistentRead=True
    )["Item"]
    cloud_document = document_from_image(item)

    assert local_document is not None and cloud_document is not None
    per_backend = {"version", "taken_at", "embedding"}
    assert local_document.model_dump(exclude=per_backend) == cloud_document.model_dump(exclude=per_backend)
    assert cloud_document.tags == ("beverage", "coffee", "grandma's house")
    # Recomposed without the rejected tag: captions now name a remaining tag when there is one (issue 12).
    assert cloud_document.caption == "Coffee in Madison, United States · May 2024"
    assert "cup" not in cloud_document.caption.lower(), "the caption named the rejected cup"
