"""One body per AnalysisStore behaviour, run against DynamoDbAnalysisStore (moto) and SqliteAnalysisStore.

Photos are made through the MetadataStore adapter of the same backend, as ingest makes them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest

from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbAnalysisStore
from photo_organizer.adapters.aws.dynamodb_metadata import DynamoDbMetadataStore, owner_pk, photo_sk, table_definition
from photo_organizer.adapters.local.sqlite_analysis import SqliteAnalysisStore
from photo_organizer.adapters.local.sqlite_metadata import SqliteMetadataStore
from photo_organizer.analysis.models import (
    AnalysisResult,
    AnalysisSource,
    BoundingBox,
    FaceDetection,
    Label,
    ModerationLabel,
    TextLine,
)
from photo_organizer.analysis.store import OCR_TEXT_MAX_CHARS, PhotoAnalysis, StoredPlace
from photo_organizer.errors import ValidationError
from photo_organizer.models import ImageFormat, ImageMetadata, Photo, PhotoStatus, utcnow

REGION = "us-east-1"
TABLE = "po-analysis-test"
ANALYSED_AT = datetime(2024, 7, 2, 9, 30, tzinfo=timezone.utc)
PENDING_TTL = timedelta(days=1)
PHASH = "0123456789abcdef"


def sha(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def pending(owner: str, photo_id: str) -> Photo:
    now = utcnow()
    return Photo(
        owner=owner,
        photo_id=photo_id,
        status=PhotoStatus.PENDING_UPLOAD,
        filename=f"{photo_id}.jpg",
        declared_content_type="image/jpeg",
        declared_size=1234,
        created_at=now,
        updated_at=now,
    )


def finished(photo: Photo, status: PhotoStatus = PhotoStatus.READY) -> Photo:
    metadata = ImageMetadata(
        format=ImageFormat.JPEG, width=640, height=480, byte_size=1234, sha256=sha(photo.photo_id), phash=PHASH
    )
    return photo.model_copy(update={"status": status, "metadata": metadata, "original_version": "v1"})


def add_ready(photos: Any, owner: str, photo_id: str) -> Photo:
    photos.create_photo(pending(owner, photo_id), pending_ttl=PENDING_TTL)
    ready = finished(pending(owner, photo_id))
    photos.finish_photo(ready, expected_status=PhotoStatus.PENDING_UPLOAD)
    return photos.get_photo(owner, photo_id)


@dataclass
class AnalysisStoreUnderTest:
    kind: str
    store: Any
    photos: Any
    raw_item: Any = None
    """aws only: the photo's raw DynamoDB item (None when absent)."""


def _aws(read_page_size: int | None) -> AnalysisStoreUnderTest:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(**table_definition(TABLE))

    def raw_item(owner: str, photo_id: str) -> dict[str, Any] | None:
        return dynamodb.get_item(
            TableName=TABLE, Key={"PK": {"S": owner_pk(owner)}, "SK": {"S": photo_sk(photo_id)}}
        ).get("Item")

    return AnalysisStoreUnderTest(
        "aws",
        DynamoDbAnalysisStore(TABLE, read_page_size=read_page_size),
        DynamoDbMetadataStore(TABLE),
        raw_item,
    )


@pytest.fixture(params=["local", "aws"])
def analysis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnalysisStoreUnderTest]:
    if request.param == "aws":
        request.getfixturevalue("aws_env")
        # Two items per request: filters apply after Limit, so most requests return fewer matches than asked.
        yield _aws(read_page_size=2)
        return
    path = tmp_path / "metadata.sqlite3"
    photos, store = SqliteMetadataStore(path), SqliteAnalysisStore(path)
    yield AnalysisStoreUnderTest("local", store, photos)
    store.close()
    photos.close()


def result(photo_id: str, version: int = 1, **changes: Any) -> AnalysisResult:
    fields: dict[str, Any] = {
        "photo_id": photo_id,
        "analysis_version": version,
        "labels": (
            Label(name="Tabby", confidence=97.25, parents=("Cat", "Pet", "Animal")),
            Label(name="Beach", confidence=88.5, categories=("Travel",)),
        ),
        "faces": (
            FaceDetection(
                box=BoundingBox(left=0.1, top=0.2, width=0.3, height=0.4), confidence=99.9, face_handle="f-1"
            ),
        ),
        "text_lines": (TextLine(text="CAFE DO MAR", confidence=95.0),),
        "dominant_colours": ("#aabbcc",),
        "analysed_at": ANALYSED_AT,
        "source": AnalysisSource.REKOGNITION,
    }
    fields.update(changes)
    return AnalysisResult(**fields)


def photo_analysis(owner: str, photo_id: str, version: int = 1, **changes: Any) -> PhotoAnalysis:
    return PhotoAnalysis(
        owner=owner,
        result=result(photo_id, version, **changes),
        caption=f"v{version}: a cat on a beach in Lagos, Portugal",
        place=StoredPlace(city="Lagos", region="Faro", country_code="PT", country="Portugal", lat=37.1, lon=-8.67),
        local_taken_at=datetime(2024, 7, 1, 18, 5, tzinfo=timezone(timedelta(hours=1))),
        time_zone="Europe/Lisbon",
    )


def all_pending(store, version: int, *, owner: str | None, limit: int) -> tuple[list[tuple[str, str]], int]:
    seen, pages, after = [], 0, None
    while True:
        page = store.pending(version, owner=owner, limit=limit, after=after)
        pages += 1
        assert len(page.photos) <= limit
        seen.extend((p.owner, p.photo_id) for p in page.photos)
        if page.next_key is None:
            return seen, pages
        assert page.photos, "a cursor never leads to an empty page"
        after = page.next_key
        assert pages < 100


# ---- save / get ----------------------------------------------------------------------------------------------


def test_saved_analysis_reads_back_equal(analysis: AnalysisStoreUnderTest) -> None:
    add_ready(analysis.photos, "alice", "p1")
    saved = photo_analysis("alice", "p1")

    assert analysis.store.save(saved) is True

    assert analysis.store.get("alice", "p1") == saved
    assert analysis.store.get("alice", "p2") is None


def test_analysis_without_optional_parts_reads_back_equal(analysis: AnalysisStoreUnderTest) -> None:
    add_ready(analysis.photos, "alice", "p1")
    bare = PhotoAnalysis(
        owner="alice",
        result=AnalysisResult(
            photo_id="p1", analysis_version=1, analysed_at=ANALYSED_AT, source=AnalysisSource.LOCAL, copied_from="p0"
        ),
    )

    assert analysis.store.save(bare) is True

    assert analysis.store.get("alice", "p1") == bare


def test_sensitive_flag_survives_the_roundtrip(analysis: AnalysisStoreUnderTest) -> None:
    add_ready(analysis.photos, "alice", "p1")
    add_ready(analysis.photos, "alice", "p2")
    flagged = photo_analysis("alice", "p1", moderation_labels=(ModerationLabel(name="Explicit", confidence=93.0),))
    borderline = photo_analysis("alice", "p2", moderation_labels=(ModerationLabel(name="Swimwear", confidence=61.0),))

    analysis.store.save(flagged)
    analysis.store.save(borderline)

    assert analysis.store.get("alice", "p1").result.sensitive is True
    assert analysis.store.get("alice", "p2").result.sensitive is False
    if analysis.kind == "aws":
        assert analysis.raw_item("alice", "p1")["sensitive"] == {"BOOL": True}
        assert analysis.raw_item("alice", "p2")["sensitive"] == {"BOOL": False}


def test_older_or_same_version_never_replaces_the_stored_one(analysis: AnalysisStoreUnderTest) -> None:
    add_ready(analysis.photos, "alice", "p1")
    assert analysis.store.save(photo_analysis("alice", "p1", version=2)) is True

    assert analysis.store.save(photo_analysis("alice", "p1", version=2, dominant_colours=("#000000",))) is False
    assert analysis.store.save(photo_analysis("alice", "p1", version=1)) is False

    assert analysis.store.get("alice", "p1") == photo_analysis("alice", "p1", version=2)
    assert analysis.store.save(photo_analysis("alice", "p1", version=3)) is True
    assert analysis.store.get("alice", "p1").analysis_version == 3


def test_save_on_a_deleted_photo_is_refused_and_creates_nothing(analysis: AnalysisStoreUnderTest) -> None:
    add_ready(analysis.photos, "alice", "p1")
    analysis.photos.delete_photo("alice", "p1")

    assert analysis.store.save(photo_analysis("alice", "p1")) is False
    assert analysis.store.save(photo_analysis("alice", "never-existed")) is False

    assert analysis.store.get("alice", "p1") is None
    assert analysis.photos.get_photo("alice", "p1") is None
    if analysis.kind == "aws":
        assert analysis.raw_item("alice", "p1") is None
        assert analysis.raw_item("alice", "never-existed") is None


def test_save_on_a_photo_not_ready_is_refused(analysis: AnalysisStoreUnderTest) -> None:
    analysis.photos.create_photo(pending("alice", "p1"), pending_ttl=PENDING_TTL)

    assert analysis.store.save(photo_analysis("alice", "p1")) is False

    assert analysis.photos.get_photo("alice", "p1").status is PhotoStatus.PENDING_UPLOAD


def test_analysis_leaves_the_photo_record_and_listing_intact(analysis: AnalysisStoreUnderTest) -> None:
    photo = add_ready(analysis.photos, "alice", "p1")

    analysis.store.save(photo_analysis("alice", "p1"))

    after = analysis.photos.get_photo("alice", "p1")
    # updated_at may move forward (the DynamoDB stream indexer orders writes by it); nothing else changes.
    assert after.model_copy(update={"updated_at": photo.updated_at}) == photo
    assert after.updated_at >= photo.updated_at
    assert [p.photo_id for p in analysis.photos.list_photos("alice", limit=10, after=None).photos] == ["p1"]


def test_dynamodb_item_carries_search_fields(analysis: AnalysisStoreUnderTest) -> None:
    if analysis.kind != "aws":
        pytest.skip("the flattened search attributes are a DynamoDB item detail")
    add_ready(analysis.photos, "alice", "p1")
    long_text = tuple(TextLine(text="x" * 500, confidence=90.0) for _ in range(20))

    analysis.store.save(photo_analysis("alice", "p1", text_lines=long_text))

    item = analysis.raw_item("alice", "p1")
    assert [v["S"] for v in item["label_names"]["L"]] == ["animal", "beach", "cat", "pet", "tabby"]
    assert len(item["ocr_text"]["S"]) == OCR_TEXT_MAX_CHARS
    assert item["analysis_version"] == {"N": "1"}
    assert item["caption"]["S"].startswith("v1:")


def test_another_owner_never_sees_the_analysis(analysis: AnalysisStoreUnderTest) -> None:
    add_ready(analysis.photos, "alice", "p1")
    analysis.store.save(photo_analysis("alice", "p1"))
    analysis.store.record_failure("alice", "p1", analysis_version=2, reason="throttled")

    assert analysis.store.get("bob", "p1") is None
    assert analysis.store.analysed("bob", min_version=1) == []
    assert analysis.store.failures("bob") == []
    assert analysis.store.pending(2, owner="bob").photos == []
    assert analysis.store.save(photo_analysis("bob", "p1", version=5)) is False
    assert analysis.store.get("alice", "p1").analysis_version == 1


# ---- delete --------------------------------------------------------------------------------------------------


def test_delete_forgets_the_analysis_and_is_idempotent(analysis: AnalysisStoreUnderTest) -> None:
    add_ready(analysis.photos, "alice", "p1")
    analysis.store.save(photo_analysis("alice", "p1"))
    analysis.store.record_failure("alice", "p1", analysis_version=2, reason="throttled")

    analysis.store.delete("alice", "p1")
    analysis.store.delete("alice", "p1")
    analysis.store.delete("alice", "gone")

    assert analysis.store.get("alice", "p1") is None
    assert analysis.store.failures("alice") == []
    assert analysis.photos.get_photo("alice", "p1") is not None
    if analysis.kind == "aws":
        assert analysis.raw_item("alice", "gone") is None
        assert not {"analysis", "analysis_version", "label_names", "caption"} & set(analysis.raw_item("alice", "p1"))


# ---- pending / analysed --------------------------------------------------------------------------------------


def _library(analysis: AnalysisStoreUnderTest) -> dict[str, set[str]]:
    """Two owners, photos in every state; returns the ids pending at version 2 per owner."""
    expected: dict[str, set[str]] = {"alice": set(), "bob": set()}
    for owner, count in (("alice", 9), ("bob", 4)):
        for n in range(count):
            photo_id = f"{owner[0]}{n:02d}"
            add_ready(analysis.photos, owner, photo_id)
            if n % 3 == 0:
                analysis.store.save(photo_analysis(owner, photo_id, version=2))  # current: not pending
            elif n % 3 == 1:
                analysis.store.save(photo_analysis(owner, photo_id, version=1))  # stale: pending
                expected[owner].add(photo_id)
            else:
                expected[owner].add(photo_id)  # never analysed: pending
    # Never pending: not READY, or gone.
    analysis.photos.create_photo(pending("alice", "a-pending"), pending_ttl=PENDING_TTL)
    analysis.photos.create_photo(pending("alice", "a-rejected"), pending_ttl=PENDING_TTL)
    analysis.photos.finish_photo(
        finished(pending("alice", "a-rejected"), PhotoStatus.REJECTED), expected_status=PhotoStatus.PENDING_UPLOAD
    )
    add_ready(analysis.photos, "alice", "a-deleted")
    analysis.photos.delete_photo("alice", "a-deleted")
    return expected


def test_pending_lists_ready_photos_below_the_version_per_owner_in_id_order(analysis: AnalysisStoreUnderTest) -> None:
    expected = _library(analysis)

    for owner in ("alice", "bob"):
        seen, pages = all_pending(analysis.store, 2, owner=owner, limit=2)
        assert [photo_id for _, photo_id in seen] == sorted(expected[owner])
        assert {o for o, _ in seen} == {owner}
        assert pages == -(-len(expected[owner]) // 2)


def test_pending_walks_every_owner_without_repeats(analysis: AnalysisStoreUnderTest) -> None:
    expected = _library(analysis)

    seen, _ = all_pending(analysis.store, 2, owner=None, limit=3)

    assert len(seen) == len(set(seen))
    assert set(seen) == {(owner, p) for owner, ids in expected.items() for p in ids}
    for owner in ("alice", "bob"):
        ids = [p for o, p in seen if o == owner]
        assert ids == sorted(ids), "oldest photo id first within an owner"


def test_pending_records_carry_what_dedupe_needs(analysis: AnalysisStoreUnderTest) -> None:
    add_ready(analysis.photos, "alice", "p1")
    add_ready(analysis.photos, "alice", "p2")
    analysis.store.save(photo_analysis("alice", "p2", version=1))

    page = analysis.store.pending(2, owner="alice", limit=10)

    assert [(p.photo_id, p.status, p.sha256, p.phash, p.analysis_version) for p in page.photos] == [
        ("p1", PhotoStatus.READY, sha("p1"), PHASH, 0),
        ("p2", PhotoStatus.READY, sha("p2"), PHASH, 1),
    ]
    assert page.next_key is None


def test_pending_finds_a_match_behind_many_non_matching_items(analysis: AnalysisStoreUnderTest) -> None:
    for n in range(7):
        add_ready(analysis.photos, "alice", f"p{n}")
        if n != 5:
            analysis.store.save(photo_analysis("alice", f"p{n}"))

    page = analysis.store.pending(1, owner="alice", limit=1)
    everyone = analysis.store.pending(1, limit=1)

    assert [p.photo_id for p in page.photos] == ["p5"] and page.next_key is None
    assert [p.photo_id for p in everyone.photos] == ["p5"] and everyone.next_key is None


def test_a_failed_photo_stays_pending(analysis: AnalysisStoreUnderTest) -> None:
    add_ready(analysis.photos, "alice", "p1")

    analysis.store.record_failure("alice", "p1", analysis_version=1, reason="InvalidImageFormatException")

    assert [p.photo_id for p in analysis.store.pending(1, owner="alice").photos] == ["p1"]


def test_pending_cursor_is_bound_to_its_scope(analysis: AnalysisStoreUnderTest) -> None:
    for n in range(3):
        add_ready(analysis.photos, "alice", f"p{n}")
    add_ready(analysis.photos, "bob", "b0")
    cursor = analysis.store.pending(1, owner="alice", limit=1).next_key
    assert cursor is not None

    for scope in ("bob", None):
        with pytest.raises(ValidationError):
            analysis.store.pending(1, owner=scope, limit=1, after=cursor)
    with pytest.raises(ValidationError):
        analysis.store.pending(1, owner="alice", limit=1, after="not-a-cursor")
    with pytest.raises(ValidationError):
        analysis.store.pending(1, owner="alice", limit=0)


def test_analysed_lists_dedupe_sources_at_or_above_the_version(analysis: AnalysisStoreUnderTest) -> None:
    for n in range(4):
        add_ready(analysis.photos, "alice", f"p{n}")
    analysis.store.save(photo_analysis("alice", "p0", version=1))
    analysis.store.save(photo_analysis("alice", "p1", version=2))
    analysis.store.save(photo_analysis("alice", "p2", version=3))
    add_ready(analysis.photos, "bob", "b0")
    analysis.store.save(photo_analysis("bob", "b0", version=3))

    sources = analysis.store.analysed("alice", min_version=2)

    assert [(s.owner, s.photo_id, s.analysis_version, s.sha256, s.phash) for s in sources] == [
        ("alice", "p1", 2, sha("p1"), PHASH),
        ("alice", "p2", 3, sha("p2"), PHASH),
    ]


# ---- failures ------------------------------------------------------------------------------------------------


def test_failures_are_counted_per_version_and_cleared_by_save(analysis: AnalysisStoreUnderTest) -> None:
    add_ready(analysis.photos, "alice", "p1")
    add_ready(analysis.photos, "bob", "b1")

    assert analysis.store.record_failure("alice", "p1", analysis_version=1, reason="throttled") == 1
    assert analysis.store.record_failure("alice", "p1", analysis_version=1, reason="InvalidImageFormat") == 2
    assert analysis.store.record_failure("bob", "b1", analysis_version=1, reason="timeout") == 1

    alice = analysis.store.failures("alice")
    assert [(f.owner, f.photo_id, f.analysis_version, f.reason, f.attempts) for f in alice] == [
        ("alice", "p1", 1, "InvalidImageFormat", 2)
    ]
    assert alice[0].last_failed_at.tzinfo is not None
    assert {(f.owner, f.photo_id) for f in analysis.store.failures()} == {("alice", "p1"), ("bob", "b1")}
    # A new analysis version starts a new count.
    assert analysis.store.record_failure("alice", "p1", analysis_version=2, reason="throttled") == 1

    assert analysis.store.save(photo_analysis("alice", "p1", version=2)) is True

    assert analysis.store.failures("alice") == []
    assert [f.photo_id for f in analysis.store.failures()] == ["b1"]


def test_failure_is_not_recorded_for_a_gone_or_already_analysed_photo(analysis: AnalysisStoreUnderTest) -> None:
    add_ready(analysis.photos, "alice", "p1")
    analysis.store.save(photo_analysis("alice", "p1", version=2))
    add_ready(analysis.photos, "alice", "p2")
    analysis.photos.delete_photo("alice", "p2")

    assert analysis.store.record_failure("alice", "p1", analysis_version=2, reason="late") == 0
    assert analysis.store.record_failure("alice", "p2", analysis_version=1, reason="gone") == 0
    assert analysis.store.record_failure("alice", "never", analysis_version=1, reason="gone") == 0

    assert analysis.store.failures() == []
    if analysis.kind == "aws":
        assert analysis.raw_item("alice", "p2") is None
        assert analysis.raw_item("alice", "never") is None


def test_analysis_progress_counts_one_owners_photos_from_the_store(analysis: AnalysisStoreUnderTest) -> None:
    """GET /analysis/progress's counts on both backends (the cloud's from the table, READY without analysis =
    waiting): a photo still uploading is not counted, another owner's never."""
    from photo_organizer.services.analysis_progress import AnalysisProgressService

    for photo_id in ("p1", "p2", "p3", "p4", "p5"):
        add_ready(analysis.photos, "ann", photo_id)
    add_ready(analysis.photos, "bob", "q1")
    analysis.photos.create_photo(pending("ann", "p6"), pending_ttl=PENDING_TTL)  # still uploading
    analysis.store.save(photo_analysis("ann", "p1"))
    analysis.store.save(photo_analysis("bob", "q1"))
    for _ in range(2):
        analysis.store.record_failure("ann", "p2", analysis_version=1, reason="InvalidImageError: unreadable")
    analysis.store.record_failure("ann", "p3", analysis_version=1, reason="ThrottlingError: slow down")

    local_like = AnalysisProgressService(analysis.store, version=1, max_attempts=2, analysing=lambda owner: {"p4"})
    assert local_like.of("ann").model_dump() == {"waiting": 2, "analysing": 1, "done": 1, "failed": 1}
    if analysis.kind == "local":  # the light query the local server answers with says the same
        light = AnalysisProgressService(analysis.store, version=1, max_attempts=2, analysing=lambda owner: {"p4"},
                                        ids_by_analysis=analysis.store.ids_by_analysis)
        assert light.of("ann") == local_like.of("ann")
        assert light.__class__(analysis.store, version=2, ids_by_analysis=analysis.store.ids_by_analysis).of(
            "ann").model_dump() == {"waiting": 5, "analysing": 0, "done": 0, "failed": 0}
    cloud_like = AnalysisProgressService(analysis.store, version=1, max_attempts=1)
    assert cloud_like.of("ann").model_dump() == {"waiting": 2, "analysing": 0, "done": 1, "failed": 2}
    assert cloud_like.of("bob").model_dump() == {"waiting": 0, "analysing": 0, "done": 1, "failed": 0}
    # A new analysis version: everything analysed before waits again; old failures are not this version's.
    assert cloud_like.__class__(analysis.store, version=2).of("ann").model_dump() == {
        "waiting": 5, "analysing": 0, "done": 0, "failed": 0}
