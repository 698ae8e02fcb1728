"""Tenant isolation, generated from the published OpenAPI document (issue 13).

Two users with real analysed libraries (photos, faces, a named person, feedback, cursors). Every operation of the
document the local gateway publishes is called by B with A's ids in each of its id slots — path, query and body
(one case with all of A's ids, and one per slot with B's own ids in the others): it answers 404 or 403 (a foreign
cursor: 400, it is not a resource), no answer of any status carries any of A's ids or marker strings, and A's library
reads the same afterwards. Operations without ids are listed with a reason and called as B; their answers carry
nothing of A's. A new operation is covered by itself when its ids are named like the known ones; otherwise
`test_every_operation_has_an_isolation_case_or_a_reasoned_exemption` fails until isolation_cases.py maps it.

Beyond the document: A's review answers posted by B, A's blob links re-signed with B's signature, and B's upload
policy pointed at A's original key.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from photo_organizer.local_stack.analysis_runner import LABEL_MODEL, analyse_library
from photo_organizer.local_stack.client import PhotoApiClient

from isolation_cases import (  # tests/e2e, on the path pytest puts this module's folder on
    MARK,
    NO_ID_BODIES,
    NO_ID_OPERATIONS,
    NO_ID_QUERIES,
    OWN_USER,
    Library,
    controls,
    generate_cases,
    leaked,
    operations,
    request_for,
    unmapped_params,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
TIMEOUT = 60.0
FACES = ["obama.jpg", "obama2.jpg", "obama3.jpg"]  # three faces of one man: a person (clustering's minimum is 3)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _build_library(client: PhotoApiClient, user, token: str, names: list[str], mark: str) -> Library:
    library = Library(user.sub, token)
    photo_ids = [client.upload_bytes((SAMPLES / name).read_bytes(), f"{mark}-{name}", "image/jpeg") for name in names]
    for photo_id in photo_ids:
        assert client.wait_until_processed(photo_id)["status"] == "READY"
    library.ids["photo"] = photo_ids
    return library


def _collect_after_analysis(stack, client: PhotoApiClient, library: Library, mark: str) -> None:
    people = client.people()
    assert people, "the three face photos make a person"
    person_id = people[0]["person_id"]
    client.name_person(person_id, f"{mark.title()} Grandpa")
    library.ids["person"] = [p["person_id"] for p in people]
    details = [client.photo(photo_id) for photo_id in library.ids["photo"]]
    library.ids["face"] = [face["face_id"] for d in details for face in (d.get("analysis") or {}).get("faces") or []]
    assert library.ids["face"], "the face photos have faces"
    library.signed_urls = [url for d in details for url in d["urls"].values() if isinstance(url, str) and "/_blobs/" in url]
    event = client.feedback({"type": "tag_added", "photo_id": library.ids["photo"][-1], "tag": f"{mark}tag"})
    library.ids["feedback"] = [event["feedback_id"]]
    page = client.list_photos(limit=1)
    assert page.get("next_cursor")
    library.cursors["GET /photos"] = page["next_cursor"]
    found = httpx.get(f"{stack.url}/search", params={"q": "", "limit": 1}, headers=_auth(library.token),
                      timeout=TIMEOUT).json()
    assert found.get("next_cursor"), found
    library.cursors["GET /search"] = found["next_cursor"]
    library.review_answers = [answer for item in client.review(limit=10)["items"] for answer in item["answers"].values()]


@pytest.fixture(scope="module")
def libraries(stack):
    """(A, B): A has four photos (three faces of one person, named with the marker; a rocket), a tag correction, and
    cursors; B has the same three face photos (its own ids) and a correction of its own."""
    assert (ROOT / LABEL_MODEL).exists(), "run `make label-model` (make test does) to export the label model"
    users = [stack.identity.add_user(name, f"{name}'s long password")[0] for name in ("ada", "ben")]
    tokens = [stack.identity.issue_token(user) for user in users]
    with PhotoApiClient(stack.url, tokens[0]) as a_client, PhotoApiClient(stack.url, tokens[1]) as b_client:
        a = _build_library(a_client, users[0], tokens[0], [*FACES, "rocket.jpg"], MARK)
        b = _build_library(b_client, users[1], tokens[1], FACES, "ben")
        summary = analyse_library(stack.settings.data_dir, workers=1, label_model=ROOT / LABEL_MODEL)
        assert not summary.failures
        _collect_after_analysis(stack, a_client, a, MARK)
        _collect_after_analysis(stack, b_client, b, "ben")
    return a, b


@pytest.fixture(scope="module")
def document(stack) -> dict:
    response = httpx.get(f"{stack.url}/openapi.json", timeout=TIMEOUT)
    assert response.status_code == 200
    return response.json()


def snapshot(stack, library: Library) -> dict:
    """What the owner reads of their library (links re-signed on every read are left out)."""
    def get(path: str, **params) -> object:
        response = httpx.get(f"{stack.url}{path}", params=params, headers=_auth(library.token), timeout=TIMEOUT)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    photos = {}
    for photo_id in library.ids["photo"]:
        detail = get(f"/photos/{photo_id}")
        detail.pop("urls", None)
        photos[photo_id] = detail
    return {
        "photos": photos,
        "listing": [p["photo_id"] for p in get("/photos", limit=100)["items"]],
        "people": get("/people", include_hidden="true"),
        "feedback": {p: get("/feedback", photo_id=p) for p in library.ids["photo"]},
        "consent": get("/settings/biometrics"),
    }


def call(stack, token: str, method: str, path: str, query: dict, body) -> httpx.Response:
    return httpx.request(method, f"{stack.url}{path}", params=query, headers=_auth(token), timeout=TIMEOUT,
                         json=body if body is not None else None)


# ---- the tests -----------------------------------------------------------------------------------------------------


def test_the_published_document_is_the_one_the_handler_builds(document):
    from photo_organizer.handlers.api import openapi_json

    assert document == json.loads(openapi_json())


def test_every_operation_has_an_isolation_case_or_a_reasoned_exemption(document):
    with_cases = {case.label for case in generate_cases(document)}
    labels = set(operations(document))
    uncovered = labels - with_cases - NO_ID_OPERATIONS.keys()
    assert not uncovered, f"operations with no isolation case and no reasoned exemption: {sorted(uncovered)}"
    assert not unmapped_params(document), "id-like names no isolation rule maps: add them to ID_KINDS/CURSOR_PARAMS"
    assert NO_ID_OPERATIONS.keys() <= labels, f"exemptions for operations gone: {NO_ID_OPERATIONS.keys() - labels}"
    assert all(len(reason) > 20 for reason in NO_ID_OPERATIONS.values())


def test_b_with_a_ids_in_any_slot_of_any_operation_is_refused_and_reads_nothing_of_a(stack, libraries, document):
    a, b = libraries
    before = snapshot(stack, a)
    cases = generate_cases(document)
    failures = []
    for case in cases:
        method, path, query, body = request_for(case, document, a, b)
        response = call(stack, b.token, method, path, query, body)
        cursor_only = all(slot.endswith(":cursor") for slot in case.foreign)
        allowed = {400, 403, 404} if cursor_only else {403, 404}
        if response.status_code not in allowed:
            failures.append(f"{case.id}: {method} {path} {query} {body} -> {response.status_code} {response.text[:200]}")
        if leak := leaked(response.text, a):
            failures.append(f"{case.id}: the answer carries A's {leak}")
    assert not failures, "\n".join(failures)
    assert snapshot(stack, a) == before
    assert len(cases) >= 20  # every id route, each slot on its own: a shrinking number means lost coverage

    for control in controls(cases):
        method, path, query, body = request_for(control, document, a, b)
        response = call(stack, b.token, method, path, query, body)
        if response.status_code in (403, 404):
            failures.append(f"control {control.id}: {method} {path} {body} with B's own ids -> {response.status_code}")
    assert not failures, "\n".join(failures)
    print(f"isolation: {len(cases)} generated id cases over {len({c.label for c in cases})} operations")


@pytest.mark.parametrize("label", sorted(set(NO_ID_OPERATIONS) - OWN_USER))
def test_b_calling_an_operation_without_ids_reads_nothing_of_a(stack, libraries, document, label):
    a, b = libraries
    operation = operations(document)[label]
    before = snapshot(stack, a)
    response = call(stack, b.token, operation["_method"], operation["_path"], dict(NO_ID_QUERIES.get(label, {})),
                    NO_ID_BODIES.get(label))
    assert 200 <= response.status_code < 300, response.text
    assert leaked(response.text, a, sent=NO_ID_QUERIES.get(label)) == []
    assert snapshot(stack, a) == before


def test_b_filtering_search_by_a_person_finds_nothing(stack, libraries):
    a, b = libraries
    response = call(stack, b.token, "GET", "/search", {"person": a.first("person"), "q": ""}, None)
    assert response.status_code == 200 and response.json()["items"] == []
    assert leaked(response.text, a) == []


@pytest.mark.parametrize("label", sorted(OWN_USER))
def test_library_wide_writes_by_another_user_leave_a_library_unchanged(stack, libraries, document, label):
    a, _ = libraries
    before = snapshot(stack, a)
    user, _ = stack.identity.add_user(f"own-{label.split()[0].lower()}", "a long enough password")
    operation = operations(document)[label]
    response = call(stack, stack.identity.issue_token(user), operation["_method"], operation["_path"], {},
                    NO_ID_BODIES.get(label))
    assert response.status_code == 200, response.text
    assert leaked(response.text, a) == []
    assert snapshot(stack, a) == before


def test_b_posting_a_review_answers_is_refused(stack, libraries):
    a, b = libraries
    before = snapshot(stack, a)
    assert a.review_answers, "A has review questions"
    for answer in a.review_answers:
        response = call(stack, b.token, "POST", "/feedback", {}, answer)
        assert response.status_code == 404, (answer, response.text)
        assert leaked(response.text, a) == []
    assert snapshot(stack, a) == before


def test_a_blob_links_do_not_open_with_b_signature_or_none(stack, libraries):
    a, b = libraries
    b_query = urlsplit(b.signed_urls[0]).query
    for url in a.signed_urls:
        parts = urlsplit(url)
        assert httpx.get(url, timeout=TIMEOUT).status_code == 200  # the link itself works (it is A's capability)
        for forged in (f"{stack.url}{parts.path}", f"{stack.url}{parts.path}?{b_query}"):
            response = httpx.get(forged, timeout=TIMEOUT, headers=_auth(b.token))
            assert response.status_code == 403, forged
            assert leaked(response.text, a) == []


def test_b_upload_policy_pointed_at_a_original_is_refused_and_a_bytes_stay(stack, libraries):
    a, b = libraries
    a_key = f"originals/{a.owner}/{a.first('photo')}"
    original = stack.services.originals.get(a_key).data
    ticket = call(stack, b.token, "POST", "/uploads", {}, {"filename": "x.jpg", "content_type": "image/jpeg",
                                                           "size": 10}).json()
    for key in (a_key, f"originals/{a.owner}/{ticket['photo_id']}"):
        fields = ticket["fields"] | {"key": key}
        response = httpx.post(ticket["url"], data=fields, files={"file": ("x.jpg", b"\xff\xd8\xff" + b"0" * 7, "image/jpeg")},
                              timeout=TIMEOUT)
        assert response.status_code == 403, response.text
    assert stack.services.originals.get(a_key).data == original
