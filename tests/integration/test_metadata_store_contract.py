"""One body per MetadataStore behaviour, run against DynamoDbMetadataStore (moto) and SqliteMetadataStore."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest

from photo_organizer.errors import ConflictError, ValidationError
from photo_organizer.models import GeoPoint, ImageFormat, ImageMetadata, Photo, PhotoStatus, utcnow

PENDING_TTL = timedelta(days=1)
BASE = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)


def sha(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def pending(owner: str, photo_id: str, *, created_at: datetime | None = None) -> Photo:
    created = created_at or utcnow()
    return Photo(
        owner=owner,
        photo_id=photo_id,
        status=PhotoStatus.PENDING_UPLOAD,
        filename=f"{photo_id}.jpg",
        declared_content_type="image/jpeg",
        declared_size=1234,
        created_at=created,
        updated_at=created,
    )


def finished(photo: Photo, status: PhotoStatus = PhotoStatus.READY, *, taken_at: datetime | None = None,
             content: str | None = None) -> Photo:
    metadata = ImageMetadata(
        format=ImageFormat.JPEG,
        width=4032,
        height=3024,
        byte_size=1234,
        sha256=sha(content or photo.photo_id),
        phash="0123456789abcdef",
        taken_at=taken_at,
        taken_at_offset="+02:00" if taken_at and taken_at.tzinfo else None,
        gps=GeoPoint(lat=48.8584, lon=2.2945, altitude_m=35.5),
        camera_make="Canon",
        camera_model="EOS R5",
        orientation=6,
    )
    return photo.model_copy(update={"status": status, "metadata": metadata, "updated_at": utcnow(),
                                    "original_version": "v1"})


def create_live(store, photo: Photo) -> Photo:
    """Creates a pending record whose ticket is still live, however old its upload time (which orders the list)."""
    store.create_photo(photo, pending_ttl=utcnow() - photo.created_at + PENDING_TTL)
    return photo


def add_ready(store, owner: str, photo_id: str, *, taken_at: datetime | None = None,
              created_at: datetime | None = None) -> Photo:
    photo = create_live(store, pending(owner, photo_id, created_at=created_at))
    ready = finished(photo, taken_at=taken_at)
    store.finish_photo(ready, expected_status=PhotoStatus.PENDING_UPLOAD)
    return ready


def all_pages(store, owner: str, limit: int) -> tuple[list[str], int]:
    ids, pages, after = [], 0, None
    while True:
        page = store.list_photos(owner, limit=limit, after=after)
        pages += 1
        ids.extend(photo.photo_id for photo in page.photos)
        if page.next_key is None:
            return ids, pages
        after = page.next_key
        assert pages < 100


# ---- create / get / finish -------------------------------------------------------------------------------


def test_create_then_get_returns_an_equal_photo(metadata):
    photo = pending("alice", "p1")

    metadata.store.create_photo(photo, pending_ttl=PENDING_TTL)

    assert metadata.store.get_photo("alice", "p1") == photo
    assert metadata.store.get_photo("bob", "p1") is None
    assert metadata.store.get_photo("alice", "missing") is None


def test_creating_the_same_photo_id_twice_is_a_conflict(metadata):
    metadata.store.create_photo(pending("alice", "p1"), pending_ttl=PENDING_TTL)

    with pytest.raises(ConflictError):
        metadata.store.create_photo(pending("alice", "p1"), pending_ttl=PENDING_TTL)


def test_finished_photo_round_trips_with_its_metadata(metadata):
    photo = pending("alice", "p1")
    metadata.store.create_photo(photo, pending_ttl=PENDING_TTL)
    ready = finished(photo, taken_at=datetime(2023, 7, 14, 18, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2))))

    metadata.store.finish_photo(ready, expected_status=PhotoStatus.PENDING_UPLOAD)

    stored = metadata.store.get_photo("alice", "p1")
    assert stored == ready
    assert stored.metadata.gps.lat == pytest.approx(48.8584)
    assert stored.metadata.taken_at.utcoffset() == timedelta(hours=2)


def test_finish_with_a_stale_expected_status_is_a_conflict(metadata):
    photo = pending("alice", "p1")
    metadata.store.create_photo(photo, pending_ttl=PENDING_TTL)
    metadata.store.finish_photo(finished(photo), expected_status=PhotoStatus.PENDING_UPLOAD)

    with pytest.raises(ConflictError):
        metadata.store.finish_photo(
            finished(photo, PhotoStatus.REJECTED), expected_status=PhotoStatus.PENDING_UPLOAD
        )
    assert metadata.store.get_photo("alice", "p1").status is PhotoStatus.READY


def test_finish_of_a_missing_photo_is_a_conflict(metadata):
    with pytest.raises(ConflictError):
        metadata.store.finish_photo(finished(pending("alice", "ghost")), expected_status=PhotoStatus.PENDING_UPLOAD)
    assert metadata.store.get_photo("alice", "ghost") is None


# ---- pending TTL -----------------------------------------------------------------------------------------


def test_pending_record_carries_an_expiry_until_finished(metadata):
    photo = pending("alice", "p1")
    metadata.store.create_photo(photo, pending_ttl=PENDING_TTL)

    assert metadata.raw_expires_at("alice", "p1") == int((photo.created_at + PENDING_TTL).timestamp())

    metadata.store.finish_photo(finished(photo), expected_status=PhotoStatus.PENDING_UPLOAD)
    assert metadata.raw_expires_at("alice", "p1") is None


def test_an_expired_pending_record_is_treated_as_gone(metadata):
    stale = pending("alice", "p1", created_at=utcnow() - timedelta(days=2))
    metadata.store.create_photo(stale, pending_ttl=PENDING_TTL)

    assert metadata.store.get_photo("alice", "p1") is None
    with pytest.raises(ConflictError):  # too late to finish: the upload ticket is long dead
        metadata.store.finish_photo(finished(stale), expected_status=PhotoStatus.PENDING_UPLOAD)
    fresh = pending("alice", "p1")
    metadata.store.create_photo(fresh, pending_ttl=PENDING_TTL)  # the id is free again
    assert metadata.store.get_photo("alice", "p1") == fresh


# ---- listing ---------------------------------------------------------------------------------------------


def test_listing_is_newest_first_by_capture_time_falling_back_to_upload_time(metadata):
    add_ready(metadata.store, "alice", "old-capture", taken_at=datetime(2019, 1, 1, tzinfo=timezone.utc),
              created_at=BASE)
    add_ready(metadata.store, "alice", "no-exif", created_at=datetime(2021, 5, 5, tzinfo=timezone.utc))
    # 2022-03-03T10:00+05:00 is 05:00 UTC: compared in UTC, not by local wall time.
    add_ready(metadata.store, "alice", "offset-capture",
              taken_at=datetime(2022, 3, 3, 10, 0, tzinfo=timezone(timedelta(hours=5))), created_at=BASE)
    add_ready(metadata.store, "alice", "utc-capture", taken_at=datetime(2022, 3, 3, 6, 0, tzinfo=timezone.utc),
              created_at=BASE)
    add_ready(metadata.store, "alice", "naive-capture", taken_at=datetime(2020, 2, 2, 8, 0), created_at=BASE)

    page = metadata.store.list_photos("alice", limit=10, after=None)

    assert [p.photo_id for p in page.photos] == [
        "utc-capture", "offset-capture", "no-exif", "naive-capture", "old-capture"
    ]
    assert page.next_key is None


def test_equal_sort_times_are_ordered_by_photo_id_descending(metadata):
    for photo_id in ("b", "c", "a"):
        add_ready(metadata.store, "alice", photo_id, created_at=BASE)

    assert [p.photo_id for p in metadata.store.list_photos("alice", limit=10, after=None).photos] == ["c", "b", "a"]


def test_pagination_returns_every_ready_photo_once_and_nothing_else(metadata):
    store = metadata.store
    ready_ids = [f"r{i:02d}" for i in range(7)]
    for i, photo_id in enumerate(ready_ids):
        add_ready(store, "alice", photo_id, created_at=BASE + timedelta(minutes=i))
    create_live(store, pending("alice", "still-pending", created_at=BASE + timedelta(hours=1)))
    for photo_id, status in (("rejected", PhotoStatus.REJECTED), ("duplicate", PhotoStatus.DUPLICATE)):
        photo = create_live(store, pending("alice", photo_id, created_at=BASE + timedelta(hours=2)))
        store.finish_photo(finished(photo, status), expected_status=PhotoStatus.PENDING_UPLOAD)
    add_ready(store, "bob", "bobs-photo", created_at=BASE + timedelta(hours=3))

    ids, pages = all_pages(store, "alice", limit=3)

    assert ids == list(reversed(ready_ids))
    assert pages == 3  # 3 + 3 + 1: no trailing empty page


def test_a_page_that_ends_exactly_at_the_last_photo_has_no_cursor(metadata):
    for i in range(4):
        add_ready(metadata.store, "alice", f"p{i}", created_at=BASE + timedelta(minutes=i))

    ids, pages = all_pages(metadata.store, "alice", limit=2)

    assert ids == ["p3", "p2", "p1", "p0"] and pages == 2


def test_a_photo_leaves_the_listing_when_it_stops_being_ready(metadata):
    ready = add_ready(metadata.store, "alice", "p1", created_at=BASE)

    metadata.store.finish_photo(
        ready.model_copy(update={"status": PhotoStatus.DUPLICATE, "duplicate_of": "p0"}),
        expected_status=PhotoStatus.READY,
    )

    assert metadata.store.list_photos("alice", limit=10, after=None).photos == []


def test_another_owners_photos_never_appear(metadata):
    add_ready(metadata.store, "alice", "alices", created_at=BASE)
    add_ready(metadata.store, "bob", "bobs", created_at=BASE)

    assert [p.photo_id for p in metadata.store.list_photos("bob", limit=10, after=None).photos] == ["bobs"]
    assert metadata.store.list_photos("carol", limit=10, after=None).photos == []


def scrubber_library(store) -> None:
    """alice: two READY photos in May 2024 (one by capture time, one by upload time), one at the very end of
    April 2024 UTC (taken in May local time), one in 2023; plus a pending and a rejected May photo, and bob's."""
    add_ready(store, "alice", "may-late", taken_at=datetime(2024, 5, 30, 9, 0, tzinfo=timezone.utc),
              created_at=BASE)
    add_ready(store, "alice", "may-upload", created_at=datetime(2024, 5, 2, 8, 0, tzinfo=timezone.utc))
    # 2024-05-01T01:00+02:00 is 2024-04-30T23:00 UTC: months are UTC, as the listing orders.
    add_ready(store, "alice", "april-end", taken_at=datetime(2024, 5, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))),
              created_at=BASE)
    add_ready(store, "alice", "old", taken_at=datetime(2023, 12, 31, 23, 59, tzinfo=timezone.utc), created_at=BASE)
    create_live(store, pending("alice", "pending-may", created_at=datetime(2024, 5, 20, tzinfo=timezone.utc)))
    rejected = create_live(store, pending("alice", "rejected-may", created_at=datetime(2024, 5, 21, tzinfo=timezone.utc)))
    store.finish_photo(finished(rejected, PhotoStatus.REJECTED), expected_status=PhotoStatus.PENDING_UPLOAD)
    add_ready(store, "bob", "bobs", taken_at=datetime(2024, 7, 1, tzinfo=timezone.utc), created_at=BASE)


def test_photo_months_counts_ready_photos_per_utc_month_newest_first(metadata):
    scrubber_library(metadata.store)

    assert metadata.store.photo_months("alice") == [("2024-05", 2), ("2024-04", 1), ("2023-12", 1)]
    assert metadata.store.photo_months("bob") == [("2024-07", 1)]
    assert metadata.store.photo_months("carol") == []


def test_listing_before_an_instant_starts_at_the_photos_at_or_older_than_it(metadata):
    store = metadata.store
    scrubber_library(store)
    end_of_april = datetime(2024, 4, 30, 23, 59, 59, 999999, tzinfo=timezone.utc)

    page = store.list_photos("alice", limit=10, after=None, before=end_of_april)

    assert [p.photo_id for p in page.photos] == ["april-end", "old"] and page.next_key is None
    # At the instant itself counts (inclusive), one microsecond earlier does not.
    exact = datetime(2024, 5, 30, 9, 0, tzinfo=timezone.utc)
    assert [p.photo_id for p in store.list_photos("alice", limit=1, after=None, before=exact).photos] == ["may-late"]
    assert [p.photo_id for p in store.list_photos(
        "alice", limit=1, after=None, before=exact - timedelta(microseconds=1)).photos] == ["may-upload"]
    # A naive instant is UTC; an offset one is compared in UTC.
    assert [p.photo_id for p in store.list_photos(
        "alice", limit=10, after=None, before=datetime(2024, 5, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    ).photos] == ["april-end", "old"]
    assert [p.photo_id for p in store.list_photos(
        "alice", limit=10, after=None, before=datetime(2024, 1, 1)).photos] == ["old"]
    assert store.list_photos("alice", limit=10, after=None, before=datetime(2000, 1, 1)).photos == []
    assert store.list_photos("bob", limit=10, after=None, before=end_of_april).photos == []


def test_listing_before_an_instant_pages_on_with_the_cursor(metadata):
    store = metadata.store
    for i in range(7):
        add_ready(store, "alice", f"p{i}", created_at=BASE + timedelta(days=i))
    before = BASE + timedelta(days=4)
    ids, after = [], None
    for _ in range(5):
        page = store.list_photos("alice", limit=2, after=after, before=before)
        ids += [p.photo_id for p in page.photos]
        after = page.next_key
        if after is None:
            break

    assert ids == ["p4", "p3", "p2", "p1", "p0"]
    # A cursor from the unbounded listing that lies above the bound: the bound says where to start.
    newest = store.list_photos("alice", limit=1, after=None)
    assert [p.photo_id for p in store.list_photos(
        "alice", limit=2, after=newest.next_key, before=before).photos] == ["p4", "p3"]


def forge(body: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "%%%%",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        forge(["alice"]),
        forge({"v": 1, "owner": "alice"}),
        forge({"v": 2, "owner": "alice", "after": "2024-06-01T12:00:00.000000Z#x"}),
        forge({"v": 1, "owner": "alice", "after": "OWNER#bob#READY"}),
        forge({"v": 1, "owner": "alice", "after": "2024-06-01T12:00:00.000000Z#x", "PK": "OWNER#bob"}),
        "",
    ],
)
def test_a_garbage_or_forged_cursor_is_a_validation_error(metadata, cursor):
    add_ready(metadata.store, "alice", "p1", created_at=BASE)

    with pytest.raises(ValidationError):
        metadata.store.list_photos("alice", limit=10, after=cursor)


def test_a_cursor_issued_to_one_owner_cannot_page_through_anothers_photos(metadata):
    for i in range(3):
        add_ready(metadata.store, "alice", f"a{i}", created_at=BASE + timedelta(minutes=i))
    add_ready(metadata.store, "mallory", "m0", created_at=BASE)
    alices_cursor = metadata.store.list_photos("alice", limit=1, after=None).next_key
    assert alices_cursor is not None

    with pytest.raises(ValidationError):
        metadata.store.list_photos("mallory", limit=10, after=alices_cursor)
    # Re-labelling the cursor with the caller's owner only moves the caller's own position.
    relabelled = forge({**json.loads(base64.urlsafe_b64decode(alices_cursor + "==")), "owner": "mallory"})
    page = metadata.store.list_photos("mallory", limit=10, after=relabelled)
    assert all(p.owner == "mallory" for p in page.photos)


# ---- delete and content claims ---------------------------------------------------------------------------


def test_delete_removes_the_photo_and_its_own_content_claim(metadata):
    store = metadata.store
    ready = add_ready(store, "alice", "p1", created_at=BASE)
    assert store.claim_content("alice", ready.metadata.sha256, "p1") == "p1"

    store.delete_photo("alice", "p1")
    store.delete_photo("alice", "p1")  # idempotent

    assert store.get_photo("alice", "p1") is None
    assert store.list_photos("alice", limit=10, after=None).photos == []
    assert store.claim_content("alice", ready.metadata.sha256, "p2") == "p2"  # the hash is free again


def test_delete_keeps_a_content_claim_that_points_at_another_photo(metadata):
    store = metadata.store
    holder = add_ready(store, "alice", "holder", created_at=BASE)
    store.claim_content("alice", sha("same bytes"), "holder")
    dupe = pending("alice", "dupe")
    store.create_photo(dupe, pending_ttl=PENDING_TTL)
    store.finish_photo(
        finished(dupe, PhotoStatus.DUPLICATE, content="same bytes").model_copy(update={"duplicate_of": "holder"}),
        expected_status=PhotoStatus.PENDING_UPLOAD,
    )

    store.delete_photo("alice", "dupe")

    assert store.claim_content("alice", sha("same bytes"), "newcomer") == "holder"
    assert store.get_photo("alice", "holder") == holder


def test_first_claim_wins_and_the_second_gets_the_first_ones_id(metadata):
    store = metadata.store
    add_ready(store, "alice", "first", created_at=BASE)
    content = sha("beach")

    assert store.claim_content("alice", content, "first") == "first"
    assert store.claim_content("alice", content, "second") == "first"
    assert store.claim_content("alice", content, "first") == "first"  # a retried ingest is still the holder
    assert store.claim_content("bob", content, "bobs") == "bobs"  # claims are per owner


def test_a_live_pending_holder_keeps_its_claim(metadata):
    store = metadata.store
    store.create_photo(pending("alice", "in-flight"), pending_ttl=PENDING_TTL)
    content = sha("beach")
    store.claim_content("alice", content, "in-flight")

    assert store.claim_content("alice", content, "second") == "in-flight"


@pytest.mark.parametrize("fate", ["deleted_without_sha", "rejected", "expired_pending", "never_existed"])
def test_a_claim_is_taken_over_when_its_holder_is_gone_or_not_ready(metadata, fate):
    store = metadata.store
    content = sha("beach")
    if fate == "deleted_without_sha":
        store.create_photo(pending("alice", "holder"), pending_ttl=PENDING_TTL)
        store.claim_content("alice", content, "holder")
        store.delete_photo("alice", "holder")  # pending: no sha256 on record, so the claim lingers
    elif fate == "rejected":
        photo = pending("alice", "holder")
        store.create_photo(photo, pending_ttl=PENDING_TTL)
        store.claim_content("alice", content, "holder")
        store.finish_photo(finished(photo, PhotoStatus.REJECTED), expected_status=PhotoStatus.PENDING_UPLOAD)
    elif fate == "expired_pending":
        store.create_photo(pending("alice", "holder", created_at=utcnow() - timedelta(days=2)),
                           pending_ttl=PENDING_TTL)
        store.claim_content("alice", content, "holder")
    else:
        store.claim_content("alice", content, "holder")

    add_ready(store, "alice", "newcomer", created_at=BASE)

    assert store.claim_content("alice", content, "newcomer") == "newcomer"
    assert store.claim_content("alice", content, "third") == "newcomer"  # and the new holder keeps it


def test_concurrent_claims_of_one_hash_agree_on_a_single_winner(metadata):
    from concurrent.futures import ThreadPoolExecutor

    store = metadata.store
    contenders = [f"c{i}" for i in range(8)]
    for photo_id in contenders:
        create_live(store, pending("alice", photo_id))

    with ThreadPoolExecutor(max_workers=8) as pool:
        winners = set(pool.map(lambda photo_id: store.claim_content("alice", sha("burst"), photo_id), contenders))

    assert len(winners) == 1 and winners <= set(contenders)


def test_photo_ids_lists_every_status_of_the_owner_only(metadata):
    metadata = metadata.store
    add_ready(metadata, "alice", "p2")
    create_live(metadata, pending("alice", "p1"))
    add_ready(metadata, "bob", "p3")
    assert metadata.photo_ids("alice") == ["p1", "p2"], "pending photos too: erasure must see them"
    metadata.delete_photo("alice", "p1")
    assert metadata.photo_ids("alice") == ["p2"] and metadata.photo_ids("bob") == ["p3"]
    assert metadata.photo_ids("carol") == []
