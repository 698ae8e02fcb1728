"""DynamoDB Streams (the photo table) -> OpenSearch, one bulk request per batch, with partial batch failures.

Parse -> bootstrap -> service -> answer: bootstrap's StreamIndexer (services.indexing) plans each record (an
INSERT/MODIFY of a searchable photo writes its document; a MODIFY/REMOVE of a photo that was searchable writes a
tombstone; anything else writes nothing) and sends the batch; this handler reports its metrics and failures.

The batch's writes are collapsed to the newest version per photo and sent in one bulk request. A record
fails (and Lambda retries from the lowest failed sequence number, bisecting, up to the retry limit, then the
failure destination) when its photo's write was throttled or refused, or when the whole bulk failed. A 409
from external versioning is success: the index already holds something newer.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from photo_organizer import bootstrap
from photo_organizer.errors import PhotoOrganizerError
from photo_organizer.handlers.logs import route_package_logs
from photo_organizer.handlers.metrics import count, metrics
from photo_organizer.services.indexing import BatchOutcome, StreamIndexer

logger = Logger(service="photo-organizer")
route_package_logs(logger)
tracer = Tracer(service="photo-organizer")
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


class IndexWriteFailed(PhotoOrganizerError):
    """This record's photo could not be written to the index in this batch."""


def record_handler(outcome: BatchOutcome):
    """Replays the batch's outcome record by record, for Powertools' partial batch response."""

    def handle(record: DynamoDBRecord) -> str:
        sequence = record.dynamodb.sequence_number if record.dynamodb else None
        if sequence in outcome.failures:
            raise IndexWriteFailed(outcome.failures[sequence])
        return "ok"

    return handle


def process(event: dict[str, Any], context: LambdaContext | None, indexer: StreamIndexer) -> dict:
    outcome = indexer.index_batch(event.get("Records") or [])
    if outcome.bulk_failed:
        count("IndexBulkFailed")
    for result in outcome.results:
        count(f"Index_{result.outcome.value}")
    return process_partial_response(
        event=event, record_handler=record_handler(outcome), processor=processor, context=context
    )


@functools.cache
def _indexer() -> StreamIndexer:
    return bootstrap.stream_indexer()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return process(event, context, _indexer())
