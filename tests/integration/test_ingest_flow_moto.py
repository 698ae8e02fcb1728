"""The AWS backend end to end under moto: API handler → presigned POST to S3 → EventBridge/SQS event →
ingest handler → DynamoDB, then delete. moto does not enforce POST policies (the local gateway test does)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import requests

from photo_organizer import bootstrap
from photo_organizer.adapters.aws.dynamodb_metadata import table_definition
from photo_organizer.errors import StorageUnavailableError
from photo_organizer.local_stack.events import (
    LambdaContextStub,
    http_api_event,
    object_created_event,
    sqs_event,
    sqs_record,
)
from photo_organizer.settings import Backend, Settings

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
OWNER = "3f1c2b7e-0000-4000-8000-00000000a11c"
ORIGINALS, DERIVATIVES, TABLE = "po-originals", "po-derivatives", "po-table"


@pytest.fixture
def aws_backend(aws_env):
    s3 = boto3.client("s3", region_name="us-east-1")
    for bucket in (ORIGINALS, DERIVATIVES):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=ORIGINALS, VersioningConfiguration={"Status": "Enabled"})
    boto3.client("dynamodb", region_name="us-east-1").create_table(**table_definition(TABLE))
    settings = Settings(
        backend=Backend.AWS,
        originals_bucket=ORIGINALS,
        derivatives_bucket=DERIVATIVES,
        table_name=TABLE,
        region="us-east-1",
        face_collection_prefix="po-faces",
    )
    services = bootstrap.build_services(settings)
    bootstrap.use_services(services)
    yield services
    bootstrap.use_services(None)


def call_api(method: str, path: str, body: dict | None = None, owner: str = OWNER,
             query: list[tuple[str, str]] | None = None) -> tuple[int, dict]:
    from photo_organizer.handlers import api

    event = http_api_event(
        method=method,
        path=path,
        query=query,
        headers={"content-type": "application/json"},
        body=json.dumps(body).encode() if body is not None else b"",
        claims={"sub": owner, "token_use": "id"},
    )
    result = api.handler(event, LambdaContextStub())
    return result["statusCode"], json.loads(result["body"]) if result.get("body") else {}


def upload_through_presigned_post(name: str, content_type: str) -> tuple[str, dict]:
    data = (SAMPLES / name).read_bytes()
    status, ticket = call_api("POST", "/uploads", {"filename": name, "content_type": content_type, "size": len(data)})
    assert status == 201
    response = requests.post(ticket["url"], data=ticket["fields"], files={"file": (name, data, content_type)}, timeout=30)
    assert response.status_code in (200, 204), response.text
    return ticket["photo_id"], ticket


def notification_for(photo_id: str, owner: str = OWNER) -> dict:
    s3 = boto3.client("s3", region_name="us-east-1")
    key = f"originals/{owner}/{photo_id}"
    head = s3.head_object(Bucket=ORIGINALS, Key=key)
    return object_created_event(
        ORIGINALS,
        key,
        size=head["ContentLength"],
        etag=head["ETag"].strip('"'),
        sequencer="0055AED6DCD90281E5",
        version=head.get("VersionId"),
    )


def run_ingest(*bodies: str) -> tuple[list[str], dict]:
    from photo_organizer.handlers import ingest

    records = [sqs_record(body) for body in bodies]
    response = ingest.handler(sqs_event(records), LambdaContextStub())
    return [r["messageId"] for r in records], response


def photo_item(photo_id: str, owner: str = OWNER) -> dict | None:
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(TABLE)
    return table.get_item(Key={"PK": f"OWNER#{owner}", "SK": f"PHOTO#{photo_id}"}).get("Item")


def test_presigned_post_then_event_makes_the_dynamodb_record_ready(aws_backend):
    photo_id, ticket = upload_through_presigned_post("coffee_exif_gps.jpg", "image/jpeg")
    assert photo_item(photo_id)["status"] == "PENDING_UPLOAD"
    _, response = run_ingest(json.dumps(notification_for(photo_id)))
    assert response == {"batchItemFailures": []}
    item = photo_item(photo_id)
    assert item["status"] == "READY" and "expires_at" not in item
    s3 = boto3.client("s3", region_name="us-east-1")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=DERIVATIVES)["Contents"]}
    assert keys == {f"previews/{OWNER}/{photo_id}.jpg", f"thumbnails/{OWNER}/{photo_id}.webp"}
    status, detail = call_api("GET", f"/photos/{photo_id}")
    assert status == 200 and detail["camera_make"] and detail["urls"]["thumbnail"].startswith("https://")
    status, page = call_api("GET", "/photos")
    assert [p["photo_id"] for p in page["items"]] == [photo_id]


def test_the_scrubber_routes_month_summary_and_listing_before_an_instant(aws_backend):
    photo_id, _ = upload_through_presigned_post("rocket.jpg", "image/jpeg")
    run_ingest(json.dumps(notification_for(photo_id)))
    _, page = call_api("GET", "/photos")
    stamp = page["items"][0]["taken_at"] or page["items"][0]["uploaded_at"]

    status, months = call_api("GET", "/photos/months")
    assert status == 200 and months == {"months": [{"month": stamp[:7], "count": 1}]}
    assert call_api("GET", "/photos/months", owner="someone-else") == (200, {"months": []})
    _, at = call_api("GET", "/photos", query=[("before", stamp)])
    assert [p["photo_id"] for p in at["items"]] == [photo_id]
    _, earlier = call_api("GET", "/photos", query=[("before", "1999-12-31")])
    assert earlier["items"] == [] and earlier.get("next_cursor") is None
    status, _ = call_api("GET", "/photos", query=[("before", "not-a-date")])
    assert status in (400, 422)


def test_repeated_event_is_processed_once(aws_backend):
    photo_id, _ = upload_through_presigned_post("rocket.jpg", "image/jpeg")
    body = json.dumps(notification_for(photo_id))
    run_ingest(body)
    first = photo_item(photo_id)
    _, response = run_ingest(body)
    assert response == {"batchItemFailures": []}
    assert photo_item(photo_id) == first, "a repeated event must not rewrite the record"


def test_poison_message_fails_alone_and_the_rest_of_the_batch_succeeds(aws_backend):
    photo_id, _ = upload_through_presigned_post("chelsea.png", "image/png")
    ids, response = run_ingest("this is not an S3 notification", json.dumps(notification_for(photo_id)))
    assert response == {"batchItemFailures": [{"itemIdentifier": ids[0]}]}
    assert photo_item(photo_id)["status"] == "READY"


def test_storage_outage_is_a_retryable_item_failure_and_the_photo_stays_pending(aws_backend, monkeypatch):
    photo_id, _ = upload_through_presigned_post("astronaut.png", "image/png")

    def unavailable(*args, **kwargs):
        raise StorageUnavailableError("SlowDown")

    monkeypatch.setattr(aws_backend.originals, "get", unavailable)
    ids, response = run_ingest(json.dumps(notification_for(photo_id)))
    assert response == {"batchItemFailures": [{"itemIdentifier": ids[0]}]}
    assert photo_item(photo_id)["status"] == "PENDING_UPLOAD"


def test_rejected_upload_records_reason_and_removes_every_version(aws_backend):
    s3 = boto3.client("s3", region_name="us-east-1")
    status, ticket = call_api("POST", "/uploads", {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10})
    requests.post(ticket["url"], data=ticket["fields"], files={"file": ("a.jpg", b"<svg></svg>", "image/jpeg")}, timeout=30)
    photo_id = ticket["photo_id"]
    run_ingest(json.dumps(notification_for(photo_id)))
    item = photo_item(photo_id)
    assert item["status"] == "REJECTED" and item["rejection_reason"] == "unsupported_format"
    versions = s3.list_object_versions(Bucket=ORIGINALS, Prefix=f"originals/{OWNER}/{photo_id}")
    assert not versions.get("Versions") and not versions.get("DeleteMarkers")


def test_delete_leaves_no_object_version_and_no_record(aws_backend):
    photo_id, _ = upload_through_presigned_post("obama.jpg", "image/jpeg")
    run_ingest(json.dumps(notification_for(photo_id)))
    status, _ = call_api("DELETE", f"/photos/{photo_id}")
    assert status == 204
    s3 = boto3.client("s3", region_name="us-east-1")
    for bucket in (ORIGINALS, DERIVATIVES):
        listing = s3.list_object_versions(Bucket=bucket)
        assert not listing.get("Versions") and not listing.get("DeleteMarkers"), bucket
    items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=TABLE)["Items"]
    assert items == [], "photo record and content claim are both gone"


def test_another_owner_gets_404_for_the_photo(aws_backend):
    photo_id, _ = upload_through_presigned_post("rocket.jpg", "image/jpeg")
    run_ingest(json.dumps(notification_for(photo_id)))
    assert call_api("GET", f"/photos/{photo_id}", owner="someone-else")[0] == 404
    assert call_api("DELETE", f"/photos/{photo_id}", owner="someone-else")[0] == 404
    assert photo_item(photo_id)["status"] == "READY"


# ---- a presigned POST used again (issue 13) ---------------------------------------------------------------------
# S3's POST policy cannot make a URL single-use: every POST until it expires adds a version under the same key.
# moto does not enforce policies either, so these tests post twice as S3 would allow, and check the record side.


def _versions(photo_id: str) -> list[str]:
    s3 = boto3.client("s3", region_name="us-east-1")
    listed = s3.list_object_versions(Bucket=ORIGINALS, Prefix=f"originals/{OWNER}/{photo_id}")
    return [v["VersionId"] for v in (*listed.get("Versions", ()), *listed.get("DeleteMarkers", ()))]


def test_a_second_post_after_validation_is_removed_and_the_validated_version_kept(aws_backend):
    photo_id, ticket = upload_through_presigned_post("rocket.jpg", "image/jpeg")
    accepted_event = json.dumps(notification_for(photo_id))
    run_ingest(accepted_event)
    validated = photo_item(photo_id)["original_version"]
    stray = b"<html><script>alert(1)</script></html>"
    requests.post(ticket["url"], data=ticket["fields"], files={"file": ("rocket.jpg", stray, "image/jpeg")}, timeout=30)
    assert len(_versions(photo_id)) == 2
    _, response = run_ingest(json.dumps(notification_for(photo_id)))  # the event of the stray version
    assert response == {"batchItemFailures": []}
    assert _versions(photo_id) == [validated]
    run_ingest(accepted_event)  # the validated version's event again (at-least-once): nothing removed
    assert _versions(photo_id) == [validated] and photo_item(photo_id)["status"] == "READY"


def test_a_second_post_after_rejection_leaves_no_bytes(aws_backend):
    status, ticket = call_api("POST", "/uploads", {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10})
    requests.post(ticket["url"], data=ticket["fields"], files={"file": ("a.jpg", b"<svg></svg>", "image/jpeg")}, timeout=30)
    photo_id = ticket["photo_id"]
    run_ingest(json.dumps(notification_for(photo_id)))
    assert photo_item(photo_id)["status"] == "REJECTED" and _versions(photo_id) == []
    data = (SAMPLES / "rocket.jpg").read_bytes()
    requests.post(ticket["url"], data=ticket["fields"], files={"file": ("a.jpg", data, "image/jpeg")}, timeout=30)
    run_ingest(json.dumps(notification_for(photo_id)))
    assert _versions(photo_id) == [], "the bytes of a second upload to a rejected photo's URL must not stay"
    assert photo_item(photo_id)["status"] == "REJECTED"
