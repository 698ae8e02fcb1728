"""Account erasure on the AWS backend under moto: DELETE /account through the API handler erases the owner's S3
objects (every version), DynamoDB items (photos, claims, faces, people, corrections, feedback events, search marks,
embeddings, suggestions, the promoted face matcher, the clustering mark, the consent setting: a scan of every table
and bucket finds nothing naming the owner) and asks Rekognition to delete the owner's collection (the
request is checked, moto has no collections); another owner's items and objects stay."""

from __future__ import annotations

import json

import boto3
import numpy as np
import pytest

from photo_organizer import bootstrap
from photo_organizer.adapters.aws.dynamodb_metadata import owner_pk, table_definition
from photo_organizer.feedback.models import FeedbackRecord, FeedbackType, TagSuggestion, new_feedback_id, overlay_of
from photo_organizer.local_stack.events import LambdaContextStub, http_api_event
from photo_organizer.analysis.models import BoundingBox
from photo_organizer.models import utcnow
from photo_organizer.people.store import StoredFace
from photo_organizer.people.searches import ClusteringMark
from photo_organizer.services.account_erasure import Remaining
from photo_organizer.settings import Backend, Settings

from ready_photos import add_ready_photo

LEAVING = "3f1c2b7e-0000-4000-8000-00000000a11c"
STAYING = "3f1c2b7e-0000-4000-8000-00000000b0b0"
ORIGINALS, DERIVATIVES, TABLE = "po-originals", "po-derivatives", "po-table"


@pytest.fixture
def cloud(aws_env):
    s3 = boto3.client("s3", region_name="us-east-1")
    for bucket in (ORIGINALS, DERIVATIVES):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=ORIGINALS, VersioningConfiguration={"Status": "Enabled"})
    boto3.client("dynamodb", region_name="us-east-1").create_table(**table_definition(TABLE))
    settings = Settings(backend=Backend.AWS, originals_bucket=ORIGINALS, derivatives_bucket=DERIVATIVES,
                        table_name=TABLE, region="us-east-1", face_collection_prefix="po-faces")
    requests: list[dict] = []

    session = boto3._get_default_session()
    session.events.register("before-call.rekognition.DeleteCollection", _answer_delete_collection(requests))
    services = bootstrap.build_services(settings)
    bootstrap.use_services(services)
    yield services, s3, requests
    bootstrap.use_services(None)
    session.events.unregister("before-call.rekognition.DeleteCollection", _answer_delete_collection(requests))
    _HANDLERS.clear()


_HANDLERS: dict[int, object] = {}


def _answer_delete_collection(requests: list[dict]):
    if id(requests) not in _HANDLERS:
        def answer(params, **_):
            requests.append(json.loads(params["body"]) if isinstance(params["body"], (bytes, str)) else params["body"])
            return (type("R", (), {"status_code": 200, "headers": {}})(), {"StatusCode": 200})
        _HANDLERS[id(requests)] = answer
    return _HANDLERS[id(requests)]


def library(services, owner: str, photo_ids: list[str]) -> None:
    now = utcnow()
    services.user_settings.set_biometric_consent(owner, True)
    for n, photo_id in enumerate(photo_ids):
        keys = add_ready_photo(services, owner, photo_id, n, filename="a.jpg", now=now)
        services.originals.put(keys.original, b"jpeg2", content_type="image/jpeg")  # a second version
        services.derivatives.put(keys.preview, b"jpeg", content_type="image/jpeg")
        services.features.save_image_embedding(owner, photo_id, np.ones(1280, dtype=np.float32) / np.sqrt(1280))
        services.suggestion_store.replace_suggestions(owner, photo_id, [TagSuggestion(tag="cat", confidence=0.8)])
        services.people_store.save_faces([StoredFace(
            face_id=f"f{n}", owner=owner, photo_id=photo_id, box=BoundingBox(left=0.2, top=0.1, width=0.2, height=0.3),
            quality=0.7, created_at=now, rekognition_face_id="0b6c1b5e-0a9e-4a7e-8d5b-3b2f0f7c1d2a")])
        for kind, extra in ((FeedbackType.TAG_ADDED, {"tag": "mine"}),
                            (FeedbackType.SEARCH_IRRELEVANT, {"query": "beach"})):
            record = FeedbackRecord(feedback_id=new_feedback_id(), owner=owner, type=kind, created_at=now,
                                    photo_id=photo_id, **extra)
            services.feedback_store.record(record, overlay=overlay_of([record]))
    services.face_matchers.promote(owner, {"owner": owner, "threshold": 0.6})
    services.clustering.record_clustering(owner, ClusteringMark(digest="d" * 64, clustered_at=now, last_full_at=now))


def items_of(owner: str) -> list[str]:
    response = boto3.client("dynamodb", region_name="us-east-1").query(
        TableName=TABLE, KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": {"S": owner_pk(owner)}})
    return sorted(item["SK"]["S"] for item in response["Items"])


def objects_of(s3, owner: str) -> list[str]:
    found = []
    for bucket in (ORIGINALS, DERIVATIVES):
        response = s3.list_object_versions(Bucket=bucket)
        found += [v["Key"] for v in [*response.get("Versions", []), *response.get("DeleteMarkers", [])]
                  if owner in v["Key"]]
    return found


def dynamodb_items_naming(owner: str) -> list[str]:
    """Every item of every table whose keys or attributes contain the owner id: a scan, not a query of the owner's
    partition, so an item kind keyed otherwise (or added later) is found too."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    found = []
    for table in client.list_tables()["TableNames"]:
        for page in client.get_paginator("scan").paginate(TableName=table):
            found += [f"{table} {item['PK']['S']} {item['SK']['S']}" for item in page["Items"]
                      if owner in json.dumps(item, default=str)]
    return found


def s3_objects_naming(s3, owner: str) -> list[str]:
    """Every version and delete marker of every bucket whose key or (small) body contains the owner id."""
    found = []
    for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"]):
        response = s3.list_object_versions(Bucket=bucket)
        for version in [*response.get("Versions", []), *response.get("DeleteMarkers", [])]:
            body = b"" if "Size" not in version else s3.get_object(
                Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
            if owner in version["Key"] or owner.encode() in body:
                found.append(f"{bucket}/{version['Key']}")
    return found


def call_api(method: str, path: str, owner: str, *, login: str | None = None) -> tuple[int, dict]:
    from photo_organizer.handlers import api

    claims = {"sub": owner, "token_use": "id"} | ({"cognito:username": login} if login else {})
    event = http_api_event(method=method, path=path, headers={}, body=b"", claims=claims)
    result = api.handler(event, LambdaContextStub())
    return result["statusCode"], json.loads(result["body"]) if result.get("body") else {}


def test_delete_account_erases_items_objects_and_requests_the_collection_deletion_moto(cloud) -> None:
    services, s3, rekognition_requests = cloud
    library(services, LEAVING, ["0123456789abcdef0123456789abcdef", "1123456789abcdef0123456789abcdef"])
    library(services, STAYING, ["2123456789abcdef0123456789abcdef"])
    staying_items, staying_objects = items_of(STAYING), objects_of(s3, STAYING)
    assert services.account.audit(LEAVING)

    status, body = call_api("DELETE", "/account", LEAVING)
    assert status == 200, body
    assert body["remaining"] == {}
    assert body["deleted"]["photos"] == 2 and body["deleted"]["faces"] == 2 and body["deleted"]["models"] == 1
    assert rekognition_requests == [{"CollectionId": f"po-faces-{LEAVING}"}]
    assert objects_of(s3, LEAVING) == [], "every version and delete marker of the owner's objects"
    assert items_of(LEAVING) == [], "the consent setting too (the cloud's default, off, answers for no setting)"
    assert services.user_settings.biometric_consent(LEAVING) is False
    assert dynamodb_items_naming(LEAVING) == [] and s3_objects_naming(s3, LEAVING) == []
    assert dynamodb_items_naming(STAYING) and s3_objects_naming(s3, STAYING), "the scans do find an owner"
    assert items_of(STAYING) == staying_items and objects_of(s3, STAYING) == staying_objects

    status, again = call_api("DELETE", "/account", LEAVING)
    assert status == 200 and set(again["deleted"].values()) == {0} and again["remaining"] == {}


def test_face_matcher_forget_is_per_owner_and_idempotent_moto(aws_env) -> None:
    from photo_organizer.adapters.aws.dynamodb_face_matchers import DynamoDbFaceMatcherStore

    boto3.client("dynamodb", region_name="us-east-1").create_table(**table_definition(TABLE))
    store = DynamoDbFaceMatcherStore(TABLE)
    store.promote(LEAVING, {"threshold": 0.6})
    store.promote(STAYING, {"threshold": 0.7})
    assert store.forget(LEAVING) is True and store.promoted(LEAVING) is None
    assert store.forget(LEAVING) is False, "already gone"
    assert store.promoted(STAYING) == {"threshold": 0.7}


class IndexStillHolding:
    """The cloud index seconds after the records went: the stream indexer has not removed the documents yet."""

    def __init__(self, documents: int) -> None:
        self.documents = documents

    def count(self, owner: str) -> int:
        return self.documents if owner == LEAVING else 0


def test_documents_the_stream_indexer_still_has_to_remove_answer_202_and_do_not_block_new_uploads_moto(cloud):
    services, _, _ = cloud
    library(services, LEAVING, ["0123456789abcdef0123456789abcdef"])
    services.account.search_index = IndexStillHolding(1)
    assert services.account.index_follows_records, "the cloud's index follows the table"

    status, body = call_api("DELETE", "/account", LEAVING)
    assert status == 202 and body["remaining"] == {"search documents": 1}
    assert services.user_settings.account_erasing(LEAVING) is False, "nothing else to do: uploads may start again"

    services.account.search_index = IndexStillHolding(0)  # the stream indexer caught up
    status, body = call_api("DELETE", "/account", LEAVING)
    assert status == 200 and body["remaining"] == {}


def _pool_with(*usernames: str) -> str:
    """A user pool like the AuthStack's (email is the sign-in alias: the username is a generated id)."""
    idp = boto3.client("cognito-idp", region_name="us-east-1")
    pool = idp.create_user_pool(PoolName="users", UsernameAttributes=["email"])["UserPool"]["Id"]
    for username in usernames:
        idp.admin_create_user(UserPoolId=pool, Username=f"{username}@example.com", MessageAction="SUPPRESS")
    return pool


def _logins(pool: str) -> list[str]:
    users = boto3.client("cognito-idp", region_name="us-east-1").list_users(UserPoolId=pool)["Users"]
    return sorted(next(a["Value"] for a in u["Attributes"] if a["Name"] == "email") for u in users)


def _username(pool: str, email: str) -> str:
    return boto3.client("cognito-idp", region_name="us-east-1").admin_get_user(UserPoolId=pool, Username=email)["Username"]


def test_delete_account_deletes_the_callers_own_cognito_user_last_moto(cloud) -> None:
    """The sign-in goes when the erasure finished, the one the verified token names (cognito:username), no other;
    a repeated call (the token still valid until it expires) finds it gone and reports 0."""
    services, _, _ = cloud
    pool = _pool_with("leaving", "staying")
    services.account.logins = bootstrap.cognito_logins_for(pool, region="us-east-1")
    library(services, LEAVING, ["0123456789abcdef0123456789abcdef"])
    login = _username(pool, "leaving@example.com")

    status, body = call_api("DELETE", "/account", LEAVING, login=login)

    assert (status, body["remaining"], body["deleted"]["logins"]) == (200, {}, 1), body
    assert _logins(pool) == ["staying@example.com"]
    status, again = call_api("DELETE", "/account", LEAVING, login=login)
    assert (status, again["deleted"]["logins"]) == (200, 0)
    assert _logins(pool) == ["staying@example.com"]


def test_a_failed_erasure_keeps_the_login_so_the_user_can_sign_in_and_finish_moto(cloud) -> None:
    services, _, _ = cloud
    pool = _pool_with("leaving")
    services.account.logins = bootstrap.cognito_logins_for(pool, region="us-east-1")
    library(services, LEAVING, ["0123456789abcdef0123456789abcdef"])
    services.account.audit = lambda owner: [Remaining("photo records", 1)]  # something nothing else will delete

    status, body = call_api("DELETE", "/account", LEAVING, login=_username(pool, "leaving@example.com"))

    assert (status, body["remaining"], body["deleted"]["logins"]) == (202, {"photo records": 1}, 0), body
    assert _logins(pool) == ["leaving@example.com"]
