"""Local analysis end to end on the real sample photos: labels, faces → people, places, captions, consent.

Runs the CPU models that ship in packages (the label model is exported by `make` before the tests run).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from photo_organizer.local_stack.analysis_runner import LABEL_MODEL, analyse_library
from photo_organizer.local_stack.client import PhotoApiClient
from photo_organizer.local_stack.events import LambdaContextStub, http_api_event

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
NAMES = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "chelsea.png", "coffee_exif_gps.jpg", "rocket.jpg",
         "coffee_with_text.jpg"]


@pytest.fixture(scope="module")
def analysed(stack):
    assert (ROOT / LABEL_MODEL).exists(), "run `make label-model` (make test does) to export the label model"
    user, _ = stack.identity.add_user("dana", "dana's long password")
    with PhotoApiClient(stack.url, stack.identity.issue_token(user)) as client:
        ids = {name: client.upload(SAMPLES / name) for name in NAMES}
        for photo_id in ids.values():
            client.wait_until_processed(photo_id)
    summary = analyse_library(stack.settings.data_dir, workers=2, label_model=ROOT / LABEL_MODEL)
    return user, ids, summary


def api(stack, user, method: str, path: str, body: dict | None = None) -> tuple[int, dict | list]:
    from photo_organizer.handlers import api as api_handler

    path, _, query = path.partition("?")
    event = http_api_event(method=method, path=path, query=parse_qsl(query), headers={"content-type": "application/json"},
                           body=json.dumps(body).encode() if body is not None else b"", claims={"sub": user.sub})
    result = api_handler.handler(event, LambdaContextStub())
    return result["statusCode"], json.loads(result["body"]) if result.get("body") else {}


def test_every_sample_photo_is_analysed_once(stack, analysed):
    user, ids, summary = analysed
    assert summary.photos == len(NAMES) and not summary.failures
    assert analyse_library(stack.settings.data_dir, workers=1, label_model=ROOT / LABEL_MODEL).photos == 0


def test_labels_places_and_captions_come_from_what_was_found(stack, analysed):
    user, ids, _ = analysed
    cat = api(stack, user, "GET", f"/photos/{ids['chelsea.png']}")[1]["analysis"]
    assert {"Cat", "Animal"} <= set(cat["tags"]) and cat["face_count"] == 0 and not cat["sensitive"]
    coffee = api(stack, user, "GET", f"/photos/{ids['coffee_exif_gps.jpg']}")[1]["analysis"]
    assert coffee["place"].startswith("Madison") and coffee["time_zone"] == "America/Chicago"
    assert "Madison" in coffee["caption"]
    assert all(
        not api(stack, user, "GET", f"/photos/{photo_id}")[1]["analysis"]["sensitive"] for photo_id in ids.values()
    ), "nothing sensitive on ordinary photos"


def test_faces_of_the_same_person_become_one_person_and_naming_shows_in_captions(stack, analysed):
    user, ids, _ = analysed
    status, people = api(stack, user, "GET", "/people")
    assert status == 200 and len(people) == 1, "three Obama photos form a person; one Biden face is not yet one"
    obama = people[0]
    assert obama["photo_count"] == 3
    status, page = api(stack, user, "GET", f"/people/{obama['person_id']}/photos")
    assert {p["photo_id"] for p in page["items"]} == {ids["obama.jpg"], ids["obama2.jpg"], ids["obama3.jpg"]}
    status, named = api(stack, user, "PATCH", f"/people/{obama['person_id']}", {"name": "Barack"})
    assert status == 200 and named["name"] == "Barack"
    detail = api(stack, user, "GET", f"/photos/{ids['obama2.jpg']}")[1]["analysis"]
    assert detail["people"] == [{"person_id": obama["person_id"], "name": "Barack"}]
    assert detail["caption"].startswith("Barack")


def search(stack, user, query: str = "", **params) -> tuple[int, dict]:
    from urllib.parse import urlencode

    pairs = [("q", query)] + [(k, v) for k, v in params.items()]
    return api(stack, user, "GET", "/search?" + urlencode(pairs))


def test_search_by_tag_place_date_person_and_text(stack, analysed):
    user, ids, _ = analysed
    status, cats = search(stack, user, "cat")
    assert status == 200 and cats["items"][0]["photo_id"] == ids["chelsea.png"]
    assert any(m["field"] == "tags" for m in cats["items"][0]["matched"]), (cats["chips"], cats["items"][0])
    madison = search(stack, user, "cup in Madison")[1]
    assert [i["photo_id"] for i in madison["items"]][:1] == [ids["coffee_exif_gps.jpg"]]
    assert {c["kind"] for c in madison["chips"]} >= {"place"}
    in_2012 = search(stack, user, "photos from 2012")[1]
    assert [i["photo_id"] for i in in_2012["items"]] == [ids["obama.jpg"]]
    person = api(stack, user, "GET", "/people")[1][0]
    api(stack, user, "PATCH", f"/people/{person['person_id']}", {"name": "Barack"})  # naming is idempotent
    barack = search(stack, user, "Barack")[1]
    assert {i["photo_id"] for i in barack["items"]} == {ids["obama.jpg"], ids["obama2.jpg"], ids["obama3.jpg"]}, [(i["filename"], i["matched"], i["semantic_only"]) for i in barack["items"]]
    assert any(c["kind"] == "person" for c in barack["chips"])


def test_text_in_a_photo_is_read_and_searchable(stack, analysed):
    user, ids, _ = analysed
    detail = api(stack, user, "GET", f"/photos/{ids['coffee_with_text.jpg']}")[1]["analysis"]
    assert any("Latte" in line for line in detail["text"]) and "Text" in detail["tags"]
    latte = search(stack, user, "latte")[1]
    assert latte["items"][0]["photo_id"] == ids["coffee_with_text.jpg"]
    assert any(m["field"] == "ocr_text" for m in latte["items"][0]["matched"])


def test_search_finds_by_meaning_and_says_so(stack, analysed):
    user, ids, _ = analysed
    kitty = search(stack, user, "pussycat")[1]  # no word of the analysis: found by meaning only
    top = kitty["items"][0]
    assert top["photo_id"] == ids["chelsea.png"] and top["semantic_only"] and kitty["semantic"] in ("on", "degraded")
    assert kitty["meaning"] == "added"  # after the exact hits, which were few (none here)
    kitten = search(stack, user, "kitten")[1]  # a synonym of the library's tag: an exact, understood match
    assert kitten["items"][0]["photo_id"] == ids["chelsea.png"] and not kitten["items"][0]["semantic_only"]
    assert [c["value"] for c in kitten["chips"] if c["kind"] == "tag"] == ["cat"]


def test_search_is_owner_scoped_injection_safe_and_pages_with_signed_cursors(stack, analysed):
    user, ids, _ = analysed
    other, _ = stack.identity.add_user("eve", "eve's long password")
    assert search(stack, other, "cat")[1]["items"] == [] and search(stack, other, "")[1]["facets"].get("tags", []) == []
    for hostile in ['tag:* OR owner:x', '"unterminated (', "*", "NOT cat", "owner:" + user.sub]:
        status, body = search(stack, user, hostile)
        assert status == 200, hostile
    status, first = search(stack, user, "", limit=2, sort="newest")
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = search(stack, user, "", limit=2, sort="newest", cursor=first["next_cursor"])[1]
    assert not {i["photo_id"] for i in first["items"]} & {i["photo_id"] for i in second["items"]}
    assert search(stack, other, "", limit=2, sort="newest", cursor=first["next_cursor"])[0] == 400
    assert search(stack, user, "cat", limit=2, sort="newest", cursor=first["next_cursor"])[0] == 400
    forged = first["next_cursor"][:-4] + ("AAAA" if not first["next_cursor"].endswith("AAAA") else "BBBB")
    assert search(stack, user, "", limit=2, sort="newest", cursor=forged)[0] == 400


def test_suggestions_and_facets_come_from_the_owners_library(stack, analysed):
    user, ids, _ = analysed
    status, found = api(stack, user, "GET", "/search/suggest?prefix=ca")
    assert status == 200 and "cat" in [v["value"] for v in found.get("tags", [])]
    facets = search(stack, user, "")[1]["facets"]
    assert {"cat", "person"} <= {v["value"] for v in facets["tags"]}


def test_withdrawing_consent_deletes_faces_and_people_verifiably(stack, analysed):
    user, ids, _ = analysed
    status, view = api(stack, user, "PUT", "/settings/biometrics", {"biometric_consent": False})
    assert status == 200 and view["biometric_consent"] is False and view["forgotten"]["faces"] >= 4
    assert api(stack, user, "GET", "/people")[1] == []
    people_store = stack.services.people_store
    assert people_store.faces(user.sub) == [] and people_store.constraints(user.sub) == []
