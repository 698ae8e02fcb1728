"""Issue 12 through the real search service and the local index: understood tags and places rank instead of
filtering (strict reading first, a visible relaxation when it finds nothing), UI picks and people stay hard
filters, synonyms reach tags, words inside OCR runs are found, a relaxed reading ranks the photos that satisfy more
of the phrase first, and meaning search reads the words of a file name a person gave."""

from __future__ import annotations

import pytest

from photo_organizer.bootstrap import build_services
from photo_organizer.services.search import SearchFilters
from photo_organizer.settings import Settings
from test_search_relevance import NOW, OWNER, add_photo, save_analysis  # same folder (rootdir import)

# name: (tags, people, place, taken, text)
LIBRARY = {
    "tram_lisbon": (["Tram"], [], "Lisbon", "2023-05-02", ""),
    "dog_sign": (["Dog"], [], None, "2024-03-03", "BEM VINDO A LISBON"),  # place only in the photo's text
    "dog_grass": (["Dog", "Grass"], [], "Madison", "2024-06-06", ""),
    "cat_sofa": (["Cat"], [], None, "2025-01-01", ""),
    "beach_day": (["Beach"], ["Ana"], "Lagos", "2022-07-07", ""),
    "street_notice": (["Sign"], [], None, "2024-09-09", "NOPARKINGANYTIME"),
    "cafe_table": (["Coffee"], [], None, "2024-10-10", "PIKOLOESPRESSOBAR"),
    "ana_home": (["Sofa"], ["Ana"], None, "2021-02-02", ""),
    # what a weak classifier guessed for the Hubble Deep Field; the file name says what it shows
    "hubble_deep_field": (["Electronics"], [], None, "2012-09-25", ""),
    "IMG_2034": (["Electronics"], [], None, "2012-09-26", ""),  # a camera's name says nothing
    "bakery_wall": (["Text"], [], None, "2024-11-11", "FRESHBREADDAILY"),
}


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    from datetime import datetime, timezone

    from photo_organizer.analysis.models import BoundingBox
    from photo_organizer.people import Person
    from photo_organizer.people.store import StoredFace

    services = build_services(Settings(data_dir=tmp_path_factory.mktemp("interpretation")))
    ids, faces = {}, set()
    for index, (name, (tags, who, place, taken, text)) in enumerate(LIBRARY.items()):
        photo_id = f"{index:02d}{name.replace('_', '')}"[:32]
        ids[name] = photo_id
        add_photo(services, OWNER, photo_id, name, taken)
        save_analysis(services, OWNER, photo_id, tags, who, place, taken, text, False)
        for n, _ in enumerate(who):
            face_id = f"{photo_id}-f{n}"
            services.people_store.save_faces([StoredFace(
                face_id=face_id, owner=OWNER, photo_id=photo_id,
                box=BoundingBox(left=0.1, top=0.1, width=0.2, height=0.2), quality=0.9,
                created_at=datetime.now(timezone.utc), descriptor=None)])
            faces.add(face_id)
    services.people_store.replace_people(OWNER, [Person(person_id="person-ana", owner=OWNER, name="Ana",
                                                        face_ids=frozenset(faces), cover_face_id=min(faces))])
    services.search.now = lambda: NOW
    services.search.index_owner(OWNER)
    return services, ids


def search(library, text: str, **filters):
    services, ids = library
    names = {v: k for k, v in ids.items()}
    response = services.search.search(OWNER, text, SearchFilters(**filters), limit=20)
    return [names[item.photo_id] for item in response.items], response


def test_an_understood_place_that_is_only_in_the_photos_text_still_finds_it(library):
    found, response = search(library, "dog in Lisbon")
    assert found == ["dog_sign"]  # before: tag AND place filters, and the sign's photo has no geocoded place
    assert {c.kind for c in response.chips} >= {"tag", "place"} and response.relaxed == []
    reasons = {m.field for m in response.items[0].matched}
    assert {"tags", "ocr_text"} <= reasons


def test_understood_tags_rank_the_keyword_match_first(library):
    found, _ = search(library, "Lisbon")
    assert found[0] == "tram_lisbon" and "dog_sign" in found  # the geocoded place first, then the sign


def test_a_strict_reading_that_finds_nothing_relaxes_visibly(library):
    found, response = search(library, "cat at the beach")
    assert set(found) == {"cat_sofa", "beach_day"}
    assert response.relaxed == ["cat", "beach"]
    assert all(c.relaxed for c in response.chips if c.kind in ("tag", "place", "text"))


def test_a_strict_reading_that_finds_something_is_not_relaxed(library):
    found, response = search(library, "dog on the grass")
    assert found == ["dog_grass"] and response.relaxed == []


def test_ui_picked_tags_stay_hard_filters(library):
    found, response = search(library, "beach", tag=["cat"])
    assert found == [] and response.relaxed == []
    assert search(library, "", tag=["dog"])[0] and set(search(library, "", tag=["dog"])[0]) == {"dog_sign", "dog_grass"}


def test_people_in_the_phrase_stay_hard_filters(library):
    found, _ = search(library, "Ana")
    assert set(found) == {"beach_day", "ana_home"}
    found, _ = search(library, "Ana with a cat")
    assert set(found) <= {"beach_day", "ana_home"}  # relaxing never drops the person


def test_a_synonym_reaches_the_tag(library):
    found, response = search(library, "puppy")
    assert set(found) == {"dog_sign", "dog_grass"}
    assert [c.value for c in response.chips if c.kind == "tag"] == ["dog"]


@pytest.mark.parametrize(("word", "expected"), [("parking", "street_notice"), ("anytime", "street_notice"),
                                                ("espresso", "cafe_table"), ("pikolo", "cafe_table")])
def test_a_word_inside_an_ocr_run_is_found_and_explained(library, word, expected):
    found, response = search(library, word)
    assert found[:1] == [expected]
    ocr = [m for m in response.items[0].matched if m.field == "ocr_text"]
    assert ocr and word in ocr[0].terms


def test_a_short_word_is_not_searched_inside_runs(library):
    assert search(library, "bar")[0] == []  # three letters: too many runs hold any trigram (file names neutral)


def test_a_relaxed_reading_ranks_the_photo_that_satisfies_more_of_the_phrase_first(library):
    """The bakery's sign (FRESHBREADDAILY, on a photo named bakery_wall) satisfies fresh, bread and wall; the
    street notice only the understood tag "sign", whose constant boost outscored the two words inside a run."""
    found, response = search(library, "fresh bread sign on a brick wall")
    assert found[:2] == ["bakery_wall", "street_notice"] and "sign" in response.relaxed


def test_meaning_finds_a_photo_by_the_words_of_its_file_name_when_its_tags_are_wrong(library):
    found, response = search(library, "galaxies")
    assert found[:1] == ["hubble_deep_field"] and response.items[0].semantic_only
    assert "IMG_2034" not in found  # the same tags under a camera's name: nothing to find it by
