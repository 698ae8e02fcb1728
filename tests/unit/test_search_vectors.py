"""An index says whether it keeps vectors (OpenSearch Serverless does not); the search service embeds a query and
reports semantic "on" only for an index that does. The adapter side is tests/integration/test_opensearch_requests.py."""

from __future__ import annotations

import numpy as np
import pytest

from photo_organizer.search.models import SearchQuery, SearchResults
from photo_organizer.ports.search import supports_vectors
from photo_organizer.services.search import SearchFilters, SearchService

OWNER = "owner-a"


class RecordingIndex:
    """The SearchIndex port answering nothing found; an adapter of the port that does not say keeps vectors."""

    def __init__(self) -> None:
        self.queries: list[SearchQuery] = []

    def search(self, query: SearchQuery, *, facets: bool = True) -> SearchResults:
        self.queries.append(query)
        return SearchResults(hits=(), total=0)


class KeywordOnlyIndex(RecordingIndex):
    supports_vectors = False


class NoPeople:
    def people(self, owner: str) -> list:
        return []


def search(index: RecordingIndex, text: str, *, degraded: bool = False) -> tuple[str, list[list[str]]]:
    embedded: list[list[str]] = []

    def embed(texts):
        embedded.append(list(texts))
        return np.ones((len(texts), 384), dtype=np.float32)

    service = SearchService(index=index, metadata=None, analysis=None, people=NoPeople(), thumbnail_url=lambda p: "",
                            cursor_key=b"test-key", embed=embed, semantic_degraded=degraded)
    return service.search(OWNER, text, SearchFilters()).semantic, embedded


def test_an_index_that_does_not_say_keeps_vectors_and_one_that_says_no_does_not():
    assert supports_vectors(RecordingIndex()) is True
    assert supports_vectors(KeywordOnlyIndex()) is False


@pytest.mark.parametrize("degraded", [False, True])
def test_a_keyword_only_index_gets_no_query_vector_and_the_response_says_semantic_off(degraded):
    index = KeywordOnlyIndex()
    semantic, embedded = search(index, "puppy at the seaside", degraded=degraded)
    assert semantic == "off" and embedded == []
    assert index.queries and all(q.embedding is None for q in index.queries)


def test_an_index_with_vectors_gets_the_query_vector_and_semantic_on():
    index = RecordingIndex()
    semantic, embedded = search(index, "puppy at the seaside")
    assert semantic == "on" and len(embedded) == 1
    assert index.queries[-1].embedding is not None


def test_a_repeated_query_text_is_embedded_once_and_each_new_text_gets_its_own_vector(monkeypatch):
    monkeypatch.setattr("photo_organizer.services.search.QUERY_VECTORS_KEPT", 2)
    embedded: list[str] = []

    def embed(texts):
        embedded.extend(texts)
        return np.stack([np.full(384, float(len(embedded) + i), dtype=np.float32) for i in range(len(texts))])

    index = RecordingIndex()
    service = SearchService(index=index, metadata=None, analysis=None, people=NoPeople(), thumbnail_url=lambda p: "",
                            cursor_key=b"test-key", embed=embed)

    def vector_of(text: str, owner: str = OWNER) -> tuple[float, ...]:
        service.search(owner, text, SearchFilters())
        return index.queries[-1].embedding

    puppy = vector_of("puppy at the seaside")
    assert vector_of("puppy at the seaside", owner="owner-b") == puppy  # the text decides, not who asks
    kitten = vector_of("kitten in the snow")
    assert kitten != puppy and len(embedded) == 2
    vector_of("owl in the garden")  # a third text: the least recently used one ("puppy") goes
    vector_of("kitten in the snow")
    assert len(embedded) == 3
    vector_of("puppy at the seaside")
    assert len(embedded) == 4 and embedded[-1] == embedded[0]
