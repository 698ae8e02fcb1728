"""The search attributes that reach the cloud index only through the photo item (moto): `people`, rewritten by the
aws backend's PeopleService hook on every correction and consent withdrawal, and `embedding`, written by the
analysis save. Each is checked as the stream indexer sees it (adapters.aws.stream_documents on the raw item)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import numpy as np
import pytest

from photo_organizer import bootstrap
from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbAnalysisStore
from photo_organizer.adapters.aws.dynamodb_metadata import _photo_item as photo_item
from photo_organizer.adapters.aws.dynamodb_metadata import owner_pk, photo_sk, table_definition
from photo_organizer.adapters.aws.dynamodb_photo_search import DynamoDbPhotoPeople, people_by_photo
from photo_organizer.analysis.models import AnalysisPlan, AnalysisResult, AnalysisSource, BoundingBox, Label, TextLine
from photo_organizer.analysis.planning import AnalysisSettings, PhotoRecord
from photo_organizer.services.analysis import AnalysisService
from photo_organizer.analysis.store import PhotoAnalysis, StoredPlace
from photo_organizer.keys import PhotoKeys
from photo_organizer.models import GeoPoint, ImageFormat, ImageMetadata, Photo, PhotoStatus, utcnow
from photo_organizer.people.models import Person
from photo_organizer.people.store import StoredFace
from photo_organizer.adapters.aws.stream_documents import document_from_image, version_of
from photo_organizer.search.models import EMBEDDING_DIMENSIONS, IndexedPerson
from photo_organizer.settings import Backend, Settings

REGION = "us-east-1"
TABLE = "po-cloud-search-test"
DERIVATIVES = "po-cloud-search-derivatives"
OWNER, OTHER = "owner-a", "owner-b"
ANA, BEN = "a" * 32, "b" * 32
# photo -> faces in it: p-ana has Ana, p-both Ana and Ben, p-ben Ben, p-nobody no face.
FACES = {"p-ana": ["f-ana-1"], "p-both": ["f-ana-2", "f-ben-1"], "p-ben": ["f-ben-2"], "p-nobody": []}


def ready_photo(owner: str, photo_id: str) -> Photo:
    now = utcnow()
    return Photo(
        owner=owner,
        photo_id=photo_id,
        status=PhotoStatus.READY,
        filename=f"{photo_id}.jpg",
        declared_content_type="image/jpeg",
        declared_size=1000,
        created_at=now - timedelta(minutes=5),
        updated_at=now - timedelta(minutes=5),
        metadata=ImageMetadata(
            format=ImageFormat.JPEG, width=10, height=10, byte_size=1000, sha256=hashlib.sha256(photo_id.encode()).hexdigest(), phash="1" * 16,
            gps=GeoPoint(lat=37.1, lon=-8.7),
        ),
    )


def face(owner: str, face_id: str, photo_id: str) -> StoredFace:
    return StoredFace(
        face_id=face_id,
        owner=owner,
        photo_id=photo_id,
        box=BoundingBox(left=0.1, top=0.1, width=0.2, height=0.2),
        quality=0.9,
        created_at=datetime(2024, 5, 1, tzinfo=timezone.utc),
        rekognition_face_id=face_id,
    )


@pytest.fixture
def cloud(aws_env):
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(**table_definition(TABLE))
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=DERIVATIVES)
    services = bootstrap.build_services(
        Settings(backend=Backend.AWS, table_name=TABLE, derivatives_bucket=DERIVATIVES, region=REGION,
                 face_collection_prefix="po-faces")
    )
    forgotten_collections: list[str] = []
    services.people.forget_collection = forgotten_collections.append  # Rekognition is not what is tested here
    for owner in (OWNER, OTHER):
        services.user_settings.set_biometric_consent(owner, True)
        for photo_id, face_ids in FACES.items():
            # PutItem as ingest's finish_photo writes a READY photo (moto's table has no TTL to honour).
            dynamodb.put_item(TableName=TABLE, Item=_photo_item(ready_photo(owner, photo_id)))
            services.people_store.save_faces([face(owner, f, photo_id) for f in face_ids])
        services.people_store.replace_people(owner, [
            Person(person_id=ANA, owner=owner, face_ids=frozenset({"f-ana-1", "f-ana-2"})),
            Person(person_id=BEN, owner=owner, face_ids=frozenset({"f-ben-1", "f-ben-2"})),
        ])
    return services


def _photo_item(photo: Photo) -> dict[str, Any]:
    return photo_item(photo, expires_at=None)


def raw_item(owner: str, photo_id: str) -> dict[str, Any] | None:
    """The item exactly as a stream NEW_IMAGE carries it (low-level attribute values)."""
    return boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=TABLE, Key={"PK": {"S": owner_pk(owner)}, "SK": {"S": photo_sk(photo_id)}}, ConsistentRead=True
    ).get("Item")


def items(owner: str) -> dict[str, dict[str, Any]]:
    return {photo_id: raw_item(owner, photo_id) for photo_id in FACES}


def indexed_people(owner: str, photo_id: str) -> tuple[IndexedPerson, ...]:
    document = document_from_image(raw_item(owner, photo_id))
    assert document is not None
    return document.people


def changed(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> set[str]:
    return {photo_id for photo_id in before if before[photo_id] != after[photo_id]}


def test_naming_a_person_rewrites_people_on_exactly_their_photos_and_moves_the_version(cloud):
    before, others_before = items(OWNER), items(OTHER)

    cloud.people.update(OWNER, ANA, name="Ana")

    after = items(OWNER)
    assert changed(before, after) == {"p-ana", "p-both"}
    assert all(_version(after[p]) > _version(before[p]) for p in ("p-ana", "p-both"))
    assert indexed_people(OWNER, "p-ana") == (IndexedPerson(person_id=ANA, name="Ana"),)
    # Ben is nobody's name yet, but his id is filterable: he is written without a name.
    assert indexed_people(OWNER, "p-both") == (IndexedPerson(person_id=ANA, name="Ana"), IndexedPerson(person_id=BEN))
    assert after["p-both"]["people"] == {"L": [
        {"M": {"person_id": {"S": ANA}, "name": {"S": "Ana"}}},
        {"M": {"person_id": {"S": BEN}}},
    ]}
    assert items(OTHER) == others_before  # the same person id of another owner is another person


def _version(item: dict[str, Any]) -> int:
    return version_of({"updated_at": item["updated_at"]["S"]})


def test_the_written_time_has_the_photo_records_own_form(cloud):
    cloud.people.update(OWNER, ANA, name="Ana")
    written = raw_item(OWNER, "p-ana")["updated_at"]["S"]
    moment = datetime.fromisoformat(written)
    record_form = _photo_item(ready_photo(OWNER, "p-ana").model_copy(update={"updated_at": moment}))["updated_at"]["S"]
    assert written == record_form and abs(moment - utcnow()) < timedelta(minutes=1)


def test_hiding_a_person_removes_them_from_their_photos(cloud):
    cloud.people.update(OWNER, ANA, name="Ana")
    before = items(OWNER)

    cloud.people.update(OWNER, ANA, hidden=True)

    after = items(OWNER)
    assert changed(before, after) == {"p-ana", "p-both"}
    assert "people" not in after["p-ana"] and indexed_people(OWNER, "p-ana") == ()
    assert indexed_people(OWNER, "p-both") == (IndexedPerson(person_id=BEN),)
    assert all(_version(after[p]) > _version(before[p]) for p in ("p-ana", "p-both"))

    cloud.people.update(OWNER, ANA, hidden=False)
    assert indexed_people(OWNER, "p-ana") == (IndexedPerson(person_id=ANA, name="Ana"),)


def test_withdrawing_consent_clears_people_on_every_photo_with_a_face(cloud):
    cloud.people.update(OWNER, ANA, name="Ana")
    cloud.people.update(OWNER, BEN, name="Ben")
    before = items(OWNER)
    assert all("people" in before[p] for p in ("p-ana", "p-both", "p-ben"))

    cloud.people.set_consent(OWNER, False)

    after = items(OWNER)
    assert changed(before, after) == {"p-ana", "p-both", "p-ben"}
    assert not any("people" in item for item in after.values())
    assert all(indexed_people(OWNER, p) == () for p in FACES)
    assert all(_version(after[p]) > _version(before[p]) for p in ("p-ana", "p-both", "p-ben"))
    assert "people" not in raw_item(OTHER, "p-both")  # another owner's photos are not touched


def test_a_deleted_photo_is_not_resurrected_by_a_people_write(cloud):
    boto3.client("dynamodb", region_name=REGION).delete_item(
        TableName=TABLE, Key={"PK": {"S": owner_pk(OWNER)}, "SK": {"S": photo_sk("p-ana")}}
    )

    cloud.people.update(OWNER, ANA, name="Ana")  # Ana's face of the deleted photo is still in the people store

    assert raw_item(OWNER, "p-ana") is None
    assert indexed_people(OWNER, "p-both")[0] == IndexedPerson(person_id=ANA, name="Ana")
    writer = DynamoDbPhotoPeople(TABLE)
    assert writer.write_people(OWNER, {"p-ana", "p-both"}, {"p-both": [(ANA, "Ana")]}) == 1
    assert raw_item(OWNER, "p-ana") is None


def test_people_by_photo_reads_per_photo_or_the_whole_owner_alike(cloud):
    store = cloud.people_store
    cloud.people.update(OWNER, ANA, name="Ana")
    few = people_by_photo(store, OWNER, set(FACES))
    many = people_by_photo(store, OWNER, set(FACES) | {f"p-missing-{i}" for i in range(30)})
    expected = {"p-ana": [(ANA, "Ana")], "p-both": [(ANA, "Ana"), (BEN, None)], "p-ben": [(BEN, None)], "p-nobody": []}
    assert few == expected
    assert {p: v for p, v in many.items() if p in FACES} == expected
    assert all(v == [] for p, v in many.items() if p not in FACES)


def test_the_stream_image_of_a_named_photo_is_a_document_with_its_people(cloud):
    cloud.people.update(OWNER, ANA, name="Ana")
    item = raw_item(OWNER, "p-both")

    document = document_from_image(item)

    assert document is not None and (document.owner, document.photo_id) == (OWNER, "p-both")
    assert [p.name for p in document.people] == ["Ana", None]
    assert document.version == _version(item)


# ---- embeddings ----------------------------------------------------------------------------------------------


def unit_vector(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(EMBEDDING_DIMENSIONS).astype(np.float32)
    return vector / np.linalg.norm(vector)


def analysis(photo_id: str, version: int, embedding: bytes | None) -> PhotoAnalysis:
    result = AnalysisResult(
        photo_id=photo_id,
        analysis_version=version,
        labels=(Label(name="Dog", confidence=97, parents=("Animal",)), Label(name="Beach", confidence=90)),
        text_lines=(TextLine(text="SURF SHOP", confidence=95),),
        analysed_at=datetime(2024, 7, 2, tzinfo=timezone.utc),
        source=AnalysisSource.REKOGNITION,
    )
    return PhotoAnalysis(owner=OWNER, result=result, caption="A dog on a beach", embedding=embedding)


def test_an_analysis_saved_with_an_embedding_round_trips_into_the_documents_embedding(cloud):
    store, vector = DynamoDbAnalysisStore(TABLE), unit_vector(1)
    before = raw_item(OWNER, "p-nobody")

    assert store.save(analysis("p-nobody", 1, vector.astype("<f4").tobytes()))

    item = raw_item(OWNER, "p-nobody")
    assert len(item["embedding"]["B"]) == 4 * EMBEDDING_DIMENSIONS == 1536
    assert _version(item) > _version(before)
    document = document_from_image(item)
    assert document.embedding is not None and len(document.embedding) == EMBEDDING_DIMENSIONS
    assert np.array_equal(np.asarray(document.embedding, dtype=np.float32), vector)
    assert document.tags == ("animal", "beach", "dog")

    # A newer analysis without a vector removes the old one: it described what the photo no longer says.
    assert store.save(analysis("p-nobody", 2, None))
    assert "embedding" not in raw_item(OWNER, "p-nobody")
    assert document_from_image(raw_item(OWNER, "p-nobody")).embedding is None


def test_an_embedding_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="1536 bytes"):
        analysis("p", 1, b"\x00" * 1535)


class OneResultAnalyzer:
    def analyze(self, preview_jpeg: bytes, plan: AnalysisPlan) -> AnalysisResult:
        return analysis(plan.photo_id, plan.analysis_version, None).result


def test_the_analysis_pipeline_stores_the_vector_of_the_photos_search_description(cloud):
    described: list[str] = []
    vector = unit_vector(2)

    def embed(texts: list[str]) -> np.ndarray:
        described.extend(texts)
        return np.stack([vector for _ in texts])

    cloud.derivatives.put(PhotoKeys.for_photo(OWNER, "p-nobody").preview, b"\xff\xd8\xff preview", content_type="image/jpeg")
    service = AnalysisService(
        previews=cloud.derivatives,
        photos=cloud.metadata,
        store=cloud.analysis,
        analyzer=OneResultAnalyzer(),
        settings=AnalysisSettings(analysis_version=1),
        resolve_place=lambda gps: StoredPlace(city="Lagos", country="Portugal", lat=37.1, lon=-8.7),
        embed=embed,
    )

    saved = service.analyze_one(PhotoRecord(OWNER, "p-nobody", PhotoStatus.READY))

    # The same description the local index embeds: the file name's words, caption, tags (with parents), place,
    # text in the photo.
    [text] = described
    assert text.startswith(f"nobody. {saved.caption.rstrip('.')}") and "Tags: animal, beach, dog." in text
    assert "Place: Lagos, Portugal." in text and "Text: SURF SHOP" in text
    document = document_from_image(raw_item(OWNER, "p-nobody"))
    assert np.array_equal(np.asarray(document.embedding, dtype=np.float32), vector)


def test_a_rename_across_many_photos_writes_each_existing_photo_once_on_several_threads(cloud):
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    many = [f"p-many-{i:03d}" for i in range(60)]
    for photo_id in many:
        dynamodb.put_item(TableName=TABLE, Item=_photo_item(ready_photo(OWNER, photo_id)))
    gone = many[::7]  # deleted meanwhile: skipped, never resurrected
    for photo_id in gone:
        dynamodb.delete_item(TableName=TABLE, Key={"PK": {"S": owner_pk(OWNER)}, "SK": {"S": photo_sk(photo_id)}})

    written = DynamoDbPhotoPeople(TABLE).write_people(OWNER, many, {p: [(ANA, "Ana")] for p in many})

    assert written == len(many) - len(gone)
    assert all(raw_item(OWNER, p) is None for p in gone)
    assert all(indexed_people(OWNER, p) == (IndexedPerson(person_id=ANA, name="Ana"),) for p in many if p not in gone)
