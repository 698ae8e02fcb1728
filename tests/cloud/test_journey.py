"""The journey through the deployed app, every hop driven by the templates: a user pool token -> POST /uploads ->
the browser's presigned POST to S3 -> S3's EventBridge event through the rule into the upload queue -> the validator
-> GET /photos -> the table's stream records -> the indexer (OpenSearch answered with recorded response shapes) ->
GET /search (recorded response shapes) -> people and consent -> DELETE leaves nothing. Every AWS call each function
made is checked against its role's synthesized statements; a refused call fails the test naming the statement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .rehearsal.journey import owner_of, upload, validate_all

pytestmark = pytest.mark.xdist_group("cloud")  # one worker builds the session's rehearsal

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "good" / "gps_exif.jpg"
NOT_AN_IMAGE = Path(__file__).resolve().parents[1] / "data" / "bad" / "plain.txt"


def _assert_allowed(rehearsal, *names: str) -> None:
    denied = {name: rehearsal.denials(rehearsal.function(name)) for name in names}
    assert {k: v for k, v in denied.items() if v} == {}, json.dumps(denied, indent=1)


@pytest.fixture(scope="module")
def uploaded(rehearsal):
    """ana's photo, uploaded, validated and indexed (the first half of the journey, shared by the tests below)."""
    token = rehearsal.sign_in("ana")
    photo_id = upload(rehearsal, token, SAMPLE.read_bytes(), filename=SAMPLE.name)
    validations = validate_all(rehearsal)
    indexing = rehearsal.poll_stream(rehearsal.function("Indexer"))
    return {"token": token, "photo_id": photo_id, "owner": owner_of(rehearsal, token), "validations": validations,
            "indexing": indexing}


def test_an_upload_through_the_presigned_post_is_validated_from_the_rules_queue_message(rehearsal, uploaded):
    assert len(uploaded["validations"]) == 1
    (validation,) = uploaded["validations"]
    assert validation.error is None and validation.result == {"batchItemFailures": []}
    status, page = rehearsal.http.request("GET", "/photos", token=uploaded["token"])
    assert status == 200
    assert [(p["photo_id"], p["status"]) for p in page["items"]] == [(uploaded["photo_id"], "READY")]
    derivatives = rehearsal.client("s3").list_objects_v2(Bucket=rehearsal.ref("storage", "Derivatives"))
    assert any(uploaded["photo_id"] in o["Key"] for o in derivatives.get("Contents", []))
    status, detail = rehearsal.http.request("GET", f"/photos/{uploaded['photo_id']}", token=uploaded["token"])
    assert status == 200, detail
    urls = detail.get("urls") or {}
    links = [urls.get(kind) for kind in ("thumbnail", "preview", "original")]
    assert all(links), urls
    assert [rehearsal.browser_get(url) for url in links] == [200, 200, 200]  # presigned with the role's session
    _assert_allowed(rehearsal, "Api", "Validator")


def test_a_heic_upload_is_decoded_by_the_bundled_pillow_heif(rehearsal):
    token = rehearsal.sign_in("heidi")
    heic = SAMPLE.parent / "coffee_gps.heic"
    photo_id = upload(rehearsal, token, heic.read_bytes(), filename=heic.name, content_type="image/heic")
    assert [i.result for i in validate_all(rehearsal)] == [{"batchItemFailures": []}]
    status, photo = rehearsal.http.request("GET", f"/photos/{photo_id}", token=token)
    assert (status, photo["status"]) == (200, "READY"), photo
    _assert_allowed(rehearsal, "Validator")


def test_the_upload_policy_pins_the_key_and_size_the_api_issued(rehearsal):
    token = rehearsal.sign_in("policy-reader")
    status, ticket = rehearsal.http.request("POST", "/uploads", token=token, body={
        "filename": "a.jpg", "content_type": "image/jpeg", "size": 1234})
    assert status == 201
    import base64

    policy = json.loads(base64.b64decode(ticket["fields"]["policy"]))  # moto does not enforce it: read it
    conditions = policy["conditions"]
    assert {"bucket": rehearsal.ref("storage", "Originals")} in conditions
    assert {"key": ticket["fields"]["key"]} in conditions
    assert ticket["fields"]["key"].startswith(f"originals/{owner_of(rehearsal, token)}/")
    assert ["content-length-range", 1, int(rehearsal.function("Api").environment["PO_MAX_UPLOAD_BYTES"])] in conditions


def test_the_indexer_writes_the_photo_from_the_stream_records_into_opensearch(rehearsal, uploaded):
    assert uploaded["indexing"] and all(i.error is None and i.result == {"batchItemFailures": []}
                                        for i in uploaded["indexing"])
    doc_id = f"{uploaded['owner']}#{uploaded['photo_id']}"
    bulk = [r for r in rehearsal.opensearch.requests_by(rehearsal.function("Indexer").access_keys)
            if r.path.endswith("/_bulk")]
    actions = [line for r in bulk for line in r.body if "index" in line]
    assert any(a["index"]["_id"] == doc_id and a["index"]["routing"] == uploaded["owner"]
               and a["index"]["version_type"] == "external" for a in actions)
    assert bulk[0].signed_service == "es"
    _assert_allowed(rehearsal, "Indexer")


def test_search_finds_the_photo_from_recorded_response_shapes_with_the_bundled_model(rehearsal, uploaded):
    # Only this search's requests: other tests of the session (other users) went through the same Api function.
    earlier = len(rehearsal.opensearch.requests_by(rehearsal.function("Api").access_keys))
    status, body = rehearsal.http.request("GET", "/search", token=uploaded["token"],
                                          query={"q": "a dog running on the beach"})
    assert status == 200, body
    assert [item["photo_id"] for item in body["items"]] == [uploaded["photo_id"]]
    # "on": the API's bundle carries the packed MiniLM model and embedded the query (hybrid msearch).
    assert body["semantic"] == "on"
    api_requests = rehearsal.opensearch.requests_by(rehearsal.function("Api").access_keys)[earlier:]
    assert api_requests and api_requests[-1].path.endswith("/_msearch")
    assert all(r.query.get("routing", [uploaded["owner"]]) == [uploaded["owner"]] for r in api_requests)
    _assert_allowed(rehearsal, "Api")


def test_consent_and_people_routes_answer_through_the_deployed_api(rehearsal, uploaded):
    token = uploaded["token"]
    status, consent = rehearsal.http.request("GET", "/settings/biometrics", token=token)
    assert status == 200, consent
    assert consent["biometric_consent"] is False  # the cloud's default
    status, consent = rehearsal.http.request("PUT", "/settings/biometrics", token=token,
                                             body={"biometric_consent": True})
    assert (status, consent["biometric_consent"]) == (200, True), consent
    status, people = rehearsal.http.request("GET", "/people", token=token)
    assert (status, people) == (200, [])
    status, missing = rehearsal.http.request("PATCH", "/people/nobody", token=token, body={"name": "Ana"})
    assert status == 404 and missing.get("code") == "not_found", missing
    _assert_allowed(rehearsal, "Api")


def test_delete_leaves_no_object_no_item_and_a_tombstone_in_the_index(rehearsal, uploaded):
    owner, photo_id, token = uploaded["owner"], uploaded["photo_id"], uploaded["token"]
    status, _ = rehearsal.http.request("DELETE", f"/photos/{photo_id}", token=token)
    assert status == 204
    s3 = rehearsal.client("s3")
    for concern in ("Originals", "Derivatives"):
        bucket = rehearsal.ref("storage", concern)
        listing = s3.list_object_versions(Bucket=bucket)
        left = [v["Key"] for v in listing.get("Versions", []) + listing.get("DeleteMarkers", []) if photo_id in v["Key"]]
        assert left == [], f"{concern}: {left}"
    table = rehearsal.ref("storage", "Table")
    items = rehearsal.client("dynamodb").scan(TableName=table)["Items"]
    assert [i for i in items if photo_id in json.dumps(i)] == []
    indexing = rehearsal.poll_stream(rehearsal.function("Indexer"))
    assert indexing and all(i.error is None for i in indexing)
    document = rehearsal.opensearch.documents[f"{owner}#{photo_id}"]
    assert document.source.get("deleted") is True
    assert rehearsal.http.request("GET", f"/photos/{photo_id}", token=token)[0] == 404
    _assert_allowed(rehearsal, "Api", "Indexer")


def test_a_poison_message_lands_in_the_dlq_after_the_templates_receive_count(rehearsal):
    sqs = rehearsal.client("sqs")
    queue, dlq = rehearsal.ref("ingest", "UploadEventsQueue"), rehearsal.ref("ingest", "UploadEventsDlq")
    max_receives = json.loads(sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["RedrivePolicy"])
                              ["Attributes"]["RedrivePolicy"])["maxReceiveCount"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"detail-type": "not an upload"}))
    validator = rehearsal.function("Validator")
    failures = 0
    while (invocation := rehearsal.poll_queue(validator, release_failures=True)) is not None:
        failures += len(invocation.result["batchItemFailures"])
        assert failures <= int(max_receives)
    assert failures == int(max_receives)
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"]) for m in dead] == [{"detail-type": "not an upload"}]
    for message in dead:
        sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
    _assert_allowed(rehearsal, "Validator")


def test_deleting_a_quarantined_upload_is_allowed_and_leaves_nothing(quarantine_rehearsal):
    """rejected_action=quarantine: the validator moves a rejected original under quarantine/; deleting that photo
    must be allowed to remove it there."""
    rehearsal = quarantine_rehearsal
    assert rehearsal.function("Validator").environment["PO_REJECTED_ACTION"] == "quarantine"
    token = rehearsal.sign_in("quinn")
    photo_id = upload(rehearsal, token, NOT_AN_IMAGE.read_bytes(), filename="holiday.jpg")
    (validation,) = validate_all(rehearsal)
    assert validation.result == {"batchItemFailures": []}
    status, photo = rehearsal.http.request("GET", f"/photos/{photo_id}", token=token)
    assert status == 200 and photo["status"] == "REJECTED", photo
    s3, bucket = rehearsal.client("s3"), rehearsal.ref("storage", "Originals")
    quarantined = [v["Key"] for v in s3.list_object_versions(Bucket=bucket, Prefix="quarantine/").get("Versions", [])
                   if photo_id in v["Key"]]
    assert quarantined, "the validator did not quarantine the rejected original"
    assert rehearsal.http.request("DELETE", f"/photos/{photo_id}", token=token)[0] == 204
    listing = s3.list_object_versions(Bucket=bucket)
    assert [v["Key"] for v in listing.get("Versions", []) + listing.get("DeleteMarkers", []) if photo_id in v["Key"]] == []
    _assert_allowed(rehearsal, "Api", "Validator")


def test_deploy_maps_the_indexer_to_a_writer_and_the_api_role_to_a_read_only_opensearch_role(rehearsal):
    """Fine-grained access control: without a mapping for the API role, OpenSearch refuses /search. Checked as the
    requests the deploy-time custom resources send (recorded response shapes answer them)."""
    responses = rehearsal.run_custom_resources()
    assert responses, "no deploy-time custom resource in the templates: nothing maps the API role in OpenSearch"
    assert all(r["Status"] == "SUCCESS" for r in responses.values()), responses
    requests = rehearsal.opensearch.requests
    mappings = {r.path.rsplit("/", 1)[-1]: r.body for r in requests
                if r.method == "PUT" and "/_plugins/_security/api/rolesmapping/" in r.path}
    roles = {r.path.rsplit("/", 1)[-1]: r.body for r in requests
             if r.method == "PUT" and "/_plugins/_security/api/roles/" in r.path}
    api_role, indexer_role = rehearsal.function("Api").role_arn, rehearsal.function("Indexer").role_arn
    readers = [name for name, body in mappings.items() if api_role in body.get("backend_roles", [])]
    writers = [name for name, body in mappings.items() if indexer_role in body.get("backend_roles", [])]
    assert readers, f"no OpenSearch role maps the API role {api_role}: /search would be refused"
    assert writers, f"no OpenSearch role maps the indexer role {indexer_role}"
    for name in readers:
        actions = [a for permission in roles[name].get("index_permissions", []) for a in permission["allowed_actions"]]
        assert actions and not [a for a in actions if "write" in a or a in ("crud", "indices_all", "*")], actions
    _assert_allowed(rehearsal, "SearchAccess")


def test_destroying_the_stacks_removes_the_opensearch_mappings_and_answers_cloudformation(rehearsal):
    """A custom resource that never answers holds a stack for an hour; Delete must answer SUCCESS and remove what
    Create made (requests checked; recorded response shapes answer them)."""
    created = rehearsal.run_custom_resources("Create")
    assert created, "no deploy-time custom resource in the templates"
    before = len(rehearsal.opensearch.requests)
    deleted = rehearsal.run_custom_resources("Delete")
    assert set(deleted) == set(created) and all(r["Status"] == "SUCCESS" for r in deleted.values()), deleted
    removed = {r.path.rsplit("/", 1)[-1] for r in rehearsal.opensearch.requests[before:]
               if r.method == "DELETE" and "/_plugins/_security/api/rolesmapping/" in r.path}
    opensearch = {logical for _, logical, r in rehearsal.assembly.resources() if r["Type"] == "Custom::OpenSearchAccess"}
    assert removed == {r["PhysicalResourceId"] for logical, r in created.items() if logical in opensearch}
    _assert_allowed(rehearsal, "SearchAccess")


def test_opting_out_of_face_grouping_deletes_the_face_collection_the_glue_jobs_fill(rehearsal):
    """Withdrawing biometric consent must delete the user's Rekognition collection: the one the Glue jobs write
    (their --collection-prefix from the template, then -<owner>), with a permission the API role holds. moto has no
    Rekognition collections (DeleteCollection answers 500 there): the rehearsal's Rekognition stand-in answers."""
    token = rehearsal.sign_in("olga")
    owner = owner_of(rehearsal, token)
    assert rehearsal.http.request("PUT", "/settings/biometrics", token=token, body={"biometric_consent": True})[0] == 200
    api = rehearsal.function("Api")
    before = len(api.calls)
    status, consent = rehearsal.http.request("PUT", "/settings/biometrics", token=token,
                                             body={"biometric_consent": False})
    assert (status, consent["biometric_consent"]) == (200, False), consent
    deletes = {c["params"]["CollectionId"] for c in api.calls[before:] if c["operation"] == "DeleteCollection"}
    prefixes = {rehearsal.resolve(stack, job["Properties"]["DefaultArguments"]["--collection-prefix"])
                for stack, _, job in rehearsal.assembly.resources("AWS::Glue::Job")
                if "--collection-prefix" in job["Properties"].get("DefaultArguments", {})}
    assert prefixes, "no Glue job names a face collection prefix"
    assert deletes == {f"{prefix}-{owner}" for prefix in prefixes}, \
        f"the API deletes {sorted(deletes)}; the Glue jobs fill {sorted(f'{p}-{owner}' for p in prefixes)}"
    _assert_allowed(rehearsal, "Api")
