"""One body per FeedbackStore behaviour, run against DynamoDbFeedbackStore (moto) and SqliteFeedbackStore; then
what only the cloud adapter does: the event item and the photo item's overlay in ONE TransactWriteItems, the
photo's updated_at moved forward for the stream indexer, and a deleted photo neither resurrected nor given
feedback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest

from photo_organizer.adapters.aws.dynamodb_feedback import DynamoDbFeedbackStore
from photo_organizer.adapters.aws.dynamodb_metadata import DynamoDbMetadataStore, table_definition
from photo_organizer.adapters.local.sqlite_feedback import SqliteFeedbackStore
from photo_organizer.adapters.local.sqlite_metadata import SqliteMetadataStore
from photo_organizer.errors import FeedbackConflictError, PhotoNotFoundError
from photo_organizer.feedback.models import FeedbackRecord, FeedbackType, TagOverlay, new_feedback_id, overlay_of
from photo_organizer.models import Photo, PhotoStatus, utcnow

REGION = "us-east-1"
TABLE = "po-feedback-test"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


@dataclass
class FeedbackStoreUnderTest:
    kind: str
    store: Any
    photos: Any


def _ready_photo(photos: Any, owner: str, photo_id: str) -> None:
    now = utcnow()
    pending = Photo(owner=owner, photo_id=photo_id, status=PhotoStatus.PENDING_UPLOAD, filename="a.jpg",
                    declared_content_type="image/jpeg", declared_size=10, created_at=now, updated_at=now)
    photos.create_photo(pending, pending_ttl=timedelta(days=1))
    photos.finish_photo(pending.model_copy(update={"status": PhotoStatus.READY}),
                        expected_status=PhotoStatus.PENDING_UPLOAD)


@pytest.fixture(params=["local", "aws"])
def feedback(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeedbackStoreUnderTest]:
    if request.param == "aws":
        request.getfixturevalue("aws_env")
        boto3.client("dynamodb", region_name=REGION).create_table(**table_definition(TABLE))
        under_test = FeedbackStoreUnderTest("aws", DynamoDbFeedbackStore(TABLE), DynamoDbMetadataStore(TABLE))
    else:
        path = tmp_path / "metadata.sqlite3"
        under_test = FeedbackStoreUnderTest("local", SqliteFeedbackStore(path), SqliteMetadataStore(path))
    for owner, photo_id in (("alice", "p1"), ("alice", "p2"), ("bob", "p1")):
        _ready_photo(under_test.photos, owner, photo_id)
    yield under_test


def event(kind: FeedbackType, *, owner: str = "alice", photo_id: str | None = "p1", minutes: int = 0,
          **fields: Any) -> FeedbackRecord:
    return FeedbackRecord(feedback_id=new_feedback_id(), owner=owner, type=kind,
                          created_at=T0 + timedelta(minutes=minutes), photo_id=photo_id, **fields)


def test_an_event_and_its_overlay_are_stored_together_and_read_back(feedback: FeedbackStoreUnderTest) -> None:
    added = event(FeedbackType.TAG_ADDED, tag="grandma's house")
    feedback.store.record(added, overlay=overlay_of([added]))
    rejected = event(FeedbackType.TAG_REJECTED, tag="cat", minutes=1)
    feedback.store.record(rejected, overlay=overlay_of([added, rejected]))
    face = event(FeedbackType.FACE_ASSIGNED, face_id="f1", person_id="ana", previous_person_id="rui", minutes=2)
    feedback.store.record(face)

    assert feedback.store.get("alice", added.feedback_id) == added
    assert feedback.store.get("bob", added.feedback_id) is None
    assert feedback.store.for_photo("alice", "p1") == [added, rejected, face]
    assert feedback.store.for_photo("bob", "p1") == []
    assert feedback.store.overlay("alice", "p1") == TagOverlay(added=frozenset({"grandma's house"}),
                                                               rejected=frozenset({"cat"}))
    assert feedback.store.overlay("alice", "p2") == TagOverlay() == feedback.store.overlay("bob", "p1")
    assert feedback.store.overlays("alice") == {"p1": feedback.store.overlay("alice", "p1")}
    assert feedback.store.events("alice") == [added, rejected, face]
    assert feedback.store.events("alice", since=T0 + timedelta(minutes=1)) == [rejected, face]
    assert feedback.store.events("bob") == []


def test_recording_the_same_event_twice_stores_it_once(feedback: FeedbackStoreUnderTest) -> None:
    added = event(FeedbackType.TAG_ADDED, tag="dog")
    feedback.store.record(added, overlay=overlay_of([added]))
    feedback.store.record(added, overlay=overlay_of([added]))
    assert feedback.store.events("alice") == [added]


def test_an_undo_marks_its_event_once_and_changes_the_overlay(feedback: FeedbackStoreUnderTest) -> None:
    rejected = event(FeedbackType.TAG_REJECTED, tag="cat")
    feedback.store.record(rejected, overlay=overlay_of([rejected]))
    undone_at = T0 + timedelta(minutes=5)
    undo = event(FeedbackType.UNDO, undoes=rejected.feedback_id, minutes=5)
    feedback.store.record_undo(undo, undone_at=undone_at, overlay=TagOverlay())

    assert feedback.store.get("alice", rejected.feedback_id).undone_at == undone_at
    assert feedback.store.for_photo("alice", "p1") == [rejected.model_copy(update={"undone_at": undone_at})]
    assert feedback.store.events("alice")[-1] == undo
    assert feedback.store.overlay("alice", "p1") == TagOverlay() and feedback.store.overlays("alice") == {}

    again = event(FeedbackType.UNDO, undoes=rejected.feedback_id, minutes=6)
    with pytest.raises(FeedbackConflictError) as refused:
        feedback.store.record_undo(again, undone_at=T0 + timedelta(minutes=6), overlay=TagOverlay())
    assert refused.value.code == "already_undone"
    assert feedback.store.get("alice", again.feedback_id) is None, "a refused undo is not recorded"


def test_irrelevant_photos_are_per_query_and_a_later_relevant_mark_cancels(feedback: FeedbackStoreUnderTest) -> None:
    marks = [
        event(FeedbackType.SEARCH_IRRELEVANT, photo_id="p1", query="beach", rank=1),
        event(FeedbackType.SEARCH_IRRELEVANT, photo_id="p2", query="beach", rank=2, minutes=1),
        event(FeedbackType.SEARCH_IRRELEVANT, photo_id="p1", query="dog", rank=3, minutes=2),
        event(FeedbackType.SEARCH_RELEVANT, photo_id="p2", query="beach", rank=1, minutes=3),
    ]
    for mark in marks:
        photo_marks = [m for m in marks[: marks.index(mark) + 1] if m.photo_id == mark.photo_id]
        feedback.store.record(mark, overlay=overlay_of(photo_marks))
    assert feedback.store.irrelevant_photos("alice", "beach") == {"p1"}
    assert feedback.store.irrelevant_photos("alice", "dog") == {"p1"}
    assert feedback.store.irrelevant_photos("alice", "cat") == set()
    assert feedback.store.irrelevant_photos("bob", "beach") == set()

    undo = event(FeedbackType.UNDO, photo_id="p1", query="beach", undoes=marks[0].feedback_id, minutes=4)
    remaining = [m for m in marks if m.photo_id == "p1" and m is not marks[0]]
    feedback.store.record_undo(undo, undone_at=T0 + timedelta(minutes=4), overlay=overlay_of(remaining))
    assert feedback.store.irrelevant_photos("alice", "beach") == set(), "an undone mark no longer hides the photo"
    assert feedback.store.irrelevant_photos("alice", "dog") == {"p1"}
    feedback.store.forget_photo("alice", "p1")
    assert feedback.store.irrelevant_photos("alice", "dog") == set(), "a deleted photo leaves no mark behind"


def test_forgetting_a_photo_drops_its_events_and_overlay_only(feedback: FeedbackStoreUnderTest) -> None:
    one, two = event(FeedbackType.TAG_ADDED, tag="x"), event(FeedbackType.TAG_ADDED, photo_id="p2", tag="y")
    bobs = event(FeedbackType.TAG_ADDED, owner="bob", tag="z")
    for record in (one, two, bobs):
        feedback.store.record(record, overlay=overlay_of([record]))
    feedback.store.forget_photo("alice", "p1")
    assert feedback.store.events("alice") == [two] and feedback.store.for_photo("alice", "p1") == []
    assert set(feedback.store.overlays("alice")) == {"p2"}
    assert feedback.store.events("bob") == [bobs]


# ---- the cloud adapter's transaction ------------------------------------------------------------------------------


@pytest.fixture
def cloud(aws_env) -> tuple[DynamoDbFeedbackStore, Any, list[dict]]:
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(**table_definition(TABLE))
    photos = DynamoDbMetadataStore(TABLE)
    _ready_photo(photos, "alice", "p1")
    calls: list[dict] = []
    client.meta.events.register("before-parameter-build.dynamodb.*", lambda model, params, **_: calls.append(
        {"operation": model.name, "params": params}))
    return DynamoDbFeedbackStore(TABLE, client_factory=lambda: client), client, calls


def _item(client: Any, sk: str) -> dict | None:
    return client.get_item(TableName=TABLE, Key={"PK": {"S": "OWNER#alice"}, "SK": {"S": sk}},
                           ConsistentRead=True).get("Item")


def test_the_event_item_and_the_photo_overlay_are_one_transact_write_items(cloud) -> None:
    store, client, calls = cloud
    before = _item(client, "PHOTO#p1")["updated_at"]["S"]
    added = event(FeedbackType.TAG_ADDED, tag="grandma's house")
    store.record(added, overlay=overlay_of([added]))

    writes = [c for c in calls if c["operation"] != "GetItem"]
    assert [c["operation"] for c in writes] == ["TransactWriteItems"]
    put, update = writes[0]["params"]["TransactItems"]
    assert put["Put"]["Item"]["SK"] == {"S": f"FEEDBACK#{added.feedback_id}"}
    assert put["Put"]["Item"]["entity"] == {"S": "feedback"}
    assert update["Update"]["Key"]["SK"] == {"S": "PHOTO#p1"}

    event_item = _item(client, f"FEEDBACK#{added.feedback_id}")
    assert event_item["type"] == {"S": "tag_added"} and event_item["tag"] == {"S": "grandma's house"}
    assert "undone_at" not in event_item
    photo = _item(client, "PHOTO#p1")
    assert photo["feedback"]["M"]["added"] == {"L": [{"S": "grandma's house"}]}
    assert photo["feedback"]["M"]["caption_rejected"] == {"BOOL": False}
    assert photo["updated_at"]["S"] > before, "the stream indexer versions the document by updated_at"
    assert photo["status"] == {"S": "READY"}, "an update of the overlay only"

    undo = event(FeedbackType.UNDO, undoes=added.feedback_id, minutes=1)
    calls.clear()
    store.record_undo(undo, undone_at=T0 + timedelta(minutes=1), overlay=TagOverlay())
    [transaction] = [c for c in calls if c["operation"] == "TransactWriteItems"]
    assert len(transaction["params"]["TransactItems"]) == 3  # the undo, the mark on the event, the overlay
    assert "feedback" not in _item(client, "PHOTO#p1"), "an empty overlay leaves no map behind"
    assert _item(client, f"FEEDBACK#{added.feedback_id}")["undone_at"]["S"].startswith("2026-12-01T09:01")


def test_feedback_on_a_deleted_photo_is_refused_and_nothing_is_written(cloud) -> None:
    store, client, _ = cloud
    DynamoDbMetadataStore(TABLE).delete_photo("alice", "p1")
    added = event(FeedbackType.TAG_ADDED, tag="x")
    with pytest.raises(PhotoNotFoundError):
        store.record(added, overlay=overlay_of([added]))
    assert _item(client, f"FEEDBACK#{added.feedback_id}") is None
    assert _item(client, "PHOTO#p1") is None, "the overlay update did not resurrect the photo"
    assert store.events("alice") == []


def test_a_text_search_reads_one_short_key_range_of_marks_not_the_owners_events(cloud) -> None:
    store, client, calls = cloud
    for minutes in range(30):  # feedback a search must not have to read
        tag = event(FeedbackType.TAG_ADDED, tag=f"t{minutes}", minutes=minutes)
        store.record(tag, overlay=TagOverlay(added=frozenset({tag.tag})))
    mark = event(FeedbackType.SEARCH_IRRELEVANT, query="beach", rank=1, minutes=31)
    store.record(mark, overlay=TagOverlay(irrelevant_queries=frozenset({"beach"})))
    [transaction] = [c for c in calls if c["operation"] == "TransactWriteItems"][-1:]
    assert [next(iter(op)) for op in transaction["params"]["TransactItems"]] == ["Put", "Update", "Put"]

    calls.clear()
    assert store.irrelevant_photos("alice", "beach") == {"p1"}
    [read] = calls
    assert read["operation"] == "Query" and "FilterExpression" not in read["params"]
    assert read["params"]["ExpressionAttributeValues"][":prefix"]["S"].startswith("IRRELEVANT#")


def test_forget_owner_erases_every_event_and_overlay_of_the_owner_only(feedback: FeedbackStoreUnderTest) -> None:
    mine = [event(FeedbackType.TAG_ADDED, tag="x"), event(FeedbackType.TAG_ADDED, photo_id="p2", tag="y"),
            event(FeedbackType.SEARCH_IRRELEVANT, photo_id="p2", query="beach")]
    bobs = event(FeedbackType.TAG_ADDED, owner="bob", tag="z")
    for record in (*mine, bobs):
        feedback.store.record(record, overlay=overlay_of([record]))
    assert feedback.store.forget_owner("alice") == len(mine)
    feedback.photos.delete_photo("alice", "p1")  # erasure deletes the photos (the cloud's overlays go with them)
    feedback.photos.delete_photo("alice", "p2")
    assert feedback.store.events("alice") == [] and feedback.store.overlays("alice") == {}
    assert feedback.store.irrelevant_photos("alice", "beach") == set()
    assert feedback.store.events("bob") == [bobs] and set(feedback.store.overlays("bob")) == {"p1"}
    assert feedback.store.forget_owner("alice") == 0, "idempotent"
