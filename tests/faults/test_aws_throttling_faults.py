"""Throttling on every AWS call the product makes in a photo's life (upload, ingest, list, months, detail, delete),
under moto, through the API and ingest handlers. For each call, the step that makes it is run once with that call
throttled: the product answers retryable (API 503 / the message stays queued, not dead-lettered), the step is
repeated (the client's retry / SQS's redelivery) and completes; the audit then finds nothing lost or doubled."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from photo_organizer.local_stack.events import LambdaContextStub, http_api_event

from aws_faults import KMS_DENIED, THROTTLES, AwsCalls, Fault
from fault_library import OWNER

# Every call of the journey below, as recorded (test_the_journey_makes_exactly_these_calls keeps it current: a new
# call in the product fails that test until it is listed here, and so gets its own throttling case).
JOURNEY_CALLS = [
    ("dynamodb", "DeleteItem"),
    ("dynamodb", "GetItem"),
    ("dynamodb", "PutItem"),
    ("dynamodb", "Query"),
    ("dynamodb", "UpdateItem"),
    ("s3", "DeleteObjects"),
    ("s3", "GetObject"),
    ("s3", "ListObjectVersions"),
    ("s3", "PutObject"),
]


def call_api(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    from photo_organizer.handlers import api

    event = http_api_event(method=method, path=path, headers={"content-type": "application/json"},
                           body=json.dumps(body).encode() if body is not None else b"",
                           claims={"sub": OWNER, "token_use": "id"})
    result = api.handler(event, LambdaContextStub())
    return result["statusCode"], json.loads(result["body"]) if result.get("body") else {}


def retried(calls: AwsCalls, step, *, ok) -> object:
    """Runs a step; if the armed fault fired, the answer must be retryable, then the step runs again unfaulted."""
    first = step()
    if calls.fault is not None and calls.fault.fired:
        assert not ok(first), f"{calls.fault.operation} throttled, yet the step reported success: {first}"
        calls.fault = None
        first = step()
    assert ok(first), first
    return first


def journey(library, calls: AwsCalls) -> dict[str, int]:
    """A photo's life, each step retried as its caller would. Returns how often the armed fault fired per step."""
    fired: dict[str, int] = {}
    calls.seen.clear()  # the fixture's setup calls are not the product's

    def note(step: str) -> None:
        if calls.fault is not None and calls.fault.fired and step not in fired:
            fired[step] = calls.fault.fired

    # 1. POST /uploads (the client retries a 503). The bytes then go up with a second ticket made unfaulted (the
    # browser's POST to S3 is not a call of the product).
    retried(calls, lambda: call_api("POST", "/uploads", {"filename": "rocket.jpg", "content_type": "image/jpeg",
                                                         "size": 112525}), ok=lambda r: r[0] == 201)
    note("upload")
    calls.paused = True
    photo_id, event = library.start_upload("rocket.jpg")
    calls.paused = False
    # 2. The event: one delivery under the fault, then SQS redelivers.
    library.queue.send(event)
    library.queue.run_once()
    note("ingest")
    if calls.fault is not None and calls.fault.fired:
        assert library.queue.depth() == 1 and library.queue.dead_letters() == [], "a throttle must be retried"
        assert library.status(photo_id) == "PENDING_UPLOAD"
        calls.fault = None
    library.drain()
    assert library.status(photo_id) == "READY"
    # 3. Reads the app makes.
    for path in ("/photos", "/photos/months", f"/photos/{photo_id}"):
        retried(calls, lambda path=path: call_api("GET", path), ok=lambda r: r[0] == 200)
        note(path)
    # 4. Delete (the client retries a 503 until 204; a repeated delete after success would be 404).
    retried(calls, lambda: call_api("DELETE", f"/photos/{photo_id}"), ok=lambda r: r[0] == 204)
    note("delete")
    library.drain()
    return fired


@pytest.fixture
def calls(aws_env) -> Iterator[AwsCalls]:
    installed = AwsCalls().install()
    yield installed
    installed.uninstall()


def test_the_journey_makes_exactly_these_calls(calls, aws_library):
    journey(aws_library, calls)
    print(calls.distinct())
    assert calls.distinct() == JOURNEY_CALLS
    aws_library.assert_clean(ready=0)
    # the pending record of the first ticket (never uploaded) is all that remains
    assert aws_library.audit().records == {"PENDING_UPLOAD": 1}


CASES = [
    (service, operation, *THROTTLES[service][i % len(THROTTLES[service])])
    for i, (service, operation) in enumerate(JOURNEY_CALLS)
]


@pytest.mark.parametrize(("service", "operation", "code", "status", "message"), CASES,
                         ids=[f"{s}.{o}.{c}" for s, o, c, _, _ in CASES])
def test_a_throttled_call_is_retried_and_the_journey_completes(calls, aws_library, service, operation, code, status,
                                                               message):
    calls.fault = fault = Fault(service, operation, code, status, message)
    journey(aws_library, calls)
    assert fault.fired, f"{service}.{operation} was never throttled: the journey no longer makes it"
    aws_library.assert_clean(ready=0)
    assert aws_library.audit().records == {"PENDING_UPLOAD": 1}


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
