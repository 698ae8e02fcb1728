"""Weak evidence and a complete vocabulary, through the real search service and the local index: what the
labeller saw under its threshold (weak labels) still finds a photo by an understood tag, ranked below the photos
that carry the tag and explained as weak; query understanding knows every tag of the library (not only the 20
most common of the facets) and weak tags too; common words reach the tags (synonyms)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from photo_organizer.adapters.local.vocabulary import ancestors
from photo_organizer.analysis.models import AnalysisResult, AnalysisSource, Label
from photo_organizer.analysis.store import PhotoAnalysis
from photo_organizer.bootstrap import build_services
from photo_organizer.services.search import SearchFilters
from photo_organizer.settings import Settings
from test_search_relevance import NOW, OWNER, add_photo  # same folder (rootdir import)

FILLERS = 21  # tags on two photos each: more than the 20 facet values, all more common than "bicycle"

# name: (labels, weak labels), each (tag, confidence)
LIBRARY: dict[str, tuple[list[tuple[str, float]], list[tuple[str, float]]]] = {
    "tulips": ([("Flower", 90)], []),
    "flower_bed": ([("Plant", 30)], [("Flower", 9), ("Vase", 7)]),  # the classifier's "daisy 9%"
    "cafe": ([("Coffee", 70)], [("Cup", 14)]),
    "mug": ([("Cup", 60)], []),
    "bicycle": ([("Bicycle", 80)], []),
    "cameraman": ([("Tripod", 93)], []),
    **{f"filler{i:02d}": ([(f"Thing{i:02d}", 90), (f"Thing{(i + 1) % FILLERS:02d}", 90)], [])
       for i in range(FILLERS)},
}


def _labels(pairs: list[tuple[str, float]]) -> tuple[Label, ...]:
    return tuple(Label(name=name, confidence=confidence, parents=ancestors(name)) for name, confidence in pairs)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    services = build_services(Settings(data_dir=tmp_path_factory.mktemp("weak")))
    ids = {}
    for index, (name, (labels, weak)) in enumerate(LIBRARY.items()):
        photo_id = f"{index:02d}{name.replace('_', '')}"[:32]
        ids[name] = photo_id
        add_photo(services, OWNER, photo_id, f"IMG_{index:04d}", "2024-05-05")
        result = AnalysisResult(photo_id=photo_id, analysis_version=1, labels=_labels(labels),
                                weak_labels=_labels(weak), analysed_at=NOW, source=AnalysisSource.LOCAL)
        assert services.analysis.save(PhotoAnalysis(
            owner=OWNER, result=result, caption="", local_taken_at=datetime(2024, 5, 5, 12, tzinfo=timezone.utc)))
    services.search.now = lambda: NOW
    services.search.index_owner(OWNER)
    return services, ids


def search(library, text: str):
    services, ids = library
    names = {v: k for k, v in ids.items()}
    response = services.search.search(OWNER, text, SearchFilters(), limit=20)
    return [names[item.photo_id] for item in response.items], response


def test_a_weak_label_finds_the_photo_below_the_photos_that_carry_the_tag_and_says_it_is_weak(library):
    found, response = search(library, "flower")
    assert found == ["tulips", "flower_bed"]
    reasons = {m.field: m.terms for m in response.items[1].matched}
    assert reasons.get("weak_tags") == ["flower"] and "tags" not in reasons
    assert "weak_tags" not in {m.field for m in response.items[0].matched}


def test_a_weak_label_completes_a_strict_reading_of_two_parts(library):
    # the café photo: Coffee as a tag, the cup only as a weak label; before, "cup of coffee" relaxed or missed it
    found, response = search(library, "cup of coffee")
    assert found == ["cafe"] and response.relaxed == []


def test_a_tag_the_library_has_only_as_a_weak_label_is_understood(library):
    found, response = search(library, "vase")
    assert [(c.kind, c.value) for c in response.chips] == [("tag", "vase")]
    assert found == ["flower_bed"]


def test_weak_labels_are_neither_facets_nor_suggestions(library):
    services, _ = library
    _, response = search(library, "flower")
    assert "vase" not in {f.value for f in response.facets.get("tags", [])}
    assert services.search.suggest(OWNER, "vas")["tags"] == []


def test_query_understanding_knows_a_tag_beyond_the_twenty_most_common(library):
    found, response = search(library, "bike")  # a synonym of bicycle, the library's least common tag
    assert [(c.kind, c.value) for c in response.chips] == [("tag", "bicycle")]
    assert found == ["bicycle"]


@pytest.mark.parametrize(("word", "tag", "expected"), [
    ("photographer", "photography", "cameraman"),  # Tripod's parent
    ("dahlia", "flower", "tulips"),
    ("mug", "cup", "mug"),
])
def test_a_common_word_reaches_the_tag_that_names_it(library, word, tag, expected):
    found, response = search(library, word)
    assert [(c.kind, c.value) for c in response.chips] == [("tag", tag)]
    assert found[0] == expected
