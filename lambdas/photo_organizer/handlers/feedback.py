"""The feedback Lambda: the table stream's new FEEDBACK# items -> the dataset bucket, and the retraining trigger.

Parse -> bootstrap -> service: the stream mapping's filter passes INSERTs of `entity = feedback` items only;
bootstrap's FeedbackStreamRecorder (services.retraining_trigger) appends the batch's lines (one part per owner and
date, named by the batch's first-last sequence numbers) and counts them towards the next retraining run. The filter
also passes the REMOVE of an owner's erasure mark: the owner's training data then goes (dataset lines, run files and
models). A failed write
raises: Lambda retries the batch (bisecting), then sends its coordinates to the failure queue. A failed trigger
does not: the events are recorded, the next batch tries the start again (the metric shows it).
"""

from __future__ import annotations

import functools
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from photo_organizer import bootstrap
from photo_organizer.handlers.logs import route_package_logs
from photo_organizer.handlers.metrics import count, metrics
from photo_organizer.services.retraining_trigger import FeedbackStreamRecorder, RecordingOutcome

logger = Logger(service="photo-organizer")
route_package_logs(logger)
tracer = Tracer(service="photo-organizer")


def process(event: dict[str, Any], recorder: FeedbackStreamRecorder) -> dict[str, Any]:
    outcome: RecordingOutcome = recorder.record_batch(event.get("Records") or [])
    count("FeedbackRecorded", outcome.recorded)
    if outcome.trigger_error:
        count("RetrainingTriggerFailed")
    if outcome.erased:
        count("TrainingDataErased", len(outcome.erased))
        remaining = sum(len(e.remaining) for e in outcome.erased)
        if remaining:  # files naming an erased owner that could not be stripped: an operator looks (alarmable)
            count("ErasureRemainingFiles", remaining)
        logger.info("erased owners' training data", extra={
            "owners": len(outcome.erased), "dataset_lines": sum(e.dataset_lines for e in outcome.erased),
            "model_entries": sum(e.model_entries for e in outcome.erased), "remaining_files": remaining})
    if outcome.trigger and outcome.trigger.started:
        count("RetrainingStarted")
        logger.info("retraining started", extra={"execution": outcome.trigger.started})
    return {
        "recorded": outcome.recorded,
        "skipped": outcome.skipped,
        "part": outcome.part,
        "pending": outcome.trigger.pending if outcome.trigger else None,
        "started": outcome.trigger.started if outcome.trigger else None,
        "reason": outcome.trigger.reason if outcome.trigger else outcome.trigger_error,
        "erased": [asdict(e) for e in outcome.erased],
    }


@functools.cache
def _recorder() -> FeedbackStreamRecorder:
    return bootstrap.feedback_recorder()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return process(event, _recorder())
