"""The SearchIndex contract: one body per behaviour, run against every adapter of the port.

`local` is the embedded tantivy + owner-slice adapter under tmp_path. `opensearch` runs the same bodies against a
live cluster when OPENSEARCH_URL is set (see the marked block in the fixture); without it, it is skipped and says
so. Each test gets a fresh index; owners are "alice" and "bob" throughout.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from photo_organizer.adapters.local.search_index import LocalSearchIndex
from photo_organizer.search.models import (
    EMBEDDING_DIMENSIONS,
    DateRange,
    GeoFilter,
    IndexedPerson,
    IndexedPlace,
    QueryPart,
    SearchDocument,
    SearchQuery,
    SortOrder,
)

A, B = "alice", "bob"
T0 = datetime(2023, 6, 1, 12, 0, tzinfo=timezone.utc)
LISBON = IndexedPlace(city="Lisbon", region="Lisboa", country="Portugal", country_code="PT", lat=38.72, lon=-9.14)
PORTO = IndexedPlace(city="Porto", region="Norte", country="Portugal", country_code="PT", lat=41.15, lon=-8.61)
BERLIN = IndexedPlace(city="Berlin", country="Germany", country_code="DE", lat=52.52, lon=13.40)
ANA = IndexedPerson(person_id="person-ana", name="Ana Silva")
BEN = IndexedPerson(person_id="person-ben", name="Ben Okafor")


def vector(*components: tuple[int, float]) -> tuple[float, ...]:
    """A tiny hand-made embedding: a few named axes in the model's dimensionality."""
    values = [0.0] * EMBEDDING_DIMENSIONS
    for axis, value in components:
        values[axis] = value
    return tuple(values)


BEACH_AXIS, DOG_AXIS, CITY_AXIS = 0, 1, 2


def doc(owner: str, photo_id: str, *, version: int = 1, days: float = 0, **fields: Any) -> SearchDocument:
    fields.setdefault("uploaded_at", T0 + timedelta(days=days))
    fields.setdefault("taken_at", T0 + timedelta(days=days))
    return SearchDocument(owner=owner, photo_id=photo_id, version=version, **fields)


@dataclass
class IndexUnderTest:
    kind: str
    index: Any
    reopen: Callable[[], Any] | None  # None when the adapter has nothing local to reopen


@pytest.fixture(params=["local", "opensearch"])
def search_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IndexUnderTest]:
    if request.param == "opensearch":
        # ---- OpenSearch joins here ------------------------------------------------------------------------
        # With OPENSEARCH_URL set, build adapters/aws/opensearch_index.py against a fresh, uniquely named index
        # (created from opensearch_mapping.json), yield IndexUnderTest("opensearch", index, None) and delete the
        # index afterwards. Every test body below then runs unchanged against the live cluster.
        url = os.environ.get("OPENSEARCH_URL")
        if not url:
            pytest.skip("OPENSEARCH_URL is not set: the OpenSearch adapter runs this suite only against a live cluster")
        pytest.skip("OPENSEARCH_URL is set but the OpenSearch adapter is not wired into this fixture yet")
    holder: dict[str, LocalSearchIndex] = {"index": LocalSearchIndex(tmp_path / "search")}

    def reopen() -> LocalSearchIndex:
        holder["index"].close()
        holder["index"] = LocalSearchIndex(tmp_path / "search")
        return holder["index"]

    yield IndexUnderTest("local", holder["index"], reopen)
    holder["index"].close()


def ids(results) -> list[str]:
    return [hit.photo_id for hit in results.hits]


def all_pages(index, query: SearchQuery) -> list[str]:
    seen, after = [], None
    for _ in range(100):
        page = index.search(query.model_copy(update={"after": after}), facets=False)
        if not page.hits:
            return seen
        seen.extend(ids(page))
        after = page.hits[-1].sort_values
    raise AssertionError("pagination did not end")


def library(index) -> None:
    index.upsert(
        [
            doc(A, "a-beach", days=1, tags=("beach", "sea", "outdoor"), people=(ANA,), place=LISBON,
                caption="Ana on the beach at sunset", camera="Pixel 8", filename="IMG_0001.jpg",
                embedding=vector((BEACH_AXIS, 1.0))),
            doc(A, "a-dog", days=2, tags=("dog", "animal", "pet"), people=(ANA, BEN), place=PORTO,
                caption="a golden dog in the park", camera="iPhone 15", embedding=vector((DOG_AXIS, 1.0))),
            doc(A, "a-receipt", days=3, tags=("receipt", "document"), ocr_text="TOTAL 12.50 EUR Pingo Doce",
                place=LISBON, camera="Pixel 8", filename="receipt-lidl.png", embedding=vector((CITY_AXIS, 1.0))),
            doc(A, "a-puppy-sea", days=4, tags=("dog", "animal", "beach"), place=PORTO, camera="Pixel 8",
                embedding=vector((BEACH_AXIS, 0.7), (DOG_AXIS, 0.7))),
            doc(A, "a-hidden", days=5, tags=("beach",), hidden=True),
            doc(A, "a-sensitive", days=6, tags=("beach",), sensitive=True),
            doc(A, "a-seaside", days=7, caption="waves and sand", place=BERLIN,
                embedding=vector((BEACH_AXIS, 0.9), (DOG_AXIS, 0.5))),
            doc(B, "b-beach", days=1, tags=("beach", "secret"), people=(IndexedPerson(person_id="person-zed",
                name="Zed Secret"),), place=BERLIN, caption="bob's beach", camera="Pixel 8",
                embedding=vector((BEACH_AXIS, 1.0))),
            doc(B, "b-dog", days=2, tags=("dog",), caption="owner:alice dog", embedding=vector((DOG_AXIS, 1.0))),
        ]
    )


# ---- isolation ------------------------------------------------------------------------------------------


def test_owner_never_sees_another_owners_photos_facets_or_suggestions(search_index):
    index = search_index.index
    library(index)
    for text in ("beach", "dog", "secret", "zed", "bob", ""):
        results = index.search(SearchQuery(owner=A, text=text, include_hidden=True, include_sensitive=True))
        assert all(pid.startswith("a-") for pid in ids(results)), text
        flat = {v.value for values in results.facets.values() for v in values}
        assert "secret" not in flat and "person-zed" not in flat and "Berlin" not in flat or text == ""
    facets = index.search(SearchQuery(owner=A, text="beach")).facets
    assert {v.value for v in facets["tags"]} <= {"beach", "sea", "outdoor", "dog", "animal"}
    assert "person-zed" not in {v.value for v in index.search(SearchQuery(owner=A)).facets["people"]}
    for prefix in ("s", "z", "b", ""):
        suggested = index.suggest(A, prefix)
        values = {v.value for values in suggested.values() for v in values}
        assert "secret" not in values and "person-zed" not in values, prefix
    assert index.count(A) == 7 and index.count(B) == 2


def test_a_forged_cursor_never_reaches_another_owners_photos(search_index):
    index = search_index.index
    library(index)
    bob_hit = index.search(SearchQuery(owner=B, text="beach")).hits[0]
    for sort, after in (
        (SortOrder.RELEVANCE, bob_hit.sort_values),
        (SortOrder.NEWEST, (10**18, "")),
        (SortOrder.NEWEST, (-(10**18), "zzz")),
        (SortOrder.RELEVANCE, (1e30, 10**18, "")),
    ):
        try:
            results = index.search(SearchQuery(owner=A, text="beach", sort=sort, after=after))
        except Exception as e:  # a cursor the adapter refuses is fine, as long as it is a domain error
            assert type(e).__name__ == "ValidationError"
            continue
        assert all(pid.startswith("a-") for pid in ids(results))


@pytest.mark.parametrize(
    "text",
    ['"a:b"', "a:b", "tag:*", "*", "(", ")", '"unterminated', "NOT", "NOT beach", "beach OR dog", "owner:bob",
     "owner:someone", "-beach", "beach~2", "beach^10", "[a TO z]", "{*}", "\\", "ünïcödé 東京 🐶", "x" * 10_000,
     "beach " * 2_000],
)
def test_query_syntax_in_user_text_is_plain_text_and_never_widens_scope(search_index, text):
    index = search_index.index
    library(index)
    results = index.search(SearchQuery(owner=A, text=text))
    assert all(pid.startswith("a-") for pid in ids(results))
    assert "a-hidden" not in ids(results) and "a-sensitive" not in ids(results)
    assert results.total <= 5
    for values in index.suggest(A, text).values():
        assert all(v.value not in {"secret", "person-zed"} for v in values)


def test_owner_syntax_in_text_is_a_word_not_a_filter(search_index):
    index = search_index.index
    library(index)
    assert ids(index.search(SearchQuery(owner=A, text="owner:bob"))) == []
    assert ids(index.search(SearchQuery(owner=B, text="owner:alice"))) == ["b-dog"]  # matched as words in a caption


# ---- versions -------------------------------------------------------------------------------------------


def test_an_older_version_after_a_newer_one_changes_nothing(search_index):
    index = search_index.index
    assert index.upsert([doc(A, "p1", version=5, tags=("cat",))]) == ["p1"]
    assert index.upsert([doc(A, "p1", version=4, tags=("dog",))]) == []
    assert index.upsert([doc(A, "p1", version=5, tags=("dog",))]) == []
    assert ids(index.search(SearchQuery(owner=A, text="cat"))) == ["p1"]
    assert ids(index.search(SearchQuery(owner=A, text="dog"))) == []
    assert index.upsert([doc(A, "p1", version=6, tags=("dog",))]) == ["p1"]
    assert ids(index.search(SearchQuery(owner=A, text="dog"))) == ["p1"]
    assert ids(index.search(SearchQuery(owner=A, text="cat"))) == []
    assert index.count(A) == 1


def test_a_delete_is_a_tombstone_that_a_late_older_upsert_cannot_resurrect(search_index):
    index = search_index.index
    index.upsert([doc(A, "p1", version=5, tags=("cat",), embedding=vector((0, 1.0)))])
    index.delete(A, "p1", version=7)
    assert index.upsert([doc(A, "p1", version=6, tags=("cat",))]) == []
    assert index.upsert([doc(A, "p1", version=7, tags=("cat",))]) == []
    assert index.count(A) == 0
    assert ids(index.search(SearchQuery(owner=A, text="cat", embedding=vector((0, 1.0))))) == []
    index.delete(A, "never-seen", version=3)
    assert index.upsert([doc(A, "never-seen", version=2, tags=("cat",))]) == []
    assert index.upsert([doc(A, "p1", version=8, tags=("cat",))]) == ["p1"]
    assert ids(index.search(SearchQuery(owner=A, text="cat"))) == ["p1"]


def test_an_older_delete_does_not_remove_a_newer_document(search_index):
    index = search_index.index
    index.upsert([doc(A, "p1", version=5, tags=("cat",))])
    index.delete(A, "p1", version=4)
    assert index.count(A) == 1


def test_the_same_photo_id_of_two_owners_are_two_documents(search_index):
    index = search_index.index
    index.upsert([doc(A, "same", tags=("cat",)), doc(B, "same", tags=("dog",))])
    index.delete(B, "same", version=1)
    assert ids(index.search(SearchQuery(owner=A, text="cat"))) == ["same"]
    assert index.count(B) == 0


# ---- pagination -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", [SortOrder.NEWEST, SortOrder.RELEVANCE])
@pytest.mark.parametrize("text", ["", "beach"])
def test_pages_are_exact_with_no_duplicates_or_gaps_even_with_ties(search_index, sort, text):
    index = search_index.index
    docs = []
    for i in range(57):
        # few distinct times and identical text: scores and times tie, photo_id must break them
        docs.append(doc(A, f"p{i:03d}", days=i % 4, tags=("beach",) if i % 3 else ("beach", "sea"),
                        caption="sunny beach" if i % 2 else ""))
    docs.append(doc(A, "other", tags=("mountain",)))
    index.upsert(docs)
    query = SearchQuery(owner=A, text=text, sort=sort, limit=7)
    full = ids(index.search(query.model_copy(update={"limit": 200}), facets=False))
    paged = all_pages(index, query)
    assert paged == full
    assert len(paged) == len(set(paged)) == (57 if text else 58)
    if sort is SortOrder.NEWEST:
        hits = index.search(query.model_copy(update={"limit": 200})).hits
        keys = [(-h.sort_values[0], h.sort_values[1]) for h in hits]
        assert keys == sorted(keys)


@pytest.mark.parametrize("sort", [SortOrder.NEWEST, SortOrder.RELEVANCE])
@pytest.mark.parametrize("text", ["", "beach"])
def test_exact_ties_on_score_and_time_are_broken_by_photo_id_ascending(search_index, sort, text):
    """The one tie order of both backends and of hybrid fusion (search.fusion.PHOTO_ID_TIE_ORDER); the OpenSearch
    request tests pin the same sort clause."""
    index = search_index.index
    index.upsert([doc(A, photo_id, days=2, tags=("beach",)) for photo_id in ("p-m", "p-c", "p-x", "p-a")]
                 + [doc(A, "p-b", days=3, tags=("beach",))])
    assert ids(index.search(SearchQuery(owner=A, text=text, sort=sort, limit=10), facets=False)) == [
        "p-b", "p-a", "p-c", "p-m", "p-x"]


def test_relevance_ranks_people_and_tags_over_ocr_and_breaks_ties_by_recency(search_index):
    index = search_index.index
    index.upsert([
        doc(A, "ocr", days=9, ocr_text="lisbon lisbon beach"),
        doc(A, "tagged-old", days=1, tags=("lisbon",)),
        doc(A, "tagged-new", days=2, tags=("lisbon",)),
    ])
    results = index.search(SearchQuery(owner=A, text="lisbon"))
    assert ids(results) == ["tagged-new", "tagged-old", "ocr"]
    assert results.hits[0].matched[0].field == "tags" and results.hits[0].matched[0].terms == ("lisbon",)
    assert results.hits[2].matched[0].field == "ocr_text"


# ---- facets and suggestions -----------------------------------------------------------------------------


def test_facets_count_the_owners_matching_set_only(search_index):
    index = search_index.index
    library(index)
    facets = index.search(SearchQuery(owner=A, text="dog")).facets
    assert {(v.value, v.count) for v in facets["tags"]} >= {("dog", 2), ("animal", 2), ("pet", 1), ("beach", 1)}
    assert {(v.value, v.count, v.label) for v in facets["people"]} == {
        ("person-ana", 1, "Ana Silva"), ("person-ben", 1, "Ben Okafor")}
    assert {(v.value, v.count) for v in facets["places"]} == {("Porto", 2)}
    assert {(v.value, v.count) for v in facets["years"]} == {("2023", 2)}
    everything = index.search(SearchQuery(owner=A, include_hidden=True, include_sensitive=True)).facets
    assert ("beach", 4) in {(v.value, v.count) for v in everything["tags"]}


def test_suggestions_cover_tags_people_and_places_with_counts(search_index):
    index = search_index.index
    library(index)
    suggested = index.suggest(A, "b")
    assert [(v.value, v.count) for v in suggested["tags"]] == [("beach", 2)]  # hidden/sensitive not counted
    assert [(v.value, v.label) for v in suggested["people"]] == [("person-ben", "Ben Okafor")]
    assert [v.value for v in suggested["places"]] == ["Berlin"]
    assert [(v.value, v.count) for v in index.suggest(A, "Sil")["people"]] == [("person-ana", 2)]
    assert [v.value for v in index.suggest(A, "lis")["places"]] == ["Lisboa", "Lisbon"]  # equal counts: by value


# ---- filters --------------------------------------------------------------------------------------------


def test_filters_narrow_the_owners_photos(search_index):
    index = search_index.index
    library(index)

    def find(**kw) -> set[str]:
        return set(ids(index.search(SearchQuery(owner=A, **kw))))

    assert find(dates=DateRange(start=T0 + timedelta(days=2), end=T0 + timedelta(days=4))) == {"a-dog", "a-receipt"}
    assert find(people=("person-ana", "person-ben")) == {"a-dog"}
    assert find(people=("person-ana",)) == {"a-beach", "a-dog"}
    assert find(tags=("dog", "beach")) == {"a-puppy-sea"}
    assert find(camera="pixel 8") == {"a-beach", "a-receipt", "a-puppy-sea"}
    assert find(place="lisbon") == {"a-beach", "a-receipt"}
    assert find(place="Portugal") == {"a-beach", "a-dog", "a-receipt", "a-puppy-sea"}
    assert find(near=GeoFilter(lat=38.7, lon=-9.1, km=25)) == {"a-beach", "a-receipt"}
    assert find(near=GeoFilter(lat=38.7, lon=-9.1, km=400)) == {"a-beach", "a-dog", "a-receipt", "a-puppy-sea"}
    assert find(tags=("beach",)) == {"a-beach", "a-puppy-sea"}
    assert find(tags=("beach",), include_hidden=True) == {"a-beach", "a-puppy-sea", "a-hidden"}
    assert find(tags=("beach",), include_sensitive=True) == {"a-beach", "a-puppy-sea", "a-sensitive"}
    assert find(text="beach", people=("person-ana",), place="lisbon") == {"a-beach"}


def test_near_is_exact_distance_not_just_the_bounding_box(search_index):
    index = search_index.index
    # both inside the 100 km box around (0, 0); only one within 100 km (the box corner is ~141 km away)
    index.upsert([doc(A, "centre", place=IndexedPlace(lat=0.5, lon=0.5)),
                  doc(A, "corner", place=IndexedPlace(lat=0.85, lon=0.85))])
    assert ids(index.search(SearchQuery(owner=A, near=GeoFilter(lat=0, lon=0, km=100)))) == ["centre"]


# ---- hybrid ---------------------------------------------------------------------------------------------


def test_hybrid_finds_a_photo_by_meaning_only_and_says_so(search_index):
    index = search_index.index
    library(index)
    query = SearchQuery(owner=A, text="puppy seaside", embedding=vector((BEACH_AXIS, 0.7), (DOG_AXIS, 0.7)))
    results = index.search(query)
    assert ids(results)[:2] == ["a-puppy-sea", "a-seaside"]
    assert all(hit.semantic_only and hit.matched[0].field == "meaning" for hit in results.hits)
    assert "b-beach" not in ids(results) and "a-hidden" not in ids(results)

    both = index.search(SearchQuery(owner=A, text="beach", embedding=vector((BEACH_AXIS, 1.0))))
    assert ids(both)[0] == "a-beach"
    first = both.hits[0]
    assert not first.semantic_only and first.matched[0].field in {"tags", "caption"}
    assert any(h.semantic_only for h in both.hits)  # a-seaside by meaning only
    # filters apply to hits found by meaning too
    filtered = index.search(query.model_copy(update={"place": "porto"}))
    assert set(ids(filtered)) <= {"a-dog", "a-puppy-sea"} and "a-puppy-sea" in ids(filtered)


def test_hybrid_pages_are_exact(search_index):
    index = search_index.index
    # 4 exact hits (fewer than FEW_EXACT_HITS): the 26 found by meaning only follow them, and pages cover both
    docs = [doc(A, f"p{i:02d}", days=i % 3, tags=("beach",) if i % 8 == 1 else ("city",),
                embedding=vector((BEACH_AXIS, 1.0), (DOG_AXIS, (i % 5) / 5))) for i in range(30)]
    index.upsert(docs)
    query = SearchQuery(owner=A, text="beach", embedding=vector((BEACH_AXIS, 1.0)), limit=4)
    full = ids(index.search(query.model_copy(update={"limit": 200})))
    assert all_pages(index, query) == full and len(full) == 30


# ---- persistence ----------------------------------------------------------------------------------------


def test_the_index_survives_a_reopen(search_index):
    if search_index.reopen is None:
        pytest.skip("nothing local to reopen")
    library(search_index.index)
    search_index.index.delete(A, "a-dog", version=2)
    index = search_index.reopen()
    assert index.count(A) == 6
    assert ids(index.search(SearchQuery(owner=A, text="receipt"))) == ["a-receipt"]
    meaning = index.search(SearchQuery(owner=A, text="zzz", embedding=vector((DOG_AXIS, 1.0))))
    assert ids(meaning)[0] == "a-puppy-sea" and "a-dog" not in ids(meaning)
    assert set(ids(index.search(SearchQuery(owner=A, near=GeoFilter(lat=41.1, lon=-8.6, km=20))))) == {"a-puppy-sea"}
    assert index.upsert([doc(A, "a-dog", version=1)]) == []
    assert index.upsert([doc(A, "a-beach", version=2, tags=("renamed",))]) == ["a-beach"]
    assert ids(index.search(SearchQuery(owner=A, text="renamed"))) == ["a-beach"]


def test_hybrid_hits_by_meaning_respect_dates_and_visibility(search_index):
    index = search_index.index
    beach = vector((BEACH_AXIS, 1.0))
    index.upsert([
        doc(A, "in-range", days=10, caption="x", embedding=beach),
        doc(A, "too-old", days=1, caption="x", embedding=beach),
        doc(A, "hidden", days=10, caption="x", embedding=beach, hidden=True),
        doc(A, "sensitive", days=10, caption="x", embedding=beach, sensitive=True),
    ])
    query = SearchQuery(owner=A, text="zzz", embedding=beach,
                        dates=DateRange(start=T0 + timedelta(days=5), end=T0 + timedelta(days=20)))
    assert ids(index.search(query)) == ["in-range"]
    both = index.search(query.model_copy(update={"include_hidden": True, "include_sensitive": True}))
    assert set(ids(both)) == {"in-range", "hidden", "sensitive"}
    assert set(ids(index.search(query.model_copy(update={"dates": None})))) == {"in-range", "too-old"}


def test_a_replaced_or_deleted_embedding_never_comes_back_even_after_a_reopen(search_index):
    index = search_index.index
    index.upsert([doc(A, "moved", version=1, embedding=vector((BEACH_AXIS, 1.0))),
                  doc(A, "gone", version=1, embedding=vector((BEACH_AXIS, 1.0)))])
    index.upsert([doc(A, "moved", version=2, embedding=vector((DOG_AXIS, 1.0)))])
    index.delete(A, "gone", version=1)

    def by_meaning(idx, axis):
        return ids(idx.search(SearchQuery(owner=A, text="zzz", embedding=vector((axis, 1.0)))))

    assert by_meaning(index, DOG_AXIS)[:1] == ["moved"] and "gone" not in by_meaning(index, BEACH_AXIS)
    if search_index.reopen is not None:
        index = search_index.reopen()
        assert by_meaning(index, DOG_AXIS)[:1] == ["moved"] and "gone" not in by_meaning(index, BEACH_AXIS)
        assert index.upsert([doc(A, "later", embedding=vector((CITY_AXIS, 1.0)))]) == ["later"]
        assert by_meaning(index, CITY_AXIS)[:1] == ["later"]


def test_relevance_pages_over_large_tied_groups_are_exact(search_index):
    index = search_index.index
    # one big owner, one common tag, identical text and few distinct days: the groups that tie on score
    index.upsert([doc(A, f"p{i:04d}", days=i % 6, tags=("dog",)) for i in range(600)])
    query = SearchQuery(owner=A, text="dog", limit=50)
    paged, after = [], None
    for _ in range(20):
        page = index.search(query.model_copy(update={"after": after}), facets=False)
        if not page.hits:
            break
        paged.extend(page.hits)
        after = page.hits[-1].sort_values
    assert len(paged) == len({h.photo_id for h in paged}) == 600
    keys = [(-h.sort_values[0], -h.sort_values[1], h.sort_values[2]) for h in paged]
    assert keys == sorted(keys)


def test_tag_facets_and_suggestions_of_one_owner_never_count_anothers(search_index):
    index = search_index.index
    index.upsert([doc(A, "a1", tags=("beach",)), doc(B, "b1", tags=("beach", "boat")),
                  doc(B, "b2", tags=("beach",))])
    assert [(v.value, v.count) for v in index.suggest(A, "b")["tags"]] == [("beach", 1)]
    assert [(v.value, v.count) for v in index.search(SearchQuery(owner=A)).facets["tags"]] == [("beach", 1)]
    assert ids(index.search(SearchQuery(owner=A, tags=("boat",)))) == []


# ---- issue 12: understood parts rank, OCR runs, meaning below exact hits ---------------------------------


def test_an_understood_part_is_satisfied_by_its_keyword_or_its_words_in_any_text(search_index):
    index = search_index.index
    index.upsert([
        doc(A, "tagged", days=1, tags=("dog",), place=PORTO),
        doc(A, "sign", days=2, tags=("dog",), ocr_text="BEM VINDO A LISBOA"),
        doc(A, "lisbon", days=3, tags=("tram",), place=LISBON),
    ])
    parts = (QueryPart(kind="tag", value="dog", words=("dog",)), QueryPart(kind="place", value="Lisboa",
                                                                             words=("Lisboa",)))
    # strict: both parts, each by keyword (place) or by word (the sign's text)
    assert ids(index.search(SearchQuery(owner=A, parts=parts))) == ["sign"]
    # the keyword match ranks above a word found in text only
    assert ids(index.search(SearchQuery(owner=A, parts=parts[1:]))) == ["lisbon", "sign"]
    # relaxed: any part; the photos matching both first
    relaxed = ids(index.search(SearchQuery(owner=A, parts=parts, relaxed=True)))
    assert relaxed[0] == "sign" and set(relaxed) == {"tagged", "sign", "lisbon"}


def test_relaxed_photos_that_satisfy_more_of_the_phrase_rank_first_whatever_their_scores(search_index):
    """"fresh bread sign on a brick wall", relaxed: the bakery's sign (two words inside an OCR run, one in its file
    name) satisfies three parts and words, a photo tagged "sign" one; the tag's constant boost used to win."""
    index = search_index.index
    index.upsert([
        doc(A, "tagged", days=9, tags=("sign", "text"), ocr_text="NOPARKINGANYTIME"),
        doc(A, "bakery", days=1, tags=("text",), ocr_text="FRESHBREADDAILY", filename="brick_wall.jpg"),
        doc(A, "bread", days=5, tags=("food",), filename="bread.jpg"),
    ])
    part = (QueryPart(kind="tag", value="sign", words=("sign",)),)
    relaxed = index.search(SearchQuery(owner=A, text="fresh bread brick", parts=part, relaxed=True))
    # the other two satisfy one each (the tag, the file name's "bread"): their own scores decide, the tag's first
    assert ids(relaxed) == ["bakery", "tagged", "bread"]


def test_a_word_inside_a_run_of_ocr_capitals_is_found_below_a_whole_word_match(search_index):
    index = search_index.index
    index.upsert([
        doc(A, "run", days=1, ocr_text="FRESHBREADDAILY"),
        doc(A, "words", days=2, ocr_text="fresh bread here"),
        doc(A, "other", days=3, ocr_text="BREAKFAST DAY LILY"),
    ])
    assert ids(index.search(SearchQuery(owner=A, text="bread"))) == ["words", "run"]
    assert ids(index.search(SearchQuery(owner=A, text="daily"))) == ["run"]
    assert ids(index.search(SearchQuery(owner=B, text="daily"))) == []  # the grams are the owner's own


def test_meaning_only_hits_follow_exact_ones_only_when_they_are_few_and_never_below_the_floor(search_index):
    from photo_organizer.search.fusion import FEW_EXACT_HITS, MEANING_FLOOR

    index = search_index.index
    beach = vector((BEACH_AXIS, 1.0))
    weak = vector((BEACH_AXIS, MEANING_FLOOR * 0.8), (DOG_AXIS, 1.0))  # cosine below the floor
    index.upsert([
        doc(A, "exact", days=1, tags=("beach",), embedding=vector((DOG_AXIS, 1.0))),
        doc(A, "close", days=9, caption="waves", embedding=beach),
        doc(A, "weak", days=9, caption="sand", embedding=weak),
    ])
    query = SearchQuery(owner=A, text="beach", embedding=beach)
    results = index.search(query)
    assert ids(results) == ["exact", "close"] and results.hits[1].semantic_only and results.total == 2
    assert results.hits[0].score > results.hits[1].score  # the tier holds in the paging values too
    index.upsert([doc(A, f"more{i}", days=2, tags=("beach",)) for i in range(FEW_EXACT_HITS)])
    enough = index.search(query)
    assert "close" not in ids(enough) and not any(h.semantic_only for h in enough.hits)


# ---- weak labels and the full vocabulary -----------------------------------------------------------------------


def test_a_weak_tag_satisfies_a_tag_part_below_the_tag_and_is_explained_as_weak(search_index):
    index = search_index.index
    index.upsert([
        doc(A, "tagged", days=1, tags=("flower", "plant")),
        doc(A, "weak", days=9, tags=("plant",), weak_tags=("flower", "vase")),  # newer: recency cannot lift it
        doc(A, "neither", days=5, tags=("plant",)),
        doc(B, "bobs", days=1, weak_tags=("flower",)),
    ])
    part = (QueryPart(kind="tag", value="flower", words=("flower",)),)
    results = index.search(SearchQuery(owner=A, parts=part))
    assert ids(results) == ["tagged", "weak"]
    why = {hit.photo_id: {m.field: m.terms for m in hit.matched} for hit in results.hits}
    assert why["weak"].get("weak_tags") == ("flower",) and "weak_tags" not in why["tagged"]
    # a weak tag is no filter, no facet and no suggestion
    assert ids(index.search(SearchQuery(owner=A, tags=("vase",)))) == []
    facets = index.search(SearchQuery(owner=A), facets=True).facets
    assert "vase" not in {f.value for f in facets["tags"]}
    assert index.suggest(A, "va")["tags"] == ()


def test_the_vocabulary_holds_every_tag_weak_tag_and_city_of_the_owner_only(search_index):
    index = search_index.index
    rare = [doc(A, f"common-{i:02d}", days=i, tags=(f"thing{i:02d}", f"thing{(i + 1) % 25:02d}")) for i in range(25)]
    index.upsert([
        *rare,
        doc(A, "bike", days=30, tags=("bicycle",), place=PORTO),
        doc(A, "pot", days=31, weak_tags=("vase", "thing00")),
        doc(A, "secret", days=32, tags=("tripod",), sensitive=True),
        doc(B, "bobs", days=1, tags=("bobtag",), weak_tags=("bobweak",), place=BERLIN),
    ])
    known = index.vocabulary(A)
    assert {"bicycle", "vase", "thing24"} <= set(known["tags"]) and len(known["tags"]) == 27
    assert known["tags"].count("thing00") == 1  # a weak tag that is also a tag, once
    assert not {"tripod", "bobtag", "bobweak"} & set(known["tags"])
    assert known["places"] == ("Porto",)
