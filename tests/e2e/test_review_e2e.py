"""The review queue over the local stack: real sample photos analysed by the CPU models, GET /review through the
API handler, least certain first, owner-scoped, and its answers are POST /feedback bodies."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from photo_organizer.services.review import NEAR_CERTAIN_MARGIN, expected_gain
from photo_organizer.local_stack.analysis_runner import LABEL_MODEL, analyse_library
from photo_organizer.local_stack.client import PhotoApiClient
from photo_organizer.local_stack.events import LambdaContextStub, http_api_event

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
NAMES = ["obama.jpg", "obama2.jpg", "obama3.jpg", "chelsea.png", "rocket.jpg", "coffee.png"]


@pytest.fixture(scope="module")
def library(stack):
    assert (ROOT / LABEL_MODEL).exists(), "run `make label-model` (make test does) to export the label model"
    user, _ = stack.identity.add_user("rita", "rita's long password")
    with PhotoApiClient(stack.url, stack.identity.issue_token(user)) as client:
        ids = {name: client.upload(SAMPLES / name) for name in NAMES}
        for photo_id in ids.values():
            client.wait_until_processed(photo_id)
    analyse_library(stack.settings.data_dir, workers=2, label_model=ROOT / LABEL_MODEL)
    stranger, _ = stack.identity.add_user("sam", "sam's long password")
    return user, stranger, ids


def api(user, method: str, path: str, body: dict | None = None) -> tuple[int, dict | list]:
    from photo_organizer.handlers import api as api_handler

    path, _, query = path.partition("?")
    event = http_api_event(method=method, path=path, query=parse_qsl(query), headers={"content-type": "application/json"},
                           body=json.dumps(body).encode() if body is not None else b"", claims={"sub": user.sub})
    result = api_handler.handler(event, LambdaContextStub())
    return result["statusCode"], json.loads(result["body"]) if result.get("body") else {}


def test_review_ranks_tag_and_face_questions_on_one_expected_gain_scale(library):
    user, _, ids = library
    status, page = api(user, "GET", "/review?limit=100")
    assert status == 200, page
    items = page["items"]
    assert {i["kind"] for i in items} == {"tag", "face"} and page["remaining"] == len(items)
    is_open = [abs(i["confidence"] - 0.5) < NEAR_CERTAIN_MARGIN for i in items]
    assert is_open == sorted(is_open, reverse=True), "near-certain beliefs wait until every open question"
    last = [abs(i["confidence"] - 0.5) for i, o in zip(items, is_open) if not o]
    assert last == sorted(last), "near-certain ones least certain first"
    open_ = [i for i, o in zip(items, is_open) if o]
    gains = [expected_gain(i["confidence"]) for i in open_]
    assert gains and gains[0] == max(gains), "nothing answered yet: the most uncertain question, of either kind, first"
    tags = [i for i in open_ if i["kind"] == "tag"]
    photos = [i["photo_id"] for i in tags]
    first_of_each = list(dict.fromkeys(photos))
    assert photos[: len(first_of_each)] == first_of_each, "each photo's first question before any photo's second"
    labels = [i["tag"] for i in tags[: len(first_of_each)]]
    first_of_label = list(dict.fromkeys(labels))
    assert labels[: len(first_of_label)] == first_of_label, "each label once before any label again"
    assert {i["photo_id"] for i in items} <= set(ids.values())
    faces = [i for i in items if i["kind"] == "face"]
    obama = {ids[n] for n in ("obama.jpg", "obama2.jpg", "obama3.jpg")}
    assert {i["photo_id"] for i in faces} == obama and len({i["person_id"] for i in faces}) == 1
    for item in items:
        yes, no = item["answers"]["yes"], item["answers"]["no"]
        assert yes["origin"] == no["origin"] == "review" and item["question"].startswith("Is this")
        if item["kind"] == "tag":
            assert (yes["type"], no["type"]) == ("tag_confirmed", "tag_rejected") and yes["tag"] == item["tag"]
        else:
            assert (yes["type"], no["type"]) == ("face_assigned", "face_not_person")
            assert (yes["face_id"], yes["person_id"]) == (item["face_id"], item["person_id"])
    assert "owner" not in json.dumps(page)


def test_review_limit_and_kind_filter_and_bad_parameters(library):
    user, _, _ = library
    status, page = api(user, "GET", "/review?limit=2&kind=face")
    assert status == 200 and len(page["items"]) == 2 and {i["kind"] for i in page["items"]} == {"face"}
    assert api(user, "GET", "/review?limit=0")[0] == 422
    assert api(user, "GET", "/review?kind=caption")[0] == 422


def test_another_user_gets_an_empty_queue(library):
    _, stranger, _ = library
    assert api(stranger, "GET", "/review") == (200, {"items": [], "remaining": 0})


def _queue(user) -> list[dict]:
    status, page = api(user, "GET", "/review?limit=100")
    assert status == 200, page
    return page["items"]


def _key(item: dict) -> tuple:
    return item["kind"], item["photo_id"], item["tag"], item["face_id"], item["person_id"]


def test_answering_a_tag_question_through_post_feedback_takes_it_off_the_queue_and_undo_brings_it_back(library):
    user, _, _ = library
    before = _queue(user)
    question = next(i for i in before if i["kind"] == "tag")
    status, record = api(user, "POST", "/feedback", question["answers"]["no"])
    assert status == 201, record
    after = _queue(user)
    assert _key(question) not in {_key(i) for i in after} and len(after) == len(before) - 1
    photo = api(user, "GET", f"/photos/{question['photo_id']}")[1]
    assert question["tag"] not in {t.casefold() for t in photo["analysis"]["tags"]}  # the "no" applied at once
    assert api(user, "DELETE", f"/feedback/{record['feedback_id']}")[0] == 200
    assert _key(question) in {_key(i) for i in _queue(user)}


def test_answering_a_face_question_yes_keeps_the_face_and_takes_the_question_off_until_undone(library):
    user, _, _ = library
    question = next(i for i in _queue(user) if i["kind"] == "face")
    status, record = api(user, "POST", "/feedback", question["answers"]["yes"])
    assert status == 201, record
    assert _key(question) not in {_key(i) for i in _queue(user)}
    person = next(p for p in api(user, "GET", "/people")[1] if p["person_id"] == question["person_id"])
    photos = api(user, "GET", f"/people/{person['person_id']}/photos")[1]["items"]
    assert question["photo_id"] in {p["photo_id"] for p in photos}
    assert api(user, "DELETE", f"/feedback/{record['feedback_id']}")[0] == 200  # its pinned-face correction goes too
    assert _key(question) in {_key(i) for i in _queue(user)}


def test_answering_a_face_question_no_takes_the_face_out_of_the_person_and_off_the_queue(library):
    user, _, _ = library
    question = next(i for i in _queue(user) if i["kind"] == "face")
    status, record = api(user, "POST", "/feedback", question["answers"]["no"])
    assert status == 201, record
    assert _key(question) not in {_key(i) for i in _queue(user)}
    photos = api(user, "GET", f"/people/{question['person_id']}/photos")[1]["items"]
    assert question["photo_id"] not in {p["photo_id"] for p in photos}
    assert api(user, "DELETE", f"/feedback/{record['feedback_id']}")[0] == 200


def test_a_stranger_cannot_answer_someone_elses_question(library):
    user, stranger, _ = library
    question = _queue(user)[0]
    assert api(stranger, "POST", "/feedback", question["answers"]["yes"])[0] == 404
    assert _key(question) in {_key(i) for i in _queue(user)}
