"""Object-created notifications (S3 → EventBridge → SQS) into the ingest service, with partial batch failures.

A retryable error fails only its own message (SQS redelivers it, then the DLQ takes it); a permanent problem
with the file is recorded on the photo by the service and the message succeeds; a message that is not an
Object Created notification at all is a poison message and fails alone.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from photo_organizer.bootstrap import services
from photo_organizer.handlers.logs import route_package_logs
from photo_organizer.handlers.metrics import count, metrics
from photo_organizer.services.ingest import ObjectCreated

logger = Logger(service="photo-organizer")
route_package_logs(logger)
tracer = Tracer(service="photo-organizer")
# Report every failed record, even when all failed, rather than raising: the outcome is the same for SQS and
# the invocation stays readable in the logs.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def parse_object_created(body: str) -> ObjectCreated:
    notification = S3EventNotificationEventBridgeModel.model_validate_json(body)
    detail = notification.detail
    return ObjectCreated(
        bucket=detail.bucket.name,
        key=detail.object.key,
        size=int(detail.object.size) if detail.object.size is not None else None,
        # S3 reports "null" as the version of an object written while versioning was off.
        version=detail.object.version_id if detail.object.version_id not in (None, "", "null") else None,
        sequencer=detail.object.sequencer,
    )


@tracer.capture_method
def record_handler(record: SQSRecord) -> str:
    event = parse_object_created(record.body)
    outcome = services().ingest.process(event)
    count(f"Ingest_{outcome.value}")
    return outcome.value


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
