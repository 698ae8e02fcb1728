"""The generated isolation cases (tests/e2e/isolation_cases.py) against the cloud API handler under moto: the AWS
adapters (DynamoDB single table, S3) behind the same handler, events shaped like the HTTP API's JWT authorizer's.
Two owners with photos, faces, a named person, a correction and a cursor each, written through the stores; B calls
every id slot of every operation with A's ids -> 404/403 (a foreign cursor 400), no answer carries A's ids or marker,
and A's items in the table are the same afterwards. Search is not configured under moto (no OpenSearch): its
operations answer 503 search_unavailable and are left out here, said per operation below."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from urllib.parse import urlencode

import boto3
import pytest

from photo_organizer import bootstrap
from photo_organizer.adapters.aws.dynamodb_metadata import owner_pk, table_definition
from photo_organizer.analysis.models import BoundingBox
from photo_organizer.feedback.models import FeedbackRecord, FeedbackType, new_feedback_id, overlay_of
from photo_organizer.handlers.api import openapi_json
from photo_organizer.local_stack.events import LambdaContextStub, http_api_event
from photo_organizer.models import utcnow
from photo_organizer.people.models import Person
from photo_organizer.people.store import StoredFace
from photo_organizer.settings import Backend, Settings

from ready_photos import add_ready_photo


def _cases_module():
    # tests/ is no package (a site-packages `tests` shadows it): the case generator is loaded from its file.
    path = Path(__file__).resolve().parents[1] / "e2e" / "isolation_cases.py"
    spec = importlib.util.spec_from_file_location("isolation_cases", path)
    module = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))  # dataclasses look it up there
    spec.loader.exec_module(module)
    return module


cases = _cases_module()
ORIGINALS, DERIVATIVES, TABLE = "po-iso-originals", "po-iso-derivatives", "po-iso-table"
NOT_DEPLOYED_UNDER_MOTO = {
    "GET /search": "no OpenSearch domain under moto: answers 503 search_unavailable (the e2e suite covers it)",
    "GET /search/suggest": "no OpenSearch domain under moto: answers 503 search_unavailable",
}


def call(owner: str, method: str, path: str, query: dict | None = None, body=None) -> tuple[int, str]:
    from photo_organizer.handlers import api

    event = http_api_event(method=method, path=path, query=[(k, str(v)) for k, v in (query or {}).items()],
                           headers={"content-type": "application/json"},
                           body=json.dumps(body).encode() if body is not None else b"",
                           claims={"sub": owner, "token_use": "id"})
    result = api.handler(event, LambdaContextStub())
    return result["statusCode"], result.get("body") or ""


def seed(services, owner: str, tag: str, mark: str) -> object:
    """Two ready photos, a face on each, one named person holding both faces, a tag correction; the owner's ids."""
    now = utcnow()
    services.user_settings.set_biometric_consent(owner, True)
    library = cases.Library(owner)
    photo_ids = [f"{tag}{n}".ljust(32, "0") for n in range(2)]
    for n, photo_id in enumerate(photo_ids):
        add_ready_photo(services, owner, photo_id, n, filename=f"{mark}-{n}.jpg", now=now)
        services.people_store.save_faces([StoredFace(
            face_id=f"{tag}face{n}", owner=owner, photo_id=photo_id, quality=0.7, created_at=now,
            box=BoundingBox(left=0.2, top=0.1, width=0.2, height=0.3))])
    faces = [f"{tag}face{n}" for n in range(2)]
    people = [f"{tag}person{n}".ljust(32, "0") for n in range(2)]
    for n, (person_id, face_id) in enumerate(zip(people, faces, strict=True)):
        services.people_store.save_person(Person(person_id=person_id, owner=owner, name=f"{mark} Grandpa {n}",
                                                 face_ids=frozenset({face_id}), cover_face_id=face_id))
    record = FeedbackRecord(feedback_id=new_feedback_id(), owner=owner, type=FeedbackType.TAG_ADDED, created_at=now,
                            photo_id=photo_ids[0], tag=f"{mark}tag")
    services.feedback_store.record(record, overlay=overlay_of([record]))
    library.ids = {"photo": photo_ids, "face": faces, "person": people, "feedback": [record.feedback_id]}
    status, page = call(owner, "GET", "/photos", {"limit": 1})
    assert status == 200 and json.loads(page)["next_cursor"], page
    library.cursors["GET /photos"] = json.loads(page)["next_cursor"]
    return library


def table_items(owner: str) -> list[dict]:
    response = boto3.client("dynamodb", region_name="us-east-1").query(
        TableName=TABLE, KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": {"S": owner_pk(owner)}})
    return sorted(response["Items"], key=lambda item: item["SK"]["S"])


@pytest.fixture
def cloud(aws_env):
    s3 = boto3.client("s3", region_name="us-east-1")
    for bucket in (ORIGINALS, DERIVATIVES):
        s3.create_bucket(Bucket=bucket)
    boto3.client("dynamodb", region_name="us-east-1").create_table(**table_definition(TABLE))
    settings = Settings(backend=Backend.AWS, originals_bucket=ORIGINALS, derivatives_bucket=DERIVATIVES,
                        table_name=TABLE, region="us-east-1", face_collection_prefix="po-faces")
    services = bootstrap.build_services(settings)
    bootstrap.use_services(services)
    yield services
    bootstrap.use_services(None)


def test_b_with_a_ids_in_any_slot_of_any_operation_is_refused_by_the_cloud_handler_moto(cloud):
    a = seed(cloud, "3f1c2b7e-0000-4000-8000-00000000000a", "a1", cases.MARK)
    b = seed(cloud, "3f1c2b7e-0000-4000-8000-00000000000b", "b2", "ben")
    document = json.loads(openapi_json())
    before = table_items(a.owner)
    generated = [c for c in cases.generate_cases(document) if c.label not in NOT_DEPLOYED_UNDER_MOTO]
    failures = []
    for case in generated:
        method, path, query, body = cases.request_for(case, document, a, b)
        status, text = call(b.owner, method, path, query, body)
        cursor_only = all(slot.endswith(":cursor") for slot in case.foreign)
        if status not in ({400, 403, 404} if cursor_only else {403, 404}):
            failures.append(f"{case.id}: {method} {path}?{urlencode(query)} {body} -> {status} {text[:200]}")
        if leak := cases.leaked(text, a):
            failures.append(f"{case.id}: the answer carries A's {leak}")
    assert not failures, "\n".join(failures)
    assert table_items(a.owner) == before
    assert len(generated) >= 20

    for case in cases.controls(generated):
        method, path, query, body = cases.request_for(case, document, a, b)
        status, text = call(b.owner, method, path, query, body)
        if status in (403, 404):
            failures.append(f"control {case.id}: {method} {path} {body} with B's own ids -> {status} {text[:200]}")
    assert not failures, "\n".join(failures)
    print(f"isolation (cloud handler, moto): {len(generated)} cases over {len({c.label for c in generated})} operations")


@pytest.mark.parametrize("label", sorted(set(cases.NO_ID_OPERATIONS) - cases.OWN_USER - NOT_DEPLOYED_UNDER_MOTO.keys()))
def test_b_calling_an_operation_without_ids_reads_nothing_of_a_moto(cloud, label):
    a = seed(cloud, "3f1c2b7e-0000-4000-8000-00000000000a", "a1", cases.MARK)
    b = seed(cloud, "3f1c2b7e-0000-4000-8000-00000000000b", "b2", "ben")
    operation = cases.operations(json.loads(openapi_json()))[label]
    before = table_items(a.owner)
    status, text = call(b.owner, operation["_method"], operation["_path"], dict(cases.NO_ID_QUERIES.get(label, {})),
                        cases.NO_ID_BODIES.get(label))
    assert 200 <= status < 300, text
    assert cases.leaked(text, a, sent=cases.NO_ID_QUERIES.get(label)) == []
    assert table_items(a.owner) == before

