"""Throttling in the people, feedback and account-erasure use cases, through the API handler under moto (the
Rekognition collection calls answered with their documented response shapes: moto has no collections).

A library with two READY photos, two faces grouped as one person, suggestions, embeddings, a promoted face matcher
and a clustering mark; then the app's requests: people, rename, "not this person", a tag correction and its undo,
the review queue, the analysis progress, consent off, and DELETE /account. Each call site the requests make is
throttled once (throttling.COVERAGE["people"], ["feedback"], ["erasure"]); every request ends 2xx after the
client's retries, the table holds what an unthrottled run leaves (no correction recorded twice, none lost), and
the erasure leaves nothing of the owner (every object, every item but the consent setting, the login)."""

from __future__ import annotations

import importlib.util
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import boto3
import numpy as np
import pytest

from photo_organizer import bootstrap
from photo_organizer.adapters.aws.dynamodb_metadata import owner_pk
from photo_organizer.analysis.models import BoundingBox
from photo_organizer.feedback.models import TagSuggestion
from photo_organizer.models import utcnow
from photo_organizer.people.models import Person
from photo_organizer.people.searches import ClusteringMark
from photo_organizer.people.store import StoredFace

from aws_faults import throttle
from fault_library import DERIVATIVES, ORIGINALS, OWNER, REGION, TABLE
from throttling import OK, RETRY, Caller, Outcome, api_outcome, call_api, census, covers, raised_outcome, sites

_spec = importlib.util.spec_from_file_location(
    "ready_photos", Path(__file__).parents[1] / "integration" / "ready_photos.py")
ready_photos = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ready_photos)  # the integration suite's helper: a READY photo put into the stores
add_ready_photo = ready_photos.add_ready_photo

PHOTOS = ("0123456789abcdef0123456789abcdef", "1123456789abcdef0123456789abcdef")
PERSON, FACES = "p1", ("f0", "f1")
ANSWERS = {  # the documented response shapes (Rekognition API reference)
    ("rekognition", "DeleteCollection"): lambda params: {"StatusCode": 200},
    ("rekognition", "DeleteFaces"): lambda params: {"DeletedFaces": []},
}
PEOPLE = covers(
    "people",
    "dynamodb_people:dynamodb.PutItem",
    "dynamodb_people:dynamodb.TransactWriteItems",
    "dynamodb_people:dynamodb.Query",
    "dynamodb_photo_search:dynamodb.UpdateItem",
    "dynamodb_analysis:dynamodb.TransactWriteItems",
)
FEEDBACK = covers(
    "feedback",
    "dynamodb_feedback:dynamodb.GetItem",
    "dynamodb_feedback:dynamodb.Query",
    "s3_blobs:s3.ListObjectsV2",  # the operator's audit of the library after the corrections
)
ERASURE = covers(
    "erasure",
    "cognito_logins:cognito-idp.AdminDeleteUser",
    "rekognition:rekognition.DeleteCollection",
    "dynamodb_analysis:dynamodb.BatchWriteItem",
    "dynamodb_people:dynamodb.DeleteItem",
    "dynamodb_people:dynamodb.GetItem",  # the settings the audit counts
    "dynamodb_clustering:dynamodb.GetItem",
    "dynamodb_clustering:dynamodb.DeleteItem",
    "dynamodb_face_matchers:dynamodb.GetItem",
    "dynamodb_face_matchers:dynamodb.DeleteItem",
    "dynamodb_features:dynamodb.Query",
    "dynamodb_feedback:dynamodb.UpdateItem",
)
# Made here too, and throttled in the use case they belong to (test_aws_throttling_faults, the analysis cases).
ALSO_MADE = {
    "dynamodb_analysis:dynamodb.Query",
    "dynamodb_analysis:dynamodb.UpdateItem", "dynamodb_metadata:dynamodb.DeleteItem",
    "dynamodb_metadata:dynamodb.GetItem", "dynamodb_metadata:dynamodb.Query", "s3_blobs:s3.DeleteObjects",
    "s3_blobs:s3.ListObjectVersions",
}
# What the table holds of the owner before consent goes off, by kind of item: the same after any throttle.
BEFORE_CONSENT_OFF = {"CONSTRAINT": 1, "FACE": 2, "FEEDBACK": 3, "PERSON": 1, "PHOTO": 2, "SETTINGS": 3}


def owner_items() -> dict[str, int]:
    response = boto3.client("dynamodb", region_name=REGION).query(
        TableName=TABLE, KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": {"S": owner_pk(OWNER)}})
    return census(Counter(item["SK"]["S"].split("#")[0] for item in response["Items"]))


def owner_objects() -> list[str]:
    s3, found = boto3.client("s3", region_name=REGION), []
    for bucket in (ORIGINALS, DERIVATIVES):
        response = s3.list_object_versions(Bucket=bucket)
        found += [v["Key"] for v in [*response.get("Versions", []), *response.get("DeleteMarkers", [])] if OWNER in v["Key"]]
    return found


def people_library(library) -> str:
    """The library above, put straight into the stores; returns the login (a Cognito user of a moto pool)."""
    services, now = library.services, utcnow()
    services.user_settings.set_biometric_consent(OWNER, True)
    for n, photo_id in enumerate(PHOTOS):
        keys = add_ready_photo(services, OWNER, photo_id, n, filename="a.jpg", now=now - timedelta(minutes=n))
        services.derivatives.put(keys.preview, b"jpeg", content_type="image/jpeg")
        services.features.save_image_embedding(OWNER, photo_id, np.ones(1280, dtype=np.float32) / np.sqrt(1280))
        services.suggestion_store.replace_suggestions(OWNER, photo_id, [TagSuggestion(tag="cat", confidence=0.6)])
        services.people_store.save_faces([StoredFace(
            face_id=FACES[n], owner=OWNER, photo_id=photo_id, quality=0.7, created_at=now,
            box=BoundingBox(left=0.2, top=0.1, width=0.2, height=0.3),
            rekognition_face_id=f"0b6c1b5e-0a9e-4a7e-8d5b-3b2f0f7c1d2{n}")])
    services.people_store.replace_people(OWNER, [Person(person_id=PERSON, owner=OWNER, face_ids=frozenset(FACES),
                                                        cover_face_id=FACES[0])])
    services.face_matchers.promote(OWNER, {"owner": OWNER, "threshold": 0.6})
    services.clustering.record_clustering(OWNER, ClusteringMark(digest="d" * 64, clustered_at=now, last_full_at=now))
    idp = boto3.client("cognito-idp", region_name=REGION)
    pool = idp.create_user_pool(PoolName="users", UsernameAttributes=["email"])["UserPool"]["Id"]
    login = idp.admin_create_user(UserPoolId=pool, Username="ana@example.com", MessageAction="SUPPRESS")["User"]["Username"]
    services.account.logins = bootstrap.cognito_logins_for(pool, region=REGION)
    library.drain()  # the stream indexes the photos
    return login


def requests(library, calls, *, people: bool = True, erasure: bool = True) -> Caller:
    """The app's requests: the people and feedback ones, then consent off and the erasure (either part alone for
    a case whose call is made in the other: each case runs only what it throttles)."""
    caller = Caller(calls)
    calls.answers.update(ANSWERS)
    calls.paused = True
    login = people_library(library)
    calls.paused = False
    calls.sites.clear()

    def api(name: str, method: str, path: str, body: dict | None = None, **kwargs) -> dict:
        if method == "POST":  # a correction: the web app sends it with a key and sends that key again on a retry
            kwargs.setdefault("key", str(uuid.uuid4()))
        return caller.step(name, lambda: api_outcome(call_api(method, path, body, **kwargs)))

    if people:
        people_and_feedback(library, calls, caller, api)
    if not erasure:
        return caller
    api("consent off", "PUT", "/settings/biometrics", {"biometric_consent": False})

    def erase() -> Outcome:
        outcome = api_outcome(call_api("DELETE", "/account", login=login))
        if outcome.kind == OK and outcome.value.get("remaining"):  # 202: "call again"
            return Outcome(RETRY, outcome.value)
        return outcome

    caller.erased = caller.step("erase", erase)
    library.drain()
    return caller


def people_and_feedback(library, calls, caller: Caller, api) -> None:
    assert [p["person_id"] for p in api("people", "GET", "/people")] == [PERSON]
    api("rename", "PATCH", f"/people/{PERSON}", {"name": "Ana"})
    api("person photos", "GET", f"/people/{PERSON}/photos")
    api("not this person", "POST", f"/faces/{FACES[1]}/not-person", {"person_id": PERSON})
    tag = api("tag", "POST", "/feedback", {"type": "tag_added", "photo_id": PHOTOS[0], "tag": "beach"})
    api("corrections", "GET", "/feedback", query=[("photo_id", PHOTOS[0])])
    api("undo", "DELETE", f"/feedback/{tag['feedback_id']}")
    api("review", "GET", "/review")
    api("progress", "GET", "/analysis/progress")
    library.drain()
    calls.paused = True  # the test's own reads
    library.assert_clean(ready=2)
    caller.before_consent_off = owner_items()
    calls.paused = False
    # The operator's audit of the library (`photo-organizer audit`): the stores agree (a retryable error if not).
    report = caller.step("library audit", lambda: raised_outcome(lambda: library.services.library_audit.audit(OWNER)))
    assert report.clean and report.blobs == 6, report.lines()


def test_the_requests_make_exactly_these_calls(calls, aws_library):
    caller = requests(aws_library, calls)
    assert sorted(set(calls.sites)) == sorted({*PEOPLE, *FEEDBACK, *ERASURE, *sites(*ALSO_MADE)})
    assert caller.before_consent_off == BEFORE_CONSENT_OFF


@pytest.mark.parametrize("site", (*PEOPLE, *FEEDBACK), ids=str)
def test_a_throttled_people_or_feedback_call_is_retried_and_nothing_is_lost_or_doubled(calls, aws_library, site):
    calls.fault = fault = throttle(site.service, site.operation, module=site.module)
    caller = requests(aws_library, calls, erasure=False)
    assert fault.fired, f"{site} was never throttled: the requests no longer make it"
    assert caller.before_consent_off == BEFORE_CONSENT_OFF


@pytest.mark.parametrize("site", ERASURE, ids=str)
def test_a_throttled_erasure_call_is_retried_and_nothing_of_the_owner_remains(calls, aws_library, site):
    calls.fault = fault = throttle(site.service, site.operation, module=site.module)
    caller = requests(aws_library, calls, people=False)
    assert fault.fired, f"{site} was never throttled: the erasure no longer makes it"
    assert caller.erased["remaining"] == {} and caller.erased["deleted"]["logins"] == 1
    assert owner_objects() == [] and owner_items() == {}


def constraints_of_face(library, face_id: str) -> list[str]:
    return sorted(f"{type(c).__name__}:{c.person_id}" for c in library.services.people_store.constraints(OWNER)
                  if getattr(c, "face_id", None) == face_id)


def test_a_move_throttled_after_its_corrections_were_stored_stores_them_once_and_its_undo_removes_them(
        calls, aws_library):
    """"Move this face to that person" stores two corrections (the face belongs there, not where it was), then
    moves the face. Throttled at the move, the client's retry must not store the corrections a second time (with
    the retry's time, where the undo would not find the first ones)."""
    calls.answers.update(ANSWERS)
    calls.paused = True
    people_library(aws_library)
    services = aws_library.services
    services.people_store.save_faces([StoredFace(
        face_id="f2", owner=OWNER, photo_id=PHOTOS[1], quality=0.7, created_at=utcnow(),
        box=BoundingBox(left=0.6, top=0.1, width=0.2, height=0.3))])
    services.people_store.replace_people(OWNER, [
        Person(person_id=PERSON, owner=OWNER, face_ids=frozenset(FACES), cover_face_id=FACES[0]),
        Person(person_id="p2", owner=OWNER, face_ids=frozenset({"f2"}), cover_face_id="f2")])
    calls.paused = False
    calls.fault = fault = throttle("dynamodb", "TransactWriteItems", module="dynamodb_people")
    caller = Caller(calls)
    key = str(uuid.uuid4())
    caller.step("move", lambda: api_outcome(call_api("POST", f"/faces/{FACES[0]}/move", {"person_id": "p2"}, key=key)))
    assert fault.fired == 1 and caller.retryable_answers == 1
    calls.paused = True
    assert constraints_of_face(aws_library, FACES[0]) == ["CannotLink:p1", "PinnedFace:p2"]
    (event,) = [r for r in services.feedback_store.for_photo(OWNER, PHOTOS[0]) if r.face_id == FACES[0]]
    calls.paused = False
    assert api_outcome(call_api("DELETE", f"/feedback/{event.feedback_id}")).kind == OK
    assert constraints_of_face(aws_library, FACES[0]) == []
    assert FACES[0] in next(p for p in services.people_store.people(OWNER) if p.person_id == PERSON).face_ids
