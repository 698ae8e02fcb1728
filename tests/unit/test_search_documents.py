"""The photo item -> SearchDocument conversion, on items written by the real DynamoDB item builder."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from boto3.dynamodb.types import Binary, TypeSerializer

from photo_organizer.adapters.aws.dynamodb_metadata import _photo_item
from photo_organizer.services.indexing import camera_name
from photo_organizer.models import GeoPoint, ImageFormat, ImageMetadata, Photo, PhotoStatus
from photo_organizer.adapters.aws.stream_documents import (
    deserialize_image,
    document_from_image,
    document_from_item,
    microseconds,
    removal_version,
    version_of,
)

UPDATED = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
_serializer = TypeSerializer()


def photo(status: PhotoStatus = PhotoStatus.READY, **metadata) -> Photo:
    fields = {
        "format": ImageFormat.JPEG,
        "width": 4000,
        "height": 3000,
        "byte_size": 2_000_000,
        "sha256": "a" * 64,
        "phash": "0f" * 8,
        "taken_at": datetime(2023, 7, 1, 10, 0, tzinfo=timezone(timedelta(hours=1))),
        "gps": GeoPoint(lat=38.72, lon=-9.14),
        "camera_make": "Canon",
        "camera_model": "Canon EOS 5D",
        **metadata,
    }
    return Photo(
        owner="owner-a",
        photo_id="p-1",
        status=status,
        filename="IMG_0001.JPG",
        declared_content_type="image/jpeg",
        declared_size=2_000_000,
        created_at=datetime(2023, 7, 2, 8, 30, tzinfo=timezone.utc),
        updated_at=UPDATED,
        metadata=ImageMetadata(**fields) if status is not PhotoStatus.PENDING_UPLOAD else None,
        duplicate_of="p-0" if status is PhotoStatus.DUPLICATE else None,
    )


def image(p: Photo, **analysis) -> dict:
    """The stream's NewImage of the photo: the real item, plus the analysis attributes as the analysis store
    adds them."""
    item = _photo_item(p, expires_at=None)
    item.update({name: _serializer.serialize(value) for name, value in analysis.items()})
    return item


ANALYSIS = {
    "analysis_version": 2,
    "label_names": ["Dog", "animal", "beach"],
    "sensitive": False,
    "caption": "A dog on a beach",
    "place": {"city": "Lisbon", "region": "Lisbon", "country": "Portugal", "country_code": "PT", "lat": Decimal("38.7223"), "lon": Decimal("-9.1393")},
    "ocr_text": "PRAIA",
    "people": [{"person_id": "person-ana", "name": "Ana"}, {"person_id": "person-ben"}],
    "embedding": Binary(struct.pack("<384f", *([0.05] * 384))),
}


def test_ready_photo_with_analysis_becomes_a_full_document():
    document = document_from_image(image(photo(), **ANALYSIS))
    assert document is not None
    assert (document.owner, document.photo_id, document.filename) == ("owner-a", "p-1", "IMG_0001.JPG")
    assert document.tags == ("animal", "beach", "dog")
    assert document.taken_at == datetime(2023, 7, 1, 9, 0, tzinfo=timezone.utc)
    assert document.uploaded_at == datetime(2023, 7, 2, 8, 30, tzinfo=timezone.utc)
    assert document.camera == "Canon EOS 5D"
    assert document.place is not None and document.place.city == "Lisbon" and document.place.lat == pytest.approx(38.7223)
    assert [(p.person_id, p.name) for p in document.people] == [("person-ana", "Ana"), ("person-ben", None)]
    assert document.ocr_text == "PRAIA" and document.caption == "A dog on a beach"
    assert document.embedding is not None and len(document.embedding) == 384
    assert document.version == microseconds(UPDATED)


def test_version_is_updated_at_in_microseconds_and_a_removal_carries_the_last_one():
    item = deserialize_image(image(photo()))
    assert version_of(item) == 1714564800123456
    assert removal_version(item) == 1714564800123456


def test_a_photo_without_analysis_is_still_searchable_by_its_own_fields():
    document = document_from_image(image(photo()))
    assert document is not None
    assert document.tags == () and document.caption == "" and document.embedding is None
    # GPS from the file stands in for a place until the place is geocoded.
    assert document.place is not None and (document.place.lat, document.place.lon) == (38.72, -9.14)
    assert document.place.city is None


def test_tags_come_from_the_analysis_labels_and_parents_when_label_names_are_absent():
    analysis = {"labels": [{"name": "Labrador", "confidence": Decimal("97.5"), "parents": ["Dog", "Animal"]}],
                "text_lines": [{"text": "TOTAL 12.50", "confidence": Decimal(99)}]}
    document = document_from_image(image(photo(), analysis=analysis))
    assert document is not None
    assert document.tags == ("animal", "dog", "labrador")
    assert document.ocr_text == "TOTAL 12.50"


def test_weak_labels_become_weak_tags_without_what_is_a_tag_or_what_the_user_rejected():
    from photo_organizer.feedback.models import TagOverlay
    from photo_organizer.services.indexing import search_document

    analysis = {"labels": [{"name": "Coffee", "confidence": Decimal(70), "parents": ["Beverage"]}],
                "weak_labels": [{"name": "Cup", "confidence": Decimal(14), "parents": ["Tableware"]},
                                {"name": "Flower", "confidence": Decimal(8), "parents": ["Plant"]},
                                {"confidence": Decimal(6)}]}  # malformed: no name
    document = document_from_image(image(photo(), analysis=analysis))
    assert document is not None
    assert document.tags == ("beverage", "coffee") and document.weak_tags == ("cup", "flower", "plant", "tableware")
    # the user's word wins: a rejected tag or one the tagging model suppresses is no weak evidence either, and a
    # tag the user added is a tag, not a weak one
    common = {"owner": "o", "photo_id": "p", "status": "READY", "version": 1, "uploaded_at": UPDATED,
              "tags": ("coffee",), "weak_tags": ("cup", "flower", "tableware")}
    after = search_document(**common, feedback=TagOverlay(rejected=frozenset({"flower"}), added=frozenset({"cup"})),
                            suppressed=("tableware",))
    assert after is not None and "cup" in after.tags and after.weak_tags == ()


@pytest.mark.parametrize("status", [PhotoStatus.PENDING_UPLOAD, PhotoStatus.REJECTED, PhotoStatus.DUPLICATE])
def test_photos_that_are_not_ready_have_no_document(status):
    assert document_from_image(image(photo(status))) is None


def test_other_entities_have_no_document():
    claim = {"PK": {"S": "OWNER#owner-a"}, "SK": {"S": "SHA256#" + "a" * 64}, "entity": {"S": "content_claim"},
             "photo_id": {"S": "p-1"}}
    assert document_from_image(claim) is None


def test_a_camera_clock_without_offset_counts_as_utc():
    document = document_from_image(image(photo(taken_at=datetime(2023, 7, 1, 10, 0))))
    assert document is not None and document.taken_at == datetime(2023, 7, 1, 10, 0, tzinfo=timezone.utc)


def test_a_malformed_embedding_is_dropped_and_the_text_still_indexed():
    document = document_from_image(image(photo(), **{**ANALYSIS, "embedding": Binary(b"\x00" * 12)}))
    assert document is not None and document.embedding is None and document.tags


def test_the_stream_image_and_the_deserialized_item_give_the_same_document():
    raw = image(photo(), **ANALYSIS)
    assert document_from_image(raw) == document_from_item(deserialize_image(raw))


@pytest.mark.parametrize(
    ("make", "model", "expected"),
    [("Canon", "Canon EOS 5D", "Canon EOS 5D"), ("Apple", "iPhone 13", "Apple iPhone 13"), (None, "X100V", "X100V"),
     ("FUJIFILM", None, "FUJIFILM"), (None, None, None), ("  ", "", None)],
)
def test_camera_name(make, model, expected):
    assert camera_name(make, model) == expected
