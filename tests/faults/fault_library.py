"""The fault suite's libraries: the same driver over both backends, each ending with the library audit.

`local`: the local backend as the server wires it (SQLite records, files on disk, the tantivy index written through
the search service). `aws`: the cloud adapters under moto (S3 versioned buckets, the DynamoDB table with its
stream) and an OpenSearch stand-in that answers bulk requests with external versioning; the table's stream is
pumped through the real stream indexer after each drain, as Lambda would. Both feed events through the durable
SQS stand-in (LocalEventQueue: partial batch failures, redelivery, dead letters) into the unchanged ingest handler.

Faults come from the local adapters' own injection points and from botocore `before-call` hooks (`aws_faults`).
A `before-call` answer skips botocore's own retries: what the product sees is what it would see once the SDK's
retries are spent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from photo_organizer import bootstrap
from photo_organizer.local_stack.events import object_created_event
from photo_organizer.local_stack.queue import LocalEventQueue

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
OWNER = "0f000000-0000-4000-8000-00000000fa17"
OTHER = "0f000000-0000-4000-8000-0000000000b2"
REGION = "us-east-1"
ORIGINALS, DERIVATIVES, TABLE = "po-faults-originals", "po-faults-derivatives", "po-faults-table"
# Small samples: a fault case derives a handful of photos, not megapixels.
SMALL = ("rocket.jpg", "coffee_exif_gps.jpg", "text.png", "obama2.jpg")
TYPES = {".jpg": "image/jpeg", ".png": "image/png"}


class OpenSearchStandIn:
    """Bulk requests answered like OpenSearch with `version_type=external` (a version not strictly newer is a 409;
    tombstones with `external_gte`). `documents(owner)` is what the index holds live: what the audit reads."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[int, dict[str, Any]]] = {}
        self.down = False

    def bulk(self, *, body: str, index: Any = None, params: Any = None) -> dict[str, Any]:
        if self.down:
            from opensearchpy.exceptions import ConnectionError as OsConnectionError

            raise OsConnectionError("N/A", "connection refused", None)
        lines = [json.loads(line) for line in body.splitlines()]
        items = []
        for action, source in zip(lines[::2], lines[1::2]):
            meta = action["index"]
            doc_id, version = meta["_id"], meta["version"]
            stored = self.docs.get(doc_id, (None,))[0]
            gte = meta["version_type"] == "external_gte"
            if stored is not None and (stored > version or (stored == version and not gte)):
                items.append({"index": {"_id": doc_id, "status": 409, "error": {"type": "version_conflict_engine_exception"}}})
            else:
                self.docs[doc_id] = (version, source)
                items.append({"index": {"_id": doc_id, "_version": version, "result": "created", "status": 201}})
        return {"took": 1, "errors": any(i["index"]["status"] >= 300 for i in items), "items": items}

    def count(self, *, index: Any = None, body: Any = None, params: Any = None) -> dict[str, Any]:
        return {"count": len(self.live_versions((params or {}).get("routing", "")))}

    def delete_by_query(self, *, index: Any = None, body: Any = None, params: Any = None) -> dict[str, Any]:
        """Account erasure's forget_owner (routed to the owner): the owner's live documents go, tombstones stay."""
        owner = (params or {}).get("routing")
        gone = [doc_id for doc_id, (_, source) in self.docs.items()
                if owner and source["owner"] == owner and not source.get("deleted")]
        for doc_id in gone:
            del self.docs[doc_id]
        return {"deleted": len(gone)}

    def live_versions(self, owner: str) -> dict[str, int]:
        return {
            source["photo_id"]: version
            for version, source in self.docs.values()
            if source["owner"] == owner and not source.get("deleted")
        }


@dataclass
class Library:
    kind: str
    services: Any
    queue: LocalEventQueue
    after_drain: Callable[[], None] = lambda: None
    cluster: OpenSearchStandIn | None = None
    uploaded: dict[str, bytes] = field(default_factory=dict)

    def start_upload(self, sample: str, owner: str = OWNER, *, data: bytes | None = None) -> tuple[str, dict]:
        """POST /uploads's service, then the bytes into the originals store (a sample's, or `data` under the
        sample's name): returns the photo id and its event."""
        from photo_organizer.services.uploads import UploadRequest

        data = (SAMPLES / sample).read_bytes() if data is None else data
        content_type = TYPES[Path(sample).suffix]
        ticket = self.services.uploads.start(
            owner, UploadRequest(filename=sample, content_type=content_type, size=len(data))
        )
        key = f"originals/{owner}/{ticket.photo_id}"
        self.services.originals.put(key, data, content_type=content_type)
        version = self.services.originals.get(key).version if self.kind == "aws" else None
        event = object_created_event(
            ORIGINALS if self.kind == "aws" else "originals", key, size=len(data),
            etag=hashlib.md5(data, usedforsecurity=False).hexdigest(),
            sequencer=f"{datetime.now().timestamp() * 1e6:020.0f}", version=version,
        )
        self.uploaded[ticket.photo_id] = data
        return ticket.photo_id, event

    def upload(self, sample: str, owner: str = OWNER) -> str:
        photo_id, event = self.start_upload(sample, owner)
        self.queue.send(event)
        return photo_id

    def drain(self, rounds: int = 50) -> None:
        """Processes until nothing is left to receive (redeliveries included: the retry delay and the in-flight hold
        are 0 here, so a batch whose invocation died, as a killed process leaves it, is received again at once)."""
        for _ in range(rounds):
            if not self.queue.run_once():
                break
        self.after_drain()

    def status(self, photo_id: str, owner: str = OWNER) -> str | None:
        photo = self.services.metadata.get_photo(owner, photo_id)
        return photo.status.value if photo else None

    def audit(self, owner: str = OWNER):
        return self.services.library_audit.audit(owner)

    def assert_clean(self, owner: str = OWNER, *, ready: int | None = None):
        report = self.audit(owner)
        assert report.clean, report.lines()
        if ready is not None:
            assert report.records.get("READY", 0) == ready, dict(report.records)
            assert report.documents == ready
        return report


def local_library_in(tmp_path: Path) -> Iterator[Library]:
    from photo_organizer.handlers import ingest

    services = bootstrap.build_services(bootstrap.local_settings(tmp_path / "library"))
    # Embeddings are not what these faults are about; the MiniLM load would be most of the suite's time.
    services.search.embed = None
    bootstrap.use_services(services)
    queue = LocalEventQueue(
        tmp_path / "queue.sqlite3", ingest.handler, visibility_seconds=0, in_flight_seconds=0, max_receives=4
    )
    yield Library("local", services, queue)
    bootstrap.use_services(None)


def aws_library_in(tmp_path: Path) -> Iterator[Library]:
    import boto3

    from photo_organizer.adapters.aws.dynamodb_metadata import table_definition
    from photo_organizer.adapters.aws.opensearch_index import OpenSearchIndex
    from photo_organizer.handlers import indexer, ingest
    from photo_organizer.settings import Backend, Settings

    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (ORIGINALS, DERIVATIVES):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    description = boto3.client("dynamodb", region_name=REGION).create_table(**table_definition(TABLE))
    stream_arn = description["TableDescription"]["LatestStreamArn"]
    settings = Settings(backend=Backend.AWS, originals_bucket=ORIGINALS, derivatives_bucket=DERIVATIVES,
                        table_name=TABLE, region=REGION, face_collection_prefix="po-faults")
    services = bootstrap.build_services(settings)
    cluster = OpenSearchStandIn()
    index = OpenSearchIndex("search.example", region=REGION, client_factory=lambda: cluster)
    services.library_audit.indexed = cluster.live_versions
    bootstrap.use_services(services)
    stream_indexer = bootstrap.stream_indexer(index)
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    position = {"iterator": streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]}
    pending: list[dict] = []

    def pump_stream() -> None:
        """The stream's new records through the stream indexer; failed records are retried from the lowest
        failed one (as Lambda does with bisect off), until they pass."""
        response = streams.get_records(ShardIterator=position["iterator"])
        position["iterator"] = response["NextShardIterator"]
        for record in response["Records"]:
            created = record["dynamodb"].get("ApproximateCreationDateTime")
            if isinstance(created, datetime):
                record["dynamodb"]["ApproximateCreationDateTime"] = created.timestamp()
            record["eventSourceARN"] = stream_arn
            pending.append(record)
        while pending:
            failures = indexer.process({"Records": list(pending)}, None, stream_indexer)["batchItemFailures"]
            if not failures:
                pending.clear()
                return
            failed = {f["itemIdentifier"] for f in failures}
            first = next(i for i, r in enumerate(pending) if r["dynamodb"]["SequenceNumber"] in failed)
            del pending[:first]
            if cluster.down:
                return  # Lambda keeps the records and retries after the index is back

    queue = LocalEventQueue(
        tmp_path / "queue.sqlite3", ingest.handler, visibility_seconds=0, in_flight_seconds=0, max_receives=4
    )
    yield Library("aws", services, queue, after_drain=pump_stream, cluster=cluster)
    bootstrap.use_services(None)


