"""One body per FeatureStore / SuggestionStore behaviour, run against the DynamoDB adapters (moto: photo item
attributes `image_embedding` and `suggestions`) and the SQLite ones (tables in the library's file)."""

from __future__ import annotations

import time
from datetime import timedelta
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest

from photo_organizer.adapters.aws.dynamodb_features import DynamoDbFeatureStore, DynamoDbSuggestionStore
from photo_organizer.adapters.aws.dynamodb_metadata import DynamoDbMetadataStore, owner_pk, photo_sk, table_definition
from photo_organizer.adapters.local.sqlite_features import SqliteFeatureStore, SqliteSuggestionStore
from photo_organizer.adapters.local.sqlite_metadata import SqliteMetadataStore
from photo_organizer.errors import ValidationError
from photo_organizer.feedback.models import TagSuggestion
from photo_organizer.models import ImageFormat, ImageMetadata, Photo, PhotoStatus, utcnow

REGION = "us-east-1"
TABLE = "po-features-test"


def add_ready(photos: Any, owner: str, photo_id: str) -> None:
    now = utcnow()
    pending = Photo(owner=owner, photo_id=photo_id, status=PhotoStatus.PENDING_UPLOAD, filename=f"{photo_id}.jpg",
                    declared_content_type="image/jpeg", declared_size=1234, created_at=now, updated_at=now)
    photos.create_photo(pending, pending_ttl=timedelta(days=1))
    metadata = ImageMetadata(format=ImageFormat.JPEG, width=640, height=480, byte_size=1234,
                             sha256=f"{owner}-{photo_id}".encode().hex().ljust(64, "0")[:64], phash="0123456789abcdef")
    ready = pending.model_copy(update={"status": PhotoStatus.READY, "metadata": metadata, "original_version": "v1"})
    photos.finish_photo(ready, expected_status=PhotoStatus.PENDING_UPLOAD)


@dataclass
class Stores:
    kind: str
    features: Any
    suggestions: Any
    photos: Any
    raw_item: Any = None  # aws only


@pytest.fixture(params=["local", "aws"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    if request.param == "aws":
        request.getfixturevalue("aws_env")
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(**table_definition(TABLE))

        def raw_item(owner: str, photo_id: str) -> dict[str, Any] | None:
            return dynamodb.get_item(
                TableName=TABLE, Key={"PK": {"S": owner_pk(owner)}, "SK": {"S": photo_sk(photo_id)}}
            ).get("Item")

        yield Stores("aws", DynamoDbFeatureStore(TABLE), DynamoDbSuggestionStore(TABLE), DynamoDbMetadataStore(TABLE),
                     raw_item)
        return
    path = tmp_path / "library.sqlite3"
    photos = SqliteMetadataStore(path)
    yield Stores("local", SqliteFeatureStore(path), SqliteSuggestionStore(path), photos)
    photos.close()


def unit_vector(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=1280).astype(np.float32)
    return vector / np.linalg.norm(vector)


def test_embedding_round_trips_at_float16_precision_per_owner(stores: Stores) -> None:
    add_ready(stores.photos, "ana", "p1")
    add_ready(stores.photos, "ana", "p2")
    add_ready(stores.photos, "bo", "p1")
    stores.features.save_image_embedding("ana", "p1", unit_vector(1))
    stores.features.save_image_embedding("bo", "p1", unit_vector(2))
    back = stores.features.image_embedding("ana", "p1")
    assert back.dtype == np.float32 and back.shape == (1280,)
    assert np.allclose(back, unit_vector(1), atol=1e-3)
    assert stores.features.image_embedding("ana", "p2") is None
    assert set(stores.features.image_embeddings("ana")) == {"p1"}
    assert np.allclose(stores.features.image_embeddings("bo")["p1"], unit_vector(2), atol=1e-3)


def test_saving_again_replaces_the_embedding(stores: Stores) -> None:
    add_ready(stores.photos, "ana", "p1")
    stores.features.save_image_embedding("ana", "p1", unit_vector(1))
    stores.features.save_image_embedding("ana", "p1", unit_vector(3))
    assert np.allclose(stores.features.image_embedding("ana", "p1"), unit_vector(3), atol=1e-3)


def test_a_deleted_photo_gets_no_features_or_suggestions_back(stores: Stores) -> None:
    add_ready(stores.photos, "ana", "p1")
    stores.features.save_image_embedding("ana", "p1", unit_vector(1))
    stores.photos.delete_photo("ana", "p1")
    stores.features.save_image_embedding("ana", "p1", unit_vector(1))
    stores.suggestions.replace_suggestions("ana", "p1", [TagSuggestion(tag="cat", confidence=0.9)])
    assert stores.features.image_embedding("ana", "p1") is None
    assert stores.features.image_embeddings("ana") == {}
    assert stores.suggestions.all_suggestions("ana") == {}
    if stores.raw_item is not None:
        assert stores.raw_item("ana", "p1") is None  # never resurrected as a bare item


def test_wrong_sized_embedding_is_refused(stores: Stores) -> None:
    add_ready(stores.photos, "ana", "p1")
    with pytest.raises(ValidationError):
        stores.features.save_image_embedding("ana", "p1", np.ones(384, dtype=np.float32))


def test_suggestions_are_replaced_whole_most_confident_first_and_owner_scoped(stores: Stores) -> None:
    add_ready(stores.photos, "ana", "p1")
    add_ready(stores.photos, "ana", "p2")
    add_ready(stores.photos, "bo", "p1")
    first = [TagSuggestion(tag="beach", confidence=0.55), TagSuggestion(tag="dog", confidence=0.1, on_photo=True),
             TagSuggestion(tag="grandma's house", confidence=0.875)]
    stores.suggestions.replace_suggestions("ana", "p1", first)
    stores.suggestions.replace_suggestions("bo", "p1", [TagSuggestion(tag="boat", confidence=0.7)])
    assert stores.suggestions.suggestions("ana", "p1") == [first[2], first[0], first[1]]
    stores.suggestions.replace_suggestions("ana", "p1", [TagSuggestion(tag="school trip", confidence=0.6)])
    assert stores.suggestions.suggestions("ana", "p1") == [TagSuggestion(tag="school trip", confidence=0.6)]
    assert stores.suggestions.suggestions("ana", "p2") == []
    assert stores.suggestions.all_suggestions("ana") == {"p1": [TagSuggestion(tag="school trip", confidence=0.6)]}
    assert stores.suggestions.all_suggestions("bo") == {"p1": [TagSuggestion(tag="boat", confidence=0.7)]}


def test_empty_suggestions_remove_them(stores: Stores) -> None:
    add_ready(stores.photos, "ana", "p1")
    stores.suggestions.replace_suggestions("ana", "p1", [TagSuggestion(tag="cat", confidence=0.9)])
    stores.suggestions.replace_suggestions("ana", "p1", [])
    assert stores.suggestions.suggestions("ana", "p1") == []
    assert stores.suggestions.all_suggestions("ana") == {}
    if stores.raw_item is not None:
        assert "suggestions" not in stores.raw_item("ana", "p1")


def test_aws_writes_are_photo_item_attributes_and_move_updated_at(request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("aws_env")
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(**table_definition(TABLE))
    photos = DynamoDbMetadataStore(TABLE)
    add_ready(photos, "ana", "p1")

    def item() -> dict[str, Any]:
        return dynamodb.get_item(TableName=TABLE, Key={"PK": {"S": owner_pk("ana")}, "SK": {"S": photo_sk("p1")}})[
            "Item"
        ]

    before = item()["updated_at"]["S"]
    time.sleep(0.002)  # updated_at has microseconds: two writes in the same microsecond would tie
    DynamoDbFeatureStore(TABLE).save_image_embedding("ana", "p1", unit_vector(1))
    after_embedding = item()
    assert len(after_embedding["image_embedding"]["B"]) == 1280 * 2  # float16 little-endian
    assert after_embedding["updated_at"]["S"] > before
    time.sleep(0.002)
    DynamoDbSuggestionStore(TABLE).replace_suggestions("ana", "p1", [TagSuggestion(tag="cat", confidence=0.75,
                                                                                   on_photo=True)])
    after_suggestions = item()
    assert after_suggestions["suggestions"] == {
        "L": [{"M": {"tag": {"S": "cat"}, "confidence": {"N": "0.75"}, "on_photo": {"BOOL": True}}}]
    }
    assert after_suggestions["updated_at"]["S"] > after_embedding["updated_at"]["S"]
    assert after_suggestions["status"] == after_embedding["status"]  # the rest of the item is untouched


def test_forget_owner_erases_every_embedding_and_suggestion_of_the_owner_only(stores: Stores) -> None:
    for owner, photo_id in (("ana", "p1"), ("ana", "p2"), ("bo", "p1")):
        add_ready(stores.photos, owner, photo_id)
        stores.features.save_image_embedding(owner, photo_id, unit_vector(1))
        stores.suggestions.replace_suggestions(owner, photo_id, [TagSuggestion(tag="cat", confidence=0.9)])
    assert stores.features.forget_owner("ana") == 2
    assert stores.suggestions.forget_owner("ana") == 2
    assert stores.features.image_embeddings("ana") == {} and stores.suggestions.all_suggestions("ana") == {}
    assert set(stores.features.image_embeddings("bo")) == {"p1"}, "another owner's untouched"
    assert set(stores.suggestions.all_suggestions("bo")) == {"p1"}
    assert stores.features.forget_owner("ana") == 0 and stores.suggestions.forget_owner("ana") == 0, "idempotent"
