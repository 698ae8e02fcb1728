"""DynamoDB Streams (the photo table) -> OpenSearch, one bulk request per batch, with partial batch failures.

Per record: INSERT/MODIFY of a searchable photo writes its document; MODIFY/REMOVE of a photo that was
searchable writes a tombstone (version: the new image's, or for a REMOVE the old image's). Records of
other entities, and of photos that never were searchable (pending, rejected), write nothing.

The batch's writes are collapsed to the newest version per photo and sent in one bulk request. A record
fails (and Lambda retries from the lowest failed sequence number, bisecting, up to the retry limit, then the
failure destination) when its photo's write was throttled or refused, or when the whole bulk failed. A 409
from external versioning is success: the index already holds something newer.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from photo_organizer import bootstrap
from photo_organizer.handlers.logs import route_package_logs
from photo_organizer.errors import PermanentError, PhotoOrganizerError, RetryableError
from photo_organizer.search.documents import (
    SEARCHABLE_STATUS,
    deserialize_image,
    document_from_item,
    photo_key,
    removal_version,
    version_of,
)
from photo_organizer.search.writes import IndexWrite, SearchWriter, WriteOutcome

logger = Logger(service="photo-organizer")
route_package_logs(logger)
tracer = Tracer(service="photo-organizer")
metrics = Metrics(namespace="PhotoOrganizer", service="photo-organizer")
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


class IndexWriteFailed(PhotoOrganizerError):
    """This record's photo could not be written to the index in this batch."""


def plan_write(record: Mapping[str, Any]) -> IndexWrite | None:
    """The index write a raw stream record asks for, or None when it asks for nothing."""
    change = record.get("dynamodb") or {}
    old = deserialize_image(change["OldImage"]) if change.get("OldImage") else None
    new = deserialize_image(change["NewImage"]) if change.get("NewImage") else None
    was_searchable = old is not None and photo_key(old) is not None and old.get("status") == SEARCHABLE_STATUS
    if record.get("eventName") == "REMOVE":
        if not was_searchable:
            return None
        owner, photo_id = photo_key(old)  # type: ignore[misc]
        return IndexWrite(owner, photo_id, removal_version(old))  # type: ignore[arg-type]
    if new is None or photo_key(new) is None:
        return None
    document = document_from_item(new)
    if document is not None:
        return IndexWrite.of(document)
    if not was_searchable:
        return None  # pending -> rejected and the like: the index never held this photo
    owner, photo_id = photo_key(new)  # type: ignore[misc]
    return IndexWrite(owner, photo_id, version_of(new))


@dataclass
class BatchOutcome:
    """What happened to each record of one batch, by sequence number; the record handler replays it."""

    failures: dict[str, str] = field(default_factory=dict)

    def record_handler(self, record: DynamoDBRecord) -> str:
        sequence = record.dynamodb.sequence_number if record.dynamodb else None
        if sequence in self.failures:
            raise IndexWriteFailed(self.failures[sequence])
        return "ok"


def index_batch(records: Sequence[Mapping[str, Any]], index: SearchWriter) -> BatchOutcome:
    outcome = BatchOutcome()
    newest: dict[str, IndexWrite] = {}
    sequences_of: dict[str, list[str]] = {}
    for record in records:
        sequence = str((record.get("dynamodb") or {}).get("SequenceNumber", ""))
        try:
            write = plan_write(record)
        except (KeyError, TypeError, ValueError) as exc:  # a malformed image: a poison record, alone
            logger.exception("unreadable stream record", extra={"sequence_number": sequence})
            outcome.failures[sequence] = f"unreadable record: {exc!r}"[:300]
            continue
        if write is None:
            continue
        sequences_of.setdefault(write.doc_id, []).append(sequence)
        current = newest.get(write.doc_id)
        if current is None or write.version >= current.version:
            newest[write.doc_id] = write
    if not newest:
        return outcome
    try:
        results = index.write(list(newest.values()))
    except (RetryableError, PermanentError) as exc:
        logger.warning("bulk request failed", extra={"error": str(exc), "writes": len(newest)})
        metrics.add_metric(name="IndexBulkFailed", unit=MetricUnit.Count, value=1)
        for sequences in sequences_of.values():
            outcome.failures.update({s: str(exc)[:300] for s in sequences})
        return outcome
    for result in results:
        metrics.add_metric(name=f"Index_{result.outcome.value}", unit=MetricUnit.Count, value=1)
        if result.outcome in (WriteOutcome.RETRYABLE, WriteOutcome.FAILED):
            logger.warning(
                "index write failed",
                extra={"doc_id": result.write.doc_id, "outcome": result.outcome.value, "reason": result.reason},
            )
            outcome.failures.update({s: result.reason for s in sequences_of[result.write.doc_id]})
    return outcome


def process(event: dict, context: LambdaContext | None, index: SearchWriter) -> dict:
    outcome = index_batch(event.get("Records") or [], index)
    return process_partial_response(
        event=event, record_handler=outcome.record_handler, processor=processor, context=context
    )


@functools.cache
def _index() -> SearchWriter:
    return bootstrap.stream_index()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return process(event, context, _index())
