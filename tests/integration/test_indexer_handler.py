"""The stream indexer: DynamoDB stream records (as moto's stream and the Lambda event carry them) -> the bulk
requests sent to OpenSearch, partial batch failures, and stream ordering under external versioning."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest

from photo_organizer.adapters.aws.dynamodb_metadata import DynamoDbMetadataStore, _photo_item, table_definition
from photo_organizer.adapters.aws.opensearch_index import OpenSearchIndex
from photo_organizer import bootstrap
from photo_organizer.handlers import indexer
from photo_organizer.models import ImageFormat, ImageMetadata, Photo, PhotoStatus

OWNER = "owner-a"
TABLE = "po-metadata-indexer-test"
STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/po-metadata/stream/2024-05-01T00:00:00.000"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


class VersionedCluster:
    """Answers bulk requests the way OpenSearch does with version_type=external: a version that is not
    strictly greater than the stored one is a 409 version_conflict_engine_exception. Statuses can be forced
    per document id (e.g. 429) and whole requests can fail."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[int, dict[str, Any]]] = {}
        self.requests: list[list[dict[str, Any]]] = []
        self.forced: dict[str, tuple[int, str]] = {}
        self.fail_with: Exception | None = None

    def bulk(self, *, body: str, index: Any = None, params: Any = None) -> dict[str, Any]:
        lines = [json.loads(line) for line in body.splitlines()]
        self.requests.append(lines)
        if self.fail_with is not None:
            raise self.fail_with
        items = []
        for action, source in zip(lines[::2], lines[1::2]):
            meta = action["index"]
            # Documents: strictly newer; tombstones (external_gte): newer or equal.
            assert meta["version_type"] == ("external_gte" if source.get("deleted") else "external")
            doc_id, version = meta["_id"], meta["version"]
            stored = self.docs[doc_id][0] if doc_id in self.docs else None
            refused = stored is not None and (stored > version or (stored == version and meta["version_type"] == "external"))
            if doc_id in self.forced:
                status, kind = self.forced[doc_id]
                items.append({"index": {"_id": doc_id, "status": status, "error": {"type": kind, "reason": kind}}})
            elif refused:
                items.append({"index": {"_id": doc_id, "status": 409, "error": {
                    "type": "version_conflict_engine_exception",
                    "reason": f"[{doc_id}]: version conflict, current version [{self.docs[doc_id][0]}] is higher or "
                    f"equal to the one provided [{version}]"}}})
            else:
                self.docs[doc_id] = (version, source)
                items.append({"index": {"_id": doc_id, "_version": version, "result": "created", "status": 201}})
        return {"took": 1, "errors": any(i["index"]["status"] >= 300 for i in items), "items": items}


@pytest.fixture
def cluster() -> VersionedCluster:
    return VersionedCluster()


@pytest.fixture
def index(cluster: VersionedCluster) -> OpenSearchIndex:
    return OpenSearchIndex("search.example", region="us-east-1", client_factory=lambda: cluster, clock=lambda: T0)


def photo(photo_id: str, *, status: PhotoStatus = PhotoStatus.READY, updated: datetime = T0) -> Photo:
    return Photo(
        owner=OWNER,
        photo_id=photo_id,
        status=status,
        filename=f"{photo_id}.jpg",
        declared_content_type="image/jpeg",
        declared_size=1000,
        created_at=T0 - timedelta(hours=1),
        updated_at=updated,
        metadata=None
        if status is PhotoStatus.PENDING_UPLOAD
        else ImageMetadata(format=ImageFormat.JPEG, width=10, height=10, byte_size=1000, sha256="b" * 64, phash="1" * 16),
    )


def record(sequence: int, name: str, *, new: Photo | None = None, old: Photo | None = None, **extra: Any) -> dict:
    """A Lambda DynamoDB Streams record, field for field as the service delivers it."""
    some = new or old
    assert some is not None
    change: dict[str, Any] = {
        "ApproximateCreationDateTime": 1714564800.0 + sequence,
        "Keys": {"PK": {"S": f"OWNER#{some.owner}"}, "SK": {"S": f"PHOTO#{some.photo_id}"}},
        "SequenceNumber": f"{sequence:021d}",
        "SizeBytes": 512,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        change["NewImage"] = {**_photo_item(new, expires_at=None), **extra}
    if old is not None:
        change["OldImage"] = _photo_item(old, expires_at=None)
    return {
        "eventID": f"event-{sequence}",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": change,
        "eventSourceARN": STREAM_ARN,
    }


def run(index: OpenSearchIndex, *records: dict) -> list[str]:
    response = indexer.process({"Records": list(records)}, None, bootstrap.stream_indexer(index))
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def test_insert_modify_remove_become_one_bulk_request(cluster, index):
    ready = photo("p-1", updated=T0)
    gone = photo("p-2", updated=T0)
    failures = run(
        index,
        record(1, "INSERT", new=photo("p-0", status=PhotoStatus.PENDING_UPLOAD)),  # never searchable: nothing
        record(2, "MODIFY", new=ready, old=photo("p-1", status=PhotoStatus.PENDING_UPLOAD)),
        record(3, "REMOVE", old=gone),
    )
    assert failures == []
    ((lines),) = cluster.requests
    actions = [line["index"] for line in lines[::2]]
    assert [(a["_id"], a["version"], a["version_type"], a["routing"]) for a in actions] == [
        ("owner-a#p-1", 1714564800000000, "external", OWNER),
        ("owner-a#p-2", 1714564800000000, "external_gte", OWNER),  # the version the delete was decided on
    ]
    assert lines[1]["photo_id"] == "p-1" and lines[1]["deleted"] is False
    assert lines[3] == {"owner": OWNER, "photo_id": "p-2", "deleted": True, "deleted_at": "2024-05-01T12:00:00Z"}


def test_an_old_record_after_a_new_one_changes_nothing(cluster, index):
    newer = photo("p-1", updated=T0 + timedelta(seconds=5))
    older = photo("p-1", updated=T0)
    assert run(index, record(2, "MODIFY", new=newer, old=older)) == []
    assert run(index, record(1, "MODIFY", new=older, old=photo("p-1", status=PhotoStatus.PENDING_UPLOAD))) == []
    version, source = cluster.docs["owner-a#p-1"]
    assert version == 1714564805000000 and source["deleted"] is False
    # A delete, then the stream replays the write before it (a retry): the tombstone stays.
    assert run(index, record(3, "REMOVE", old=newer)) == []
    assert run(index, record(2, "MODIFY", new=newer, old=older)) == []
    assert cluster.docs["owner-a#p-1"][1]["deleted"] is True


def test_a_photo_turned_duplicate_is_tombstoned_with_the_new_version(cluster, index):
    old = photo("p-1", updated=T0)
    duplicate = photo("p-1", status=PhotoStatus.DUPLICATE, updated=T0 + timedelta(seconds=1))
    assert run(index, record(1, "MODIFY", new=duplicate, old=old)) == []
    assert cluster.docs["owner-a#p-1"] == (1714564801000000, cluster.docs["owner-a#p-1"][1])
    assert cluster.docs["owner-a#p-1"][1]["deleted"] is True


def test_the_same_photo_twice_in_a_batch_sends_only_the_newest(cluster, index):
    first = photo("p-1", updated=T0)
    second = photo("p-1", updated=T0 + timedelta(seconds=1))
    assert run(index, record(1, "INSERT", new=first), record(2, "MODIFY", new=second, old=first)) == []
    ((lines),) = cluster.requests
    assert [line["index"]["version"] for line in lines[::2]] == [1714564801000000]


def test_a_throttled_item_fails_only_its_own_records(cluster, index):
    cluster.forced["owner-a#p-2"] = (429, "es_rejected_execution_exception")
    failures = run(
        index,
        record(1, "INSERT", new=photo("p-1")),
        record(2, "INSERT", new=photo("p-2")),
        record(3, "MODIFY", new=photo("p-2", updated=T0 + timedelta(seconds=1)), old=photo("p-2")),
        record(4, "INSERT", new=photo("p-3")),
    )
    assert failures == [f"{2:021d}", f"{3:021d}"]
    assert set(cluster.docs) == {"owner-a#p-1", "owner-a#p-3"}


def test_a_refused_document_fails_its_record_for_the_retry_limit_and_failure_destination(cluster, index):
    cluster.forced["owner-a#p-1"] = (400, "mapper_parsing_exception")
    assert run(index, record(1, "INSERT", new=photo("p-1")), record(2, "INSERT", new=photo("p-2"))) == [f"{1:021d}"]


def test_a_failed_bulk_request_fails_every_record_that_wrote(cluster, index):
    from opensearchpy.exceptions import ConnectionError

    cluster.fail_with = ConnectionError("N/A", "connection reset", None)
    failures = run(
        index,
        record(1, "INSERT", new=photo("p-1")),
        record(2, "INSERT", new=photo("p-0", status=PhotoStatus.PENDING_UPLOAD)),
        record(3, "INSERT", new=photo("p-3")),
    )
    assert failures == [f"{1:021d}", f"{3:021d}"]


def test_an_unreadable_record_fails_alone(cluster, index):
    broken = record(1, "INSERT", new=photo("p-1"))
    broken["dynamodb"]["NewImage"]["updated_at"] = {"S": "not a time"}
    assert run(index, broken, record(2, "INSERT", new=photo("p-2"))) == [f"{1:021d}"]
    assert set(cluster.docs) == {"owner-a#p-2"}


def test_records_from_a_real_table_stream_are_indexed(aws_env, cluster, index):
    """The records moto's DynamoDB stream produces for the real metadata adapter's writes."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    stream_arn = dynamodb.create_table(**table_definition(TABLE))["TableDescription"]["LatestStreamArn"]
    store = DynamoDbMetadataStore(TABLE)
    pending = photo("p-1", status=PhotoStatus.PENDING_UPLOAD)
    store.create_photo(pending, pending_ttl=timedelta(days=36500))  # T0 is in the past
    store.finish_photo(photo("p-1", updated=T0 + timedelta(seconds=3)), expected_status=PhotoStatus.PENDING_UPLOAD)
    store.delete_photo(OWNER, "p-1")

    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    for each in records:  # the Lambda event carries epoch seconds and the stream ARN
        created = each["dynamodb"].get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            each["dynamodb"]["ApproximateCreationDateTime"] = created.timestamp()
        each["eventSourceARN"] = stream_arn
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]

    assert run(index, *records) == []
    ((lines),) = cluster.requests
    # Pending INSERT: nothing. READY MODIFY, then REMOVE in the same batch: only the newest write, the tombstone.
    assert [(line["index"]["_id"], line["index"]["version"]) for line in lines[::2]] == [
        ("owner-a#p-1", 1714564803000000)
    ]
    assert lines[1]["deleted"] is True


class ClusterWithQueries(VersionedCluster):
    """delete_by_query as OpenSearch answers it (the recorded response shape), deleting the routed owner's live
    documents; tombstones stay."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[dict[str, Any]] = []
        self.query_fails_with: Exception | None = None

    def delete_by_query(self, *, index: Any, body: Any, params: Any = None) -> dict[str, Any]:
        self.queries.append({"index": index, "body": body, "params": params})
        if self.query_fails_with is not None:
            raise self.query_fails_with
        owner = params["routing"]
        live = [d for d, (_, source) in self.docs.items() if source.get("owner") == owner and not source.get("deleted")]
        for doc_id in live:
            del self.docs[doc_id]
        return {"took": 3, "timed_out": False, "total": len(live), "deleted": len(live), "batches": 1,
                "version_conflicts": 0, "noops": 0, "failures": []}


def erasure_mark(sequence: int, name: str, owner: str = OWNER) -> dict:
    """The erasure mark's stream record: INSERT when DELETE /account starts, REMOVE when it finished."""
    item = {"PK": {"S": f"OWNER#{owner}"}, "SK": {"S": "SETTINGS#erasure"}}
    image = {**item, "entity": {"S": "settings"}, "started_at": {"S": T0.isoformat()}}
    return {"eventID": f"event-{sequence}", "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1", "eventSourceARN": STREAM_ARN,
            "dynamodb": {"Keys": item, "SequenceNumber": f"{sequence:021d}", "SizeBytes": 80,
                         "StreamViewType": "NEW_AND_OLD_IMAGES",
                         **({"OldImage": image} if name == "REMOVE" else {"NewImage": image})}}


def test_a_finished_erasure_deletes_the_owners_documents_left_in_the_index_and_keeps_tombstones():
    """A document whose photo's REMOVE record never reached the index (lost past the retries) goes when the
    erasure mark's REMOVE arrives; the batch's own tombstones are written first; another owner's stay."""
    cluster = ClusterWithQueries()
    index = OpenSearchIndex("search.example", region="us-east-1", client_factory=lambda: cluster, clock=lambda: T0)
    other = photo("p-9").model_copy(update={"owner": "owner-b"})
    assert run(index, record(1, "INSERT", new=photo("p-lost")), record(2, "INSERT", new=photo("p-1")),
               record(3, "INSERT", new=other)) == []

    assert run(index, erasure_mark(4, "INSERT"), record(5, "REMOVE", old=photo("p-1")), erasure_mark(6, "REMOVE")) == []

    assert [q["params"] for q in cluster.queries] == [{"conflicts": "proceed", "routing": OWNER}]
    assert "owner-a#p-lost" not in cluster.docs, "the document nobody else would have removed"
    assert cluster.docs["owner-a#p-1"][1]["deleted"] is True, "the tombstone stays"
    assert "owner-b#p-9" in cluster.docs


def test_a_failed_delete_by_query_fails_the_erasure_marks_record_for_a_retry():
    from opensearchpy.exceptions import ConnectionError

    cluster = ClusterWithQueries()
    cluster.query_fails_with = ConnectionError("N/A", "connection reset", None)
    index = OpenSearchIndex("search.example", region="us-east-1", client_factory=lambda: cluster, clock=lambda: T0)
    assert run(index, record(1, "INSERT", new=photo("p-1")), erasure_mark(2, "REMOVE")) == [f"{2:021d}"]
