"""Feedback on the local backend (SQLite stores, the tantivy index, the dataset files), through the API handler:
validation, immediacy (the photo view and search change in the same request), isolation, undo, face events and
the dataset lines. The tagging model's suggestions come from an in-memory SuggestionStore."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from photo_organizer.analysis.captions import compose_caption
from photo_organizer.analysis.models import AnalysisResult, AnalysisSource, BoundingBox, FaceDetection, Label
from photo_organizer.analysis.store import PhotoAnalysis, StoredPlace
from photo_organizer.bootstrap import Services, build_services, use_services
from photo_organizer.feedback.dataset import record_from_line
from photo_organizer.feedback.models import TagSuggestion
from photo_organizer.local_stack.events import LambdaContextStub, http_api_event
from photo_organizer.models import ImageFormat, ImageMetadata, Photo, PhotoStatus, utcnow
from photo_organizer.people.models import Person
from photo_organizer.people.store import StoredFace
from photo_organizer.settings import Settings

ALICE, BOB = "alice-sub", "bob-sub"
TAKEN = datetime(2024, 5, 17, 10, 0, tzinfo=timezone.utc)
CAT_LABELS = (
    Label(name="Cat", confidence=95, parents=("Animal", "Pet")),
    Label(name="Beach", confidence=90),
)
DOG_LABELS = (Label(name="Dog", confidence=93, parents=("Animal", "Pet")),)
PLACE = StoredPlace(city="Lagos", country="Portugal", country_code="PT", lat=37.1, lon=-8.67)


class MemorySuggestions:
    """SuggestionStore in memory (the retrain part builds the real adapters)."""

    def __init__(self) -> None:
        self.by_photo: dict[tuple[str, str], list[TagSuggestion]] = {}

    def replace_suggestions(self, owner, photo_id, suggestions):
        self.by_photo[(owner, photo_id)] = list(suggestions)

    def suggestions(self, owner, photo_id):
        return list(self.by_photo.get((owner, photo_id), []))

    def all_suggestions(self, owner):
        return {p: list(s) for (o, p), s in self.by_photo.items() if o == owner and s}


def _photo(services: Services, owner: str, photo_id: str, labels: tuple[Label, ...], *, faces: int = 0) -> None:
    now = utcnow()
    pending = Photo(owner=owner, photo_id=photo_id, status=PhotoStatus.PENDING_UPLOAD, filename="IMG_0001.jpg",
                    declared_content_type="image/jpeg", declared_size=10, created_at=now, updated_at=now)
    metadata = ImageMetadata(format=ImageFormat.JPEG, width=10, height=10, byte_size=10, sha256=hashlib.sha256(photo_id.encode()).hexdigest(),
                             phash="0" * 16, taken_at=TAKEN)
    services.metadata.create_photo(pending, pending_ttl=timedelta(days=1))
    services.metadata.finish_photo(pending.model_copy(update={"status": PhotoStatus.READY, "metadata": metadata}),
                                   expected_status=PhotoStatus.PENDING_UPLOAD)
    detections = tuple(
        FaceDetection(box=BoundingBox(left=0.1 * i, top=0.1, width=0.1, height=0.1), confidence=99,
                      face_handle=f"{photo_id}-f{i}")
        for i in range(faces)
    )
    result = AnalysisResult(photo_id=photo_id, analysis_version=1, analysed_at=now, source=AnalysisSource.LOCAL,
                            labels=labels, faces=detections)
    caption = compose_caption([None] * faces, list(labels), PLACE.short_name, TAKEN)
    assert services.analysis.save(PhotoAnalysis(owner=owner, result=result, caption=caption, place=PLACE,
                                                local_taken_at=TAKEN))


@pytest.fixture
def env(tmp_path: Path):
    services = build_services(Settings(data_dir=tmp_path))
    assert services.search is not None and services.feedback is not None
    services.search.embed = None  # keywords only: these tests are about tags and captions, not meaning
    suggestions = MemorySuggestions()
    services.photos.suggestions = suggestions
    services.search.suggestions = suggestions
    _photo(services, ALICE, "p-cat", CAT_LABELS)
    _photo(services, ALICE, "p-dog", DOG_LABELS)
    _photo(services, BOB, "p-bob", CAT_LABELS)
    services.search.index_owner(ALICE)
    services.search.index_owner(BOB)
    use_services(services)
    yield services, suggestions, tmp_path
    use_services(None)


def api(owner: str, method: str, path: str, body: dict | None = None, *,
        key: str | None = None) -> tuple[int, dict | list]:
    from photo_organizer.handlers import api as api_handler

    path, _, query = path.partition("?")
    headers = {"content-type": "application/json", **({"idempotency-key": key} if key else {})}
    event = http_api_event(method=method, path=path, query=parse_qsl(query), headers=headers,
                           body=json.dumps(body).encode() if body is not None else b"", claims={"sub": owner})
    result = api_handler.handler(event, LambdaContextStub())
    return int(result["statusCode"]), json.loads(result["body"]) if result.get("body") else {}


def found(owner: str, query: str = "", **params: str) -> set[str]:
    from urllib.parse import urlencode

    status, body = api(owner, "GET", "/search?" + urlencode([("q", query), *params.items()]))
    assert status == 200, body
    return {item["photo_id"] for item in body["items"]}


def view(owner: str, photo_id: str) -> dict:
    status, body = api(owner, "GET", f"/photos/{photo_id}")
    assert status == 200, body
    return body["analysis"]


def dataset_lines(data_dir: Path) -> list:
    return [record_from_line(line) for path in sorted((data_dir / "datasets").glob("feedback/date=*/*.jsonl"))
            for line in path.read_text().splitlines()]


# ---- validation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        ({"type": "tag_liked", "photo_id": "p-cat", "tag": "cat"}, ["body", "type"], "union_tag_invalid"),
        ({"photo_id": "p-cat", "tag": "cat"}, ["body", "type"], "union_tag_not_found"),
        ({"type": "undo", "photo_id": "p-cat"}, ["body", "type"], "union_tag_invalid"),
        ({"type": "tag_added", "photo_id": "p-cat"}, ["body", "tag_added", "tag"], "missing"),
        ({"type": "tag_added", "photo_id": "p-cat", "tag": "x", "owner": BOB}, ["body", "tag_added", "owner"],
         "extra_forbidden"),
        ({"type": "tag_added", "photo_id": "p-cat", "tag": "a\u202eb"}, ["body", "tag_added", "tag"], "value_error"),
        ({"type": "search_irrelevant", "photo_id": "p-cat", "query": "cat", "rank": 0},
         ["body", "search_irrelevant", "rank"], "greater_than_equal"),
        ({"type": "face_assigned", "face_id": "f/../x", "person_id": "p"}, ["body", "face_assigned", "face_id"],
         "string_pattern_mismatch"),
    ],
    ids=["unknown-type", "no-type", "undo-posted", "missing-tag", "extra-field", "bidi-tag", "rank-0", "bad-id"],
)
def test_malformed_feedback_is_422_naming_the_field_and_nothing_is_recorded(env, body, loc, kind):
    services, _, data_dir = env
    status, answer = api(ALICE, "POST", "/feedback", body)
    assert status == 422, answer
    assert {"loc": loc, "type": kind} in answer["detail"], answer
    assert services.feedback_store.events(ALICE) == [] and dataset_lines(data_dir) == []


# ---- immediacy ---------------------------------------------------------------------------------------------------


def test_a_rejected_tag_leaves_the_photo_its_caption_and_search_at_once_and_undo_brings_it_back(env):
    assert found(ALICE, tag="cat") == {"p-cat"}
    before = view(ALICE, "p-cat")
    assert before["caption"] == "A cat on a beach in Lagos, Portugal · May 2024"
    assert {"Cat", "Animal", "Pet", "Beach"} <= set(before["tags"])

    status, event = api(ALICE, "POST", "/feedback", {"type": "tag_rejected", "photo_id": "p-cat", "tag": "Cat"})
    assert status == 201 and event["tag"] == "cat" and "owner" not in event

    after = view(ALICE, "p-cat")
    assert after["tags"] == ["Beach"], "the cat and the parents only it brought are gone"
    assert after["caption"] == "A beach in Lagos, Portugal · May 2024", "recomposed without the cat"
    assert found(ALICE, tag="cat") == set() and found(ALICE, "cat") == set()
    assert found(ALICE, tag="animal") == {"p-dog"}
    assert found(ALICE, tag="beach") == {"p-cat"}

    status, undo = api(ALICE, "DELETE", f"/feedback/{event['feedback_id']}")
    assert status == 200 and undo["type"] == "undo" and undo["undoes"] == event["feedback_id"]
    assert view(ALICE, "p-cat") == before
    assert found(ALICE, tag="cat") == {"p-cat"}


def test_a_custom_tag_is_on_the_photo_and_searchable_at_once(env):
    assert found(ALICE, "grandma's house") == set()
    status, _ = api(ALICE, "POST", "/feedback", {"type": "tag_added", "photo_id": "p-dog", "tag": "Grandma's  House"})
    assert status == 201
    assert "grandma's house" in view(ALICE, "p-dog")["tags"]
    assert found(ALICE, "grandma's house") == {"p-dog"}
    assert found(ALICE, tag="grandma's house") == {"p-dog"}
    assert found(BOB, "grandma's house") == set(), "another user's tags are not yours"


def test_a_rejected_caption_is_empty_in_the_view_and_in_search_until_undone(env):
    services, _, _ = env
    assert found(ALICE, "lagos") == {"p-cat", "p-dog"}
    status, event = api(ALICE, "POST", "/feedback", {"type": "caption_rejected", "photo_id": "p-cat"})
    assert status == 201
    assert view(ALICE, "p-cat")["caption"] == ""
    document = services.search.document(services.metadata.get_photo(ALICE, "p-cat"))
    assert document is not None and document.caption == "" and "cat" in document.tags
    api(ALICE, "DELETE", f"/feedback/{event['feedback_id']}")
    assert view(ALICE, "p-cat")["caption"].startswith("A cat")


def test_a_photo_marked_irrelevant_leaves_that_query_only_and_relevant_brings_it_back(env):
    assert found(ALICE, "animal") == {"p-cat", "p-dog"}
    status, _ = api(ALICE, "POST", "/feedback",
                    {"type": "search_irrelevant", "photo_id": "p-dog", "query": "  ANIMAL ", "rank": 2})
    assert status == 201
    assert found(ALICE, "animal") == {"p-cat"}
    assert found(ALICE, "pet") == {"p-cat", "p-dog"}, "other queries still find it"
    status, _ = api(ALICE, "POST", "/feedback",
                    {"type": "search_relevant", "photo_id": "p-dog", "query": "animal", "rank": 1})
    assert status == 201
    assert found(ALICE, "animal") == {"p-cat", "p-dog"}


def test_suggestions_suppress_doubted_tags_and_show_likely_ones_unless_the_user_decided(env):
    services, suggestions, _ = env
    suggestions.replace_suggestions(ALICE, "p-cat", [
        TagSuggestion(tag="beach", confidence=0.05, on_photo=True),
        TagSuggestion(tag="grandma's house", confidence=0.81),
        TagSuggestion(tag="sofa", confidence=0.3),
    ])
    services.search.index_photos(ALICE, ["p-cat"])
    shown = view(ALICE, "p-cat")
    assert "Beach" not in shown["tags"] and shown["caption"] == "A cat in Lagos, Portugal · May 2024"
    assert shown["suggested_tags"] == [{"tag": "grandma's house", "confidence": 0.81}]
    assert found(ALICE, tag="beach") == set() and found(ALICE, "grandma's house") == set()

    api(ALICE, "POST", "/feedback", {"type": "tag_confirmed", "photo_id": "p-cat", "tag": "beach"})
    api(ALICE, "POST", "/feedback", {"type": "tag_added", "photo_id": "p-cat", "tag": "grandma's house",
                                     "origin": "review"})
    shown = view(ALICE, "p-cat")
    assert "Beach" in shown["tags"] and "grandma's house" in shown["tags"] and shown["suggested_tags"] == []
    assert found(ALICE, tag="beach") == {"p-cat"} and found(ALICE, "grandma's house") == {"p-cat"}


# ---- isolation ---------------------------------------------------------------------------------------------------


def _faces_and_people(services: Services) -> None:
    now = utcnow()
    faces = [StoredFace(face_id=f"{photo}-f0", owner=owner, photo_id=photo,
                        box=BoundingBox(left=0.1, top=0.1, width=0.1, height=0.1), quality=0.9, created_at=now)
             for owner, photo in ((ALICE, "p-cat"), (ALICE, "p-dog"), (BOB, "p-bob"))]
    services.people_store.save_faces(faces)
    services.people_store.replace_people(ALICE, [
        Person(person_id="ana", owner=ALICE, name="Ana", face_ids=frozenset({"p-cat-f0", "p-dog-f0"})),
        Person(person_id="rui", owner=ALICE, name="Rui"),
    ])
    services.people_store.replace_people(BOB, [Person(person_id="bea", owner=BOB, name="Bea",
                                                      face_ids=frozenset({"p-bob-f0"}))])
    services.search.index_owner(ALICE)


def test_anything_of_another_user_or_deleted_is_404_and_nothing_is_recorded(env):
    services, _, data_dir = env
    _faces_and_people(services)
    status, alices = api(ALICE, "POST", "/feedback", {"type": "tag_added", "photo_id": "p-cat", "tag": "mine"})
    assert status == 201
    bob_before = (services.people_store.people(BOB), services.people_store.constraints(BOB))
    attempts = [
        ("POST", "/feedback", {"type": "tag_rejected", "photo_id": "p-cat", "tag": "cat"}),
        ("POST", "/feedback", {"type": "caption_rejected", "photo_id": "p-cat"}),
        ("POST", "/feedback", {"type": "search_irrelevant", "photo_id": "p-cat", "query": "cat", "rank": 1}),
        ("POST", "/feedback", {"type": "face_assigned", "face_id": "p-cat-f0", "person_id": "bea"}),
        ("POST", "/feedback", {"type": "face_assigned", "face_id": "p-bob-f0", "person_id": "ana"}),
        ("POST", "/feedback", {"type": "face_not_person", "face_id": "p-bob-f0", "person_id": "rui"}),
        ("POST", "/faces/p-cat-f0/move", {"person_id": "bea"}),
        ("POST", "/faces/p-bob-f0/not-person", {"person_id": "ana"}),
        ("GET", "/feedback?photo_id=p-cat", None),
        ("DELETE", f"/feedback/{alices['feedback_id']}", None),
        ("DELETE", "/feedback/" + "0" * 32, None),
        ("DELETE", "/feedback/..%2F..%2Fetc", None),
    ]
    for method, path, body in attempts:
        status, answer = api(BOB, method, path, body)
        assert (status, answer) == (404, {"code": "not_found", "message": "Not found."}), (method, path, answer)
    assert services.feedback_store.events(BOB) == []
    assert [r.feedback_id for r in services.feedback_store.events(ALICE)] == [alices["feedback_id"]]
    assert services.feedback_store.get(ALICE, alices["feedback_id"]).undone_at is None
    assert (services.people_store.people(BOB), services.people_store.constraints(BOB)) == bob_before
    assert {p.person_id: p.face_ids for p in services.people_store.people(ALICE)}["ana"] == {"p-cat-f0", "p-dog-f0"}
    assert [r.feedback_id for r in dataset_lines(data_dir)] == [alices["feedback_id"]]

    services.photos.delete(ALICE, "p-dog")
    status, _ = api(ALICE, "POST", "/feedback", {"type": "tag_added", "photo_id": "p-dog", "tag": "gone"})
    assert status == 404
    assert len(services.feedback_store.events(ALICE)) == 1


def test_deleting_a_photo_forgets_its_feedback_but_not_its_dataset_lines(env):
    services, _, data_dir = env
    api(ALICE, "POST", "/feedback", {"type": "tag_added", "photo_id": "p-dog", "tag": "rex"})
    services.photos.delete(ALICE, "p-dog")
    assert services.feedback_store.events(ALICE) == [] and services.feedback_store.overlays(ALICE) == {}
    assert [r.tag for r in dataset_lines(data_dir)] == ["rex"]


# ---- undo ----------------------------------------------------------------------------------------------------------


def test_an_undo_cannot_be_undone_and_an_event_is_undone_once(env):
    _, _, data_dir = env
    _, event = api(ALICE, "POST", "/feedback", {"type": "tag_rejected", "photo_id": "p-dog", "tag": "dog"})
    status, undo = api(ALICE, "DELETE", f"/feedback/{event['feedback_id']}")
    assert status == 200
    assert api(ALICE, "DELETE", f"/feedback/{undo['feedback_id']}") == (
        409, {"code": "undo_refused", "message": "an undo cannot be undone"})
    status, again = api(ALICE, "DELETE", f"/feedback/{event['feedback_id']}")
    assert (status, again["code"]) == (409, "already_undone")
    status, listed = api(ALICE, "GET", "/feedback?photo_id=p-dog")
    assert status == 200 and [(e["type"], e["undone_at"] is not None) for e in listed] == [("tag_rejected", True)]
    lines = dataset_lines(data_dir)
    assert [(r.type.value, r.undoes) for r in lines] == [("tag_rejected", None), ("undo", event["feedback_id"])]


def test_the_last_word_on_a_tag_wins_and_undoing_it_restores_the_one_before(env):
    _, rejected = api(ALICE, "POST", "/feedback", {"type": "tag_rejected", "photo_id": "p-dog", "tag": "dog"})
    _, confirmed = api(ALICE, "POST", "/feedback", {"type": "tag_confirmed", "photo_id": "p-dog", "tag": "dog"})
    assert "Dog" in view(ALICE, "p-dog")["tags"]
    api(ALICE, "DELETE", f"/feedback/{confirmed['feedback_id']}")
    assert "Dog" not in view(ALICE, "p-dog")["tags"] and found(ALICE, tag="dog") == set()
    api(ALICE, "DELETE", f"/feedback/{rejected['feedback_id']}")
    assert "Dog" in view(ALICE, "p-dog")["tags"] and found(ALICE, tag="dog") == {"p-dog"}


# ---- faces -----------------------------------------------------------------------------------------------------


def test_moving_a_face_is_recorded_as_face_assigned_and_undo_moves_it_back(env):
    services, _, data_dir = env
    _faces_and_people(services)
    status, person = api(ALICE, "POST", "/faces/p-cat-f0/move", {"person_id": "rui"})
    assert status == 200 and person["person_id"] == "rui" and person["face_count"] == 1  # response unchanged
    [event] = services.feedback_store.events(ALICE)
    assert (event.type.value, event.origin.value, event.previous_person_id, event.photo_id) == (
        "face_assigned", "people", "ana", "p-cat")
    assert len(services.people_store.constraints(ALICE)) == 2  # pinned to rui, not ana any more

    status, _ = api(ALICE, "DELETE", f"/feedback/{event.feedback_id}")
    assert status == 200
    people = {p.person_id: p.face_ids for p in services.people_store.people(ALICE)}
    assert people["ana"] == {"p-cat-f0", "p-dog-f0"} and "p-cat-f0" not in people.get("rui", set())
    assert services.people_store.constraints(ALICE) == []
    assert [r.type.value for r in dataset_lines(data_dir)] == ["face_assigned", "undo"]


def test_not_this_person_through_feedback_and_its_undo_removes_the_correction(env):
    services, _, _ = env
    _faces_and_people(services)
    status, event = api(ALICE, "POST", "/feedback",
                        {"type": "face_not_person", "face_id": "p-dog-f0", "person_id": "ana", "origin": "review"})
    assert status == 201 and event["previous_person_id"] == "ana" and "constraint_id" not in event
    assert {p.person_id: p.face_ids for p in services.people_store.people(ALICE)}["ana"] == {"p-cat-f0"}
    assert found(ALICE, "Ana") == {"p-cat"}
    assert len(services.people_store.constraints(ALICE)) == 1

    api(ALICE, "DELETE", f"/feedback/{event['feedback_id']}")
    assert services.people_store.constraints(ALICE) == []
    assert {p.person_id: p.face_ids for p in services.people_store.people(ALICE)}["ana"] == {"p-cat-f0", "p-dog-f0"}
    assert found(ALICE, "Ana") == {"p-cat", "p-dog"}


def test_the_not_person_endpoint_keeps_its_204_and_records_the_event(env):
    services, _, _ = env
    _faces_and_people(services)
    assert api(ALICE, "POST", "/faces/p-dog-f0/not-person", {"person_id": "ana"}) == (204, {})
    [event] = services.feedback_store.events(ALICE)
    assert (event.type.value, event.origin.value, event.face_id, event.person_id) == (
        "face_not_person", "people", "p-dog-f0", "ana")


def test_concurrent_tags_on_one_photo_all_reach_its_overlay(env):
    """The local gateway answers on threads: events folded one at a time per photo lose nothing."""
    import threading

    services, _, _ = env
    tags = [f"tag {i}" for i in range(12)]
    threads = [threading.Thread(target=api, args=(ALICE, "POST", "/feedback",
                                                  {"type": "tag_added", "photo_id": "p-cat", "tag": tag}))
               for tag in tags]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert services.feedback_store.overlay(ALICE, "p-cat").added == frozenset(tags)
    assert set(tags) <= set(view(ALICE, "p-cat")["tags"])


# ---- retries: idempotency keys ---------------------------------------------------------------------------------

KEY = "6f1c2a8e-5b1d-4c1e-9a57-2f0e8d3b7c11"


def test_a_keyed_correction_sent_twice_is_one_event_and_both_answers_name_it(env):
    services, _, data_dir = env
    body = {"type": "tag_added", "photo_id": "p-cat", "tag": "grandma's house"}
    first = api(ALICE, "POST", "/feedback", body, key=KEY)
    again = api(ALICE, "POST", "/feedback", body, key=KEY)
    assert first[0] == again[0] == 201 and first[1] == again[1]
    assert [e.feedback_id for e in services.feedback_store.events(ALICE)] == [first[1]["feedback_id"]]
    assert len(dataset_lines(data_dir)) == 1
    assert found(ALICE, "grandma's house") == {"p-cat"}


def test_a_key_names_one_correction_per_user(env):
    services, _, _ = env
    assert api(ALICE, "POST", "/feedback", {"type": "tag_added", "photo_id": "p-cat", "tag": "kitten"}, key=KEY)[0] == 201
    status, body = api(ALICE, "POST", "/feedback", {"type": "tag_added", "photo_id": "p-dog", "tag": "kitten"},
                       key=KEY)
    assert (status, body["code"]) == (409, "idempotency_key_reused")
    assert found(ALICE, "kitten") == {"p-cat"}  # the refused one changed nothing
    status, body = api(BOB, "POST", "/feedback", {"type": "tag_added", "photo_id": "p-bob", "tag": "kitten"}, key=KEY)
    assert status == 201  # another user's equal key is another event
    assert {e.owner for e in services.feedback_store.events(BOB)} == {BOB}
    assert body["feedback_id"] != services.feedback_store.events(ALICE)[0].feedback_id


@pytest.mark.parametrize("key", ["short", "x" * 129, "white space-1234", "slash/1234567"])
def test_a_malformed_idempotency_key_is_422_naming_the_header_and_nothing_is_recorded(env, key):
    services, _, _ = env
    status, body = api(ALICE, "POST", "/feedback", {"type": "tag_added", "photo_id": "p-cat", "tag": "x"}, key=key)
    assert status == 422 and body["detail"][0]["loc"] == ["header", "idempotency-key"]
    assert services.feedback_store.events(ALICE) == []


def test_a_move_throttled_after_it_was_recorded_completes_on_its_keyed_retry_and_its_undo_puts_the_face_back(
        env, monkeypatch):
    """The face's move fails after the event was stored (a throttled people write). The retry with the same key
    finds that event, which knows where the face was, and completes the move; one event, and its undo works. Without
    the event first, the retry read the face's new person as its previous one and the undo left it there."""
    from photo_organizer.errors import StorageUnavailableError

    services, _, _ = env
    _faces_and_people(services)
    people = services.people
    reassign = people._reassign
    failures = iter([StorageUnavailableError("throttled")])

    def throttled_once(*args, **kwargs):
        failure = next(failures, None)
        if failure is not None:
            reassign(*args, **kwargs)  # the people write went through, its answer was lost
            raise failure
        return reassign(*args, **kwargs)

    monkeypatch.setattr(people, "_reassign", throttled_once)
    assert api(ALICE, "POST", "/faces/p-cat-f0/move", {"person_id": "rui"}, key=KEY)[0] == 503
    status, person = api(ALICE, "POST", "/faces/p-cat-f0/move", {"person_id": "rui"}, key=KEY)
    assert status == 200 and person["face_count"] == 1
    [event] = services.feedback_store.events(ALICE)
    assert event.previous_person_id == "ana"

    assert api(ALICE, "DELETE", f"/feedback/{event.feedback_id}")[0] == 200
    assert {p.person_id: p.face_ids for p in services.people_store.people(ALICE)}["ana"] == {"p-cat-f0", "p-dog-f0"}
    assert services.people_store.constraints(ALICE) == []


def test_not_this_person_whose_recording_failed_is_done_once_on_its_keyed_retry_and_undo_restores_the_face(
        env, monkeypatch):
    """The event's write fails (throttled). Done the other way round, the face had already left the person, so the
    retry recorded "it was not in that person" and the undo never put it back."""
    from photo_organizer.errors import StorageUnavailableError

    services, _, _ = env
    _faces_and_people(services)
    store = services.people_store
    record = services.feedback_store.record
    failures = iter([StorageUnavailableError("throttled")])

    def throttled_once(*args, **kwargs):
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return record(*args, **kwargs)

    monkeypatch.setattr(services.feedback_store, "record", throttled_once)
    body = {"type": "face_not_person", "face_id": "p-dog-f0", "person_id": "ana"}
    assert api(ALICE, "POST", "/feedback", body, key=KEY)[0] == 503
    status, event = api(ALICE, "POST", "/feedback", body, key=KEY)
    assert status == 201 and event["previous_person_id"] == "ana"
    assert len(store.constraints(ALICE)) == 1
    assert {p.person_id: p.face_ids for p in store.people(ALICE)}["ana"] == {"p-cat-f0"}

    assert api(ALICE, "DELETE", f"/feedback/{event['feedback_id']}")[0] == 200
    assert store.constraints(ALICE) == []
    assert {p.person_id: p.face_ids for p in store.people(ALICE)}["ana"] == {"p-cat-f0", "p-dog-f0"}
