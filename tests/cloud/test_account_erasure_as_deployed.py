"""Account erasure as deployed: DELETE /account through the HTTP API to the Api function run from the host bundle with
its template's environment and role, against moto (table, buckets), the OpenSearch stand-in and the Rekognition
stand-in (moto has no collections). What the erasure's own audit reports is checked against a sweep of the table, both
buckets (every object version and delete marker), the user's face collection and Cognito user; another user stays
intact. The training data goes after the erasure finished: the feedback function, with its synthesized role, on the
erasure mark's REMOVE through its mapping's filter, takes the user's lines and model entries out of every object
version of the dataset bucket, and the other user's stay."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from .rehearsal.journey import owner_of, upload, validate_all
from .rehearsal.opensearch import Document

pytestmark = pytest.mark.xdist_group("cloud")  # one worker builds the session's rehearsal

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "good" / "gps_exif.jpg"


def _items_of(rehearsal, owner: str) -> list[dict]:
    items, kwargs = [], {"TableName": rehearsal.ref("storage", "Table")}
    while True:
        page = rehearsal.client("dynamodb").scan(**kwargs)
        items += [i for i in page["Items"] if owner in json.dumps(i)]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _objects_of(rehearsal, owner: str) -> dict[str, list[str]]:
    """Every object version and delete marker naming the owner, per bucket of the storage stack."""
    s3, found = rehearsal.client("s3"), {}
    for concern in ("Originals", "Derivatives"):
        bucket = rehearsal.ref("storage", concern)
        listing = s3.list_object_versions(Bucket=bucket)
        found[concern] = [v["Key"] for v in listing.get("Versions", []) + listing.get("DeleteMarkers", [])
                          if owner in v["Key"]]
    return found


def _dataset_versions(rehearsal) -> list[tuple[str, bytes]]:
    """(key, body) of every object version in the dataset bucket (model.tar.gz bodies as their model.json)."""
    s3, bucket = rehearsal.client("s3"), rehearsal.ref("ml", "Dataset")
    listing = s3.list_object_versions(Bucket=bucket)
    assert not listing.get("IsTruncated")
    found = []
    for version in listing.get("Versions", []):
        body = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
        found.append((version["Key"], _model_json(body) if version["Key"].endswith(".tar.gz") else body))
    return found + [(m["Key"], b"") for m in listing.get("DeleteMarkers", [])]


def _model_tarball(owners: list[str]) -> bytes:
    """What a training job leaves under runs/<execution id>/: one model.json of per-owner models."""
    document = json.dumps({"kind": "tagging", "schema": 1, "owners": {o: {"tags": ["x"]} for o in owners},
                           "skipped": {}}).encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.json")
        info.size = len(document)
        tar.addfile(info, io.BytesIO(document))
    return raw.getvalue()


def _model_json(data: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.extractfile("model.json").read()


def _login_exists(rehearsal, username: str) -> bool:
    idp = rehearsal.client("cognito-idp")
    try:
        idp.admin_get_user(UserPoolId=rehearsal.ref("auth", "Users"), Username=f"{username}@example.com")
    except idp.exceptions.UserNotFoundException:
        return False
    return True


def _library(rehearsal, username: str) -> dict:
    token = rehearsal.sign_in(username)
    photo_id = upload(rehearsal, token, SAMPLE.read_bytes(), filename=SAMPLE.name)
    return {"token": token, "owner": owner_of(rehearsal, token), "photo_id": photo_id}


def test_delete_account_as_deployed_leaves_nothing_of_the_user_and_the_other_user_intact(rehearsal):
    leaving, staying = _library(rehearsal, "erasure-leaving"), _library(rehearsal, "erasure-staying")
    validations = validate_all(rehearsal)
    assert validations and all(i.result == {"batchItemFailures": []} for i in validations)
    indexer = rehearsal.function("Indexer")
    assert all(i.error is None for i in rehearsal.poll_stream(indexer))
    token, owner = leaving["token"], leaving["owner"]
    assert rehearsal.http.request("PUT", "/settings/biometrics", token=token, body={"biometric_consent": True})[0] == 200
    collection = f"{rehearsal.function('Api').environment['PO_FACE_COLLECTION_PREFIX']}-{owner}"
    rehearsal.rekognition.add_face(collection, leaving["photo_id"], identity="leaving")  # as the Glue job indexes
    assert _items_of(rehearsal, owner) and _objects_of(rehearsal, owner)["Originals"]
    # Training data of both users: feedback lines (the feedback function from the stream) and a run's model.
    for user in (leaving, staying):
        status, _ = rehearsal.http.request("POST", "/feedback", token=user["token"],
                                           body={"type": "tag_added", "photo_id": user["photo_id"], "tag": "kite"})
        assert status == 201
    feedback = rehearsal.function("Feedback")
    assert all(i.error is None for i in rehearsal.poll_stream(feedback))
    dataset, model_key = rehearsal.ref("ml", "Dataset"), "runs/rehearsal-run/models/tagging/job/output/model.tar.gz"
    rehearsal.client("s3").put_object(Bucket=dataset, Key=model_key, ServerSideEncryption="aws:kms",
                                      Body=_model_tarball([owner, staying["owner"]]))
    assert [k for k, body in _dataset_versions(rehearsal) if owner.encode() in body]
    # A document whose photo's REMOVE record never reached the index (lost past the retries): no stream record
    # will remove it; the indexer's delete_by_query on the finished erasure must.
    rehearsal.opensearch.documents[f"{owner}#lost"] = Document({"owner": owner, "photo_id": "lost"}, 1, owner)

    status, report = rehearsal.http.request("DELETE", "/account", token=token)

    # The photo's search document goes with the stream record of its deletion, the lost one with the erasure mark's
    # (the API may only read the index): the audit lists them, as following, until the indexer ran.
    assert (status, report["remaining"]) == (202, {"search documents": 2}), report
    assert report["deleted"]["photos"] == 1
    # Nothing blocking remains, so the sign-in goes too (the caller's own Cognito user, named by the token).
    assert report["deleted"]["logins"] == 1
    assert _login_exists(rehearsal, "erasure-leaving") is False and _login_exists(rehearsal, "erasure-staying")
    assert collection not in rehearsal.rekognition.collections
    before = len(rehearsal.opensearch.requests)
    assert all(i.error is None and i.result == {"batchItemFailures": []} for i in rehearsal.poll_stream(indexer))
    assert [(r.path.rsplit("/", 1)[-1], r.query.get("routing")) for r in rehearsal.opensearch.requests[before:]
            if r.path.endswith("/_delete_by_query")] == [("_delete_by_query", [owner])]
    assert rehearsal.denials(indexer) == []
    status, again = rehearsal.http.request("DELETE", "/account", token=token)
    assert (status, again["remaining"], set(again["deleted"].values())) == (200, {}, {0}), again
    # What the audit says, swept independently: no item of the table names the owner (the consent setting went
    # too: the cloud's default for no setting is off), no object version or delete marker in either bucket.
    assert _items_of(rehearsal, owner) == []
    assert _objects_of(rehearsal, owner) == {"Originals": [], "Derivatives": []}
    assert [d for d in rehearsal.opensearch.documents.values()
            if d.source.get("owner") == owner and not d.source.get("deleted")] == []
    status, page = rehearsal.http.request("GET", "/photos", token=token)
    assert (status, page["items"]) == (200, [])

    # The training data, once the erasure mark's REMOVE reached the feedback function: nothing of the user in any
    # object version (the tombstone is named by a digest), the other user's line and model entry as they were.
    [erased] = [i for i in rehearsal.poll_stream(feedback) if i.result and i.result["erased"]]
    assert erased.error is None and erased.result["erased"][0]["dataset_lines"] == 1, erased.result
    assert erased.result["erased"][0]["model_entries"] == 1 and erased.result["erased"][0]["remaining"] == []
    left = _dataset_versions(rehearsal)
    assert [k for k, body in left if owner in k or owner.encode() in body] == []
    assert [k for k, _ in left if k.startswith("erasures/")] and all(owner not in k for k, _ in left)
    assert [json.loads(line)["owner"] for k, body in left if k.startswith(f"feedback/owner={staying['owner']}/")
            for line in body.splitlines()] == [staying["owner"]]
    assert [list(json.loads(body)["owners"]) for k, body in left if k == model_key] == [[staying["owner"]]]
    assert rehearsal.denials(feedback) == []

    status, page = rehearsal.http.request("GET", "/photos", token=staying["token"])
    assert status == 200 and [p["photo_id"] for p in page["items"]] == [staying["photo_id"]]
    assert all(_objects_of(rehearsal, staying["owner"]).values())
    assert rehearsal.opensearch.documents[f"{staying['owner']}#{staying['photo_id']}"].source.get("deleted") is not True
    assert rehearsal.denials(rehearsal.function("Api")) == []
