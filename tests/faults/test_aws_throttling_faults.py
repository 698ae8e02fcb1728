"""Throttling in a photo's life (upload, ingest, list, months, detail, delete) under moto, through the API and
ingest handlers: each call site the journey makes (throttling.COVERAGE["upload/ingest"]) is throttled once, the
step that makes it ends retried or retryable (API 503 / the message stays queued, not dead-lettered), the caller
repeats it and it completes; the audit then finds nothing lost or doubled. Also KMS access denied on S3 and on
the table (a clear permanent error, nothing half-written)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from aws_faults import KMS_DENIED, AwsCalls, Fault, throttle
from throttling import OK, RETRY, Caller, Outcome, api_outcome, call_api, covers

JOURNEY_SITES = covers(
    "upload/ingest",
    "dynamodb_analysis:dynamodb.GetItem",
    "dynamodb_analysis:dynamodb.UpdateItem",
    "dynamodb_feedback:dynamodb.GetItem",
    "dynamodb_feedback:dynamodb.Query",
    "dynamodb_feedback:dynamodb.UpdateItem",
    "dynamodb_metadata:dynamodb.DeleteItem",
    "dynamodb_metadata:dynamodb.GetItem",
    "dynamodb_metadata:dynamodb.PutItem",
    "dynamodb_metadata:dynamodb.Query",
    "dynamodb_people:dynamodb.GetItem",
    "dynamodb_people:dynamodb.Query",
    "s3_blobs:s3.DeleteObjects",
    "s3_blobs:s3.GetObject",
    "s3_blobs:s3.ListObjectVersions",
    "s3_blobs:s3.PutObject",
)


def journey(library, calls: AwsCalls) -> Caller:
    """A photo's life, each step run as its caller runs it (the client retries a 503, SQS redelivers)."""
    caller = Caller(calls)
    calls.seen.clear()  # the fixture's setup calls are not the product's
    calls.sites.clear()
    # 1. POST /uploads. The bytes then go up with a second ticket made unfaulted (the browser's POST to S3 is not
    # a call of the product).
    caller.step("upload", lambda: api_outcome(call_api("POST", "/uploads", {
        "filename": "rocket.jpg", "content_type": "image/jpeg", "size": 112525})))
    calls.paused = True
    photo_id, event = library.start_upload("rocket.jpg")
    calls.paused = False
    # 2. The event: a delivery that fails leaves the message queued for SQS to deliver again.
    library.queue.send(event)

    def deliver() -> Outcome:
        library.queue.run_once()
        assert library.queue.dead_letters() == [], "a throttle must be retried, never dead-lettered"
        if library.queue.depth():
            assert library.status(photo_id) == "PENDING_UPLOAD"
            return Outcome(RETRY)
        return Outcome(OK)

    caller.step("ingest", deliver)
    library.drain()
    assert library.status(photo_id) == "READY"
    # 3. Reads the app makes.
    for path in ("/photos", "/photos/months", f"/photos/{photo_id}"):
        caller.step(path, lambda path=path: api_outcome(call_api("GET", path)))
    # 4. Delete (the client retries a 503 until 204; a repeated delete after success would be 404).
    caller.step("delete", lambda: api_outcome(call_api("DELETE", f"/photos/{photo_id}")))
    library.drain()
    return caller


def test_the_journey_makes_exactly_these_calls(calls, aws_library):
    journey(aws_library, calls)
    assert sorted(set(calls.sites)) == sorted(JOURNEY_SITES)
    aws_library.assert_clean(ready=0)
    # the pending record of the first ticket (never uploaded) is all that remains
    assert aws_library.audit().records == {"PENDING_UPLOAD": 1}


@pytest.mark.parametrize("site", JOURNEY_SITES, ids=str)
def test_a_throttled_call_is_retried_and_the_journey_completes(calls, aws_library, site):
    calls.fault = fault = throttle(site.service, site.operation, module=site.module)
    journey(aws_library, calls)
    assert fault.fired, f"{site} was never throttled: the journey no longer makes it"
    aws_library.assert_clean(ready=0)
    assert aws_library.audit().records == {"PENDING_UPLOAD": 1}


REJECTION_SITES = covers("upload/ingest", "s3_blobs:s3.CopyObject", "s3_blobs:s3.HeadObject")


@pytest.mark.parametrize("action", ["quarantine", "delete"])
@pytest.mark.parametrize("operation", ["CopyObject", "HeadObject", "ListObjectVersions", "DeleteObjects"])
def test_a_throttle_while_rejecting_a_file_leaves_no_bytes_after_the_redelivery(calls, aws_library, action,
                                                                              operation):
    """The record says REJECTED first, then the bytes go (moved to quarantine/ or deleted): a throttle between the
    two must not leave the refused bytes under the originals key once SQS delivered the event again."""
    from photo_organizer.settings import RejectedAction

    if action == "delete" and operation in ("CopyObject", "HeadObject"):
        pytest.skip("deleting makes no copy")
    aws_library.services.ingest.settings = dataclasses.replace(aws_library.services.ingest.settings,
                                                               rejected_action=RejectedAction(action))
    photo_id, event = aws_library.start_upload("rocket.jpg", data=b"\xff\xd8\xff not a jpeg at all")
    calls.fault = fault = throttle("s3", operation, module="s3_blobs")
    if operation == "HeadObject":  # asked only by a redelivery after an interrupted move: interrupt one first
        calls.fault = Fault("s3", "CopyObject", "SlowDown", 503, "Please reduce your request rate.", times=1)
        aws_library.queue.send(event)
        aws_library.queue.run_once()
        calls.fault = fault
    aws_library.queue.send(event)
    aws_library.drain()
    assert fault.fired and aws_library.queue.dead_letters() == []
    assert aws_library.status(photo_id) == "REJECTED"
    report = aws_library.assert_clean(ready=0)
    assert report.records == {"REJECTED": 1}
    assert report.blobs == (1 if action == "quarantine" else 0), "only the quarantine copy, when quarantining"


@pytest.mark.parametrize(("operation", "skip"), [("GetObject", 0), ("PutObject", 0), ("PutObject", 1)],
                         ids=["original", "preview", "thumbnail-after-preview"])
def test_kms_access_denied_on_s3_is_a_clear_permanent_error_with_nothing_half_written(calls, aws_library, operation,
                                                                                     skip):
    photo_id, event = aws_library.start_upload("coffee_exif_gps.jpg")
    code, status, message = KMS_DENIED["s3"]
    calls.fault = Fault("s3", operation, code, status, message, skip=skip)
    aws_library.queue.send(event)
    aws_library.drain()
    # Every delivery refused the same way; the message ends in the dead-letter queue, the photo stays pending and
    # nothing derived stays behind (the preview written before a refused thumbnail is taken back).
    assert calls.fault.fired >= 4
    assert aws_library.queue.dead_letters() and aws_library.status(photo_id) == "PENDING_UPLOAD"
    assert aws_library.audit().clean, aws_library.audit().lines()
    # The key policy is fixed; the dead letter is redriven and the photo completes.
    calls.fault = None
    aws_library.queue.send(aws_library.queue.dead_letters()[0]["body"])
    aws_library.drain()
    assert aws_library.status(photo_id) == "READY"
    aws_library.assert_clean(ready=1)


def test_kms_access_denied_on_the_table_is_a_clear_error_and_the_api_says_nothing_internal(calls, aws_library):
    code, status, message = KMS_DENIED["dynamodb"]
    calls.fault = Fault("dynamodb", "PutItem", code, status, message)
    status_code, body = call_api("POST", "/uploads", {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10})
    assert (status_code, body["code"]) == (500, "misconfigured") and "kms" not in json.dumps(body).lower() and "arn:" not in json.dumps(body)
    assert aws_library.audit().records == {}
    aws_library.assert_clean(ready=0)
