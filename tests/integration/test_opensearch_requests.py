"""The OpenSearch adapter without a cluster: exact request bodies against golden files, isolation and injection
walks over every body it builds, and the parsing of OpenSearch's response shapes. With OPENSEARCH_URL set, the
same adapter also runs against a live cluster (see `live_index`).

Golden files: tests/data/opensearch/*.request.json. After an intended change, regenerate them with
`PO_REGENERATE_OPENSEARCH_GOLDEN=1 pytest tests/integration/test_opensearch_requests.py` and review the diff.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from photo_organizer.adapters.aws.opensearch_index import OpenSearchIndex, translate_error
from photo_organizer.adapters.aws.opensearch_lifecycle import IndexedEntry, diff_index, load_mapping
from photo_organizer.adapters.aws.opensearch_requests import (
    EXPLAINED_FIELDS,
    FACET_SIZE,
    VOCABULARY_SIZE,
    count_body,
    document_source,
    explained_terms,
    facet_aggs,
    knn_body,
    search_body,
    suggest_body,
)
from photo_organizer.errors import ConfigurationError, PermanentError, StorageUnavailableError, ValidationError
from photo_organizer.search import fusion
from photo_organizer.search.writes import IndexWrite, WriteOutcome
from photo_organizer.search.models import (
    EMBEDDING_DIMENSIONS,
    DateRange,
    GeoFilter,
    IndexedPerson,
    IndexedPlace,
    SearchDocument,
    SearchQuery,
    SortOrder,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "opensearch"
REGENERATE = os.environ.get("PO_REGENERATE_OPENSEARCH_GOLDEN") == "1"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
OWNER, OTHER = "owner-a", "owner-b"
VECTOR = tuple(round(((i * 37) % 101) / 101 - 0.5, 4) for i in range(EMBEDDING_DIMENSIONS))

INJECTIONS = (
    'owner:owner-b',
    '"dog" OR owner:*',
    "tags:* AND NOT hidden:true",
    "(beach) || {\"term\": {\"owner\": \"owner-b\"}}",
    "*",
    "/.*/",
    "dog\\",
    "ana~2 lisbon^10 [2020 TO 2024]",
    "<script>alert(1)</script>",
    "owner-b",
)


# ---- a client that records what the adapter sends ---------------------------------------------------------


class RecordingClient:
    """Stands in for opensearchpy.OpenSearch: records (operation, kwargs) and answers from queued responses,
    or with the shape a healthy cluster would give."""

    def __init__(self, **responses: list[Any]) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.responses = {name: list(queue) for name, queue in responses.items()}
        self.indices = _Indices(self)

    def _answer(self, operation: str, kwargs: dict[str, Any], default: Any) -> Any:
        self.calls.append((operation, kwargs))
        queue = self.responses.get(operation)
        answer = queue.pop(0) if queue else default
        if isinstance(answer, Exception):
            raise answer
        return answer

    def bulk(self, *, body: str, index: Any = None, params: Any = None) -> Any:
        lines = [json.loads(line) for line in body.splitlines()]
        items = [
            {"index": {"_id": action["index"]["_id"], "_version": action["index"]["version"], "status": 201}}
            for action in lines[::2]
        ]
        return self._answer("bulk", {"body": lines, "params": params}, {"errors": False, "items": items})

    def search(self, *, index: Any = None, body: Any = None, params: Any = None) -> Any:
        empty = {"hits": {"total": {"value": 0, "relation": "eq"}, "hits": []}}
        return self._answer("search", {"index": index, "body": body, "params": params}, empty)

    def msearch(self, *, body: str, index: Any = None, params: Any = None) -> Any:
        lines = [json.loads(line) for line in body.splitlines()]
        empty = {"hits": {"total": {"value": 0, "relation": "eq"}, "hits": []}, "status": 200}
        return self._answer("msearch", {"body": lines}, {"responses": [empty, empty]})

    def count(self, *, index: Any = None, body: Any = None, params: Any = None) -> Any:
        return self._answer("count", {"index": index, "body": body, "params": params}, {"count": 0})

    def delete_by_query(self, *, index: Any, body: Any, params: Any = None) -> Any:
        return self._answer("delete_by_query", {"index": index, "body": body, "params": params}, {"deleted": 0})


class _Indices:
    def __init__(self, client: RecordingClient) -> None:
        self._client = client

    def __getattr__(self, operation: str) -> Any:
        defaults = {"exists": False, "exists_alias": False, "get_alias": {}}

        def call(**kwargs: Any) -> Any:
            return self._client._answer(f"indices.{operation}", kwargs, defaults.get(operation, {"acknowledged": True}))

        return call


def adapter(client: RecordingClient, **kwargs: Any) -> OpenSearchIndex:
    return OpenSearchIndex("search.example", region="eu-west-1", client_factory=lambda: client, clock=lambda: NOW, **kwargs)


def assert_golden(name: str, value: Any) -> None:
    path = DATA / f"{name}.request.json"
    actual = json.loads(json.dumps(value))
    if REGENERATE:
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    assert path.exists(), f"{path.name} is missing: run with PO_REGENERATE_OPENSEARCH_GOLDEN=1"
    assert actual == json.loads(path.read_text(encoding="utf-8")), f"{name} differs from {path.name}"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def document(photo_id: str = "p-beach", *, owner: str = OWNER, version: int = 1_700_000_000_000_001, **fields: Any):
    defaults: dict[str, Any] = {
        "taken_at": datetime(2023, 7, 1, 10, 0, tzinfo=timezone.utc),
        "uploaded_at": datetime(2023, 7, 2, 8, 30, tzinfo=timezone.utc),
        "filename": "IMG_0001.JPG",
        "tags": ("animal", "beach", "dog"),
        "people": (IndexedPerson(person_id="person-ana", name="Ana"),),
        "place": IndexedPlace(city="Lisbon", region="Lisbon", country="Portugal", country_code="PT", lat=38.72, lon=-9.14),
        "ocr_text": "",
        "caption": "A dog on a beach with Ana",
        "camera": "Canon EOS 5D",
        "embedding": VECTOR,
    }
    return SearchDocument(owner=owner, photo_id=photo_id, version=version, **{**defaults, **fields})


def full_query(**fields: Any) -> SearchQuery:
    defaults: dict[str, Any] = {
        "owner": OWNER,
        "text": "dog lisbon",
        "tags": ("Beach",),
        "people": ("person-ana",),
        "place": "Lisbon",
        "dates": DateRange(start=datetime(2023, 1, 1, tzinfo=timezone.utc), end=datetime(2024, 1, 1, tzinfo=timezone.utc)),
        "near": GeoFilter(lat=38.72, lon=-9.14, km=25),
        "camera": "canon eos 5d",
        "limit": 20,
    }
    return SearchQuery(**{**defaults, **fields})


# ---- golden request bodies --------------------------------------------------------------------------------


def test_mapping_request_body():
    client = RecordingClient()
    assert adapter(client).ensure_index(1) == "photos-v1"
    assert_golden("ensure_index", client.calls)
    template = client.calls[0][1]["body"]
    assert template["index_patterns"] == ["photos-v*"]
    properties = template["template"]["mappings"]["properties"]
    assert properties["embedding"]["dimension"] == EMBEDDING_DIMENSIONS
    assert properties["embedding"]["method"] == {
        "name": "hnsw",
        "space_type": "cosinesimil",
        "engine": "lucene",
        "parameters": {"m": 16, "ef_construction": 128},
    }
    assert template["template"]["settings"]["index"]["knn"] is True
    # A new index gets the alias at creation when no index holds it yet: one step, never a moment without it.
    assert client.calls[-1] == ("indices.create", {"index": "photos-v1", "body": {"aliases": {"photos": {}}}})


def test_every_document_field_is_mapped_and_the_mapping_is_strict():
    mapping = load_mapping()["mappings"]
    assert mapping["dynamic"] == "strict"
    source = document_source(document())
    for name, value in source.items():
        assert name in mapping["properties"], name
        if isinstance(value, dict):
            assert set(value) <= set(mapping["properties"][name]["properties"]), name
    assert set(source["people"][0]) <= set(mapping["properties"]["people"]["properties"])


def test_keyword_with_filters_query_request_body():
    client = RecordingClient()
    adapter(client).search(full_query(), facets=False)
    ((operation, call),) = client.calls
    assert operation == "search" and call["index"] == "photos" and call["params"] == {"routing": OWNER}
    assert_golden("keyword_filters_search", call["body"])
    # every word is required, each over every text field (the best one counts, as the local index's dismax)
    words = call["body"]["query"]["bool"]["must"]
    assert len(words) == len(full_query().text.split())
    multi_match = words[0].get("multi_match") or words[0]["dis_max"]["queries"][0]["multi_match"]
    assert multi_match["type"] == "best_fields" and multi_match["tie_breaker"] == 0.2
    assert multi_match["fields"][:2] == ["tags^4", "people.name^4"]


def test_newest_first_with_search_after_request_body():
    query = SearchQuery(owner=OWNER, tags=("dog",), sort=SortOrder.NEWEST, after=(1688205600000, "p-beach"), limit=2)
    client = RecordingClient()
    adapter(client).search(query, facets=False)
    body = client.calls[0][1]["body"]
    assert_golden("newest_search_after", body)
    assert body["sort"] == [{"sort_time": {"order": "desc"}}, {"photo_id": {"order": "asc"}}]
    assert body["search_after"] == [1688205600000, "p-beach"]


@pytest.mark.parametrize("sort", [SortOrder.NEWEST, SortOrder.RELEVANCE])
def test_keyword_sort_breaks_ties_by_photo_id_ascending_like_the_local_index_and_hybrid_fusion_request_body(sort):
    """One tie order for every search of both backends: the local index orders (.., sort_time desc, photo_id asc)
    (tests/integration/test_search_index_contract.py pins it), and so does search.fusion.hybrid_ranking."""
    from photo_organizer.search.fusion import hybrid_ranking

    client = RecordingClient()
    adapter(client).search(SearchQuery(owner=OWNER, text="dog", sort=sort), facets=False)
    assert client.calls[0][1]["body"]["sort"][-2:] == [{"sort_time": {"order": "desc"}}, {"photo_id": {"order": "asc"}}]
    # p-c and p-b tie on fused score (1/61 + 1/63 with equal list weights) and time, above p-a (2/62): ascending
    # ids break the tie.
    fused = hybrid_ranking(["p-c", "p-a", "p-b"], ["p-b", "p-a", "p-c"], sort_time=lambda _: 1, photo_id=str,
                           meaning_weight=1.0)
    assert [photo for photo, _ in fused] == ["p-b", "p-c", "p-a"]


def test_hybrid_knn_with_owner_filter_request_body():
    client = RecordingClient()
    adapter(client, hybrid_window=50).search(full_query(text="puppy at the seaside", embedding=VECTOR), facets=True)
    ((operation, call),) = client.calls
    assert operation == "msearch"
    header, keyword, header_again, semantic = call["body"]
    assert header == header_again == {"index": "photos", "routing": OWNER}
    knn = semantic["query"]["knn"]["embedding"]
    assert knn["k"] == 50 and len(knn["vector"]) == EMBEDDING_DIMENSIONS
    assert knn["filter"]["bool"]["filter"][0] == {"term": {"owner": OWNER}}
    # The knn side filters exactly like the keyword side.
    assert knn["filter"]["bool"] == {k: keyword["query"]["bool"][k] for k in ("filter", "must_not")}
    assert_golden("hybrid_msearch", {**call, "body": [header, keyword, header_again, {**semantic, "query": {
        "knn": {"embedding": {**knn, "vector": f"<{len(knn['vector'])} floats>"}}}}]})


def test_facets_aggs_request_body():
    client = RecordingClient()
    adapter(client).search(SearchQuery(owner=OWNER), facets=True)
    body = client.calls[0][1]["body"]
    assert_golden("facets_search", body)
    assert set(body["aggs"]) == {"tags", "people", "places", "years"}


def test_suggestions_request_body():
    client = RecordingClient()
    adapter(client).suggest(OWNER, "Li")
    ((operation, call),) = client.calls
    assert operation == "search" and call["params"] == {"routing": OWNER}
    assert_golden("suggest_search", call["body"])


def test_count_request_body():
    client = RecordingClient(count=[{"count": 7, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}}])
    assert adapter(client).count(OWNER) == 7
    assert_golden("count", client.calls[0][1])


def test_bulk_lines_with_external_versioning_request_body():
    client = RecordingClient()
    index = adapter(client)
    assert index.upsert([document("p-beach"), document("p-dog", version=1_700_000_000_000_009, embedding=None)]) == [
        "p-beach",
        "p-dog",
    ]
    index.delete(OWNER, "p-gone", version=1_700_000_000_000_010)
    bodies = [call["body"] for _, call in client.calls]
    assert_golden("bulk_upsert_and_tombstone", [[*body[:1], {**body[1], "embedding": "<384 floats>"}, *body[2:]] for body in bodies[:1]] + bodies[1:])
    actions = [line["index"] for body in bodies for line in body[::2]]
    assert [a["version_type"] for a in actions] == ["external", "external", "external_gte"]
    assert all(a["routing"] == OWNER for a in actions)
    assert [a["version"] for a in actions] == [1_700_000_000_000_001, 1_700_000_000_000_009, 1_700_000_000_000_010]
    assert bodies[1][1] == {"owner": OWNER, "photo_id": "p-gone", "deleted": True, "deleted_at": "2024-05-01T12:00:00Z"}


def test_domain_index_replicas_follow_the_node_count_so_a_single_node_domain_can_be_green_request_body():
    """One replica on a one-node domain can never be assigned: the cluster stays yellow and its alarm is useless.
    The index (and every versioned index, through the template) auto-expands 0-1 replicas instead; a reindex loads
    without replicas and hands the count back to auto-expansion."""
    client = RecordingClient(**{"indices.get_alias": [{"photos-v1": {"aliases": {"photos": {}}}}]})
    adapter(client).ensure_index(1)
    template = client.calls[0][1]["body"]["template"]["settings"]["index"]
    assert template["auto_expand_replicas"] == "0-1" and "number_of_replicas" not in template
    client.calls.clear()
    adapter(client).reindex_from(iter([document("p-beach", embedding=None)]), 2)
    settings = {op: call["body"] for op, call in client.calls if op in ("indices.create", "indices.put_settings")}
    assert settings["indices.create"]["settings"]["index"] == {
        "refresh_interval": "-1", "auto_expand_replicas": "false", "number_of_replicas": 0}
    assert settings["indices.put_settings"]["index"] == {"refresh_interval": "1s", "auto_expand_replicas": "0-1"}


def test_alias_swap_actions_request_body():
    client = RecordingClient(**{"indices.get_alias": [{"photos-v1": {"aliases": {"photos": {}}}}]})
    report = adapter(client).reindex_from(iter([document("p-beach", embedding=None), document("p-dog", embedding=None)]), 2)
    assert report.index == "photos-v2" and report.previous == ("photos-v1",) and report.written == 2
    operations = [operation for operation, _ in client.calls]
    assert operations == [
        "indices.put_index_template",
        "indices.exists",  # a rerun of a failed reindex carries on with the index that run created
        "indices.create",
        "indices.get_alias",
        "bulk",
        "indices.put_settings",
        "indices.refresh",
        "indices.update_aliases",
    ]
    assert_golden("reindex_alias_swap", [(op, call) for op, call in client.calls if op != "indices.put_index_template"])
    # The new index is loaded directly (not through the alias, which still serves the old one) ...
    assert {line["index"]["_index"] for line in client.calls[4][1]["body"][::2]} == {"photos-v2"}
    # ... and one _aliases call moves the alias: readers see v1 or v2, never nothing.
    assert client.calls[-1][1]["body"] == {
        "actions": [{"remove": {"index": "photos-v1", "alias": "photos"}}, {"add": {"index": "photos-v2", "alias": "photos"}}]
    }


# ---- Serverless (aoss): a SEARCH collection, keyword search only --------------------------------------------


def serverless(client: RecordingClient, **kwargs: Any) -> OpenSearchIndex:
    return adapter(client, service="aoss", **kwargs)


def _keys(value: Any) -> set[str]:
    return {path[-1] for path, _ in _walk(value) if path and isinstance(path[-1], str)}


def test_only_the_domain_adapter_claims_vectors():
    assert adapter(RecordingClient()).supports_vectors is True
    assert serverless(RecordingClient()).supports_vectors is False


def test_serverless_mapping_has_no_knn_field_or_setting_request_body():
    client = RecordingClient()
    assert serverless(client).ensure_index(1) == "photos-v1"
    assert_golden("aoss_ensure_index", client.calls)
    template = client.calls[0][1]["body"]["template"]
    assert "embedding" not in template["mappings"]["properties"] and "knn_vector" not in json.dumps(template)
    # No knn, and nothing the service manages itself (shards, replicas, refreshes) ...
    assert set(template["settings"]["index"]).isdisjoint({"knn", "number_of_shards", "number_of_replicas",
                                                          "auto_expand_replicas", "refresh_interval"})
    # ... while every other field, the strict mapping and the analyzers are the domain's own.
    domain = load_mapping()
    assert template["mappings"] == {**domain["mappings"], "properties": {
        name: spec for name, spec in domain["mappings"]["properties"].items() if name != "embedding"}}
    assert template["settings"]["analysis"] == domain["settings"]["analysis"]
    assert client.calls[-1] == ("indices.create", {"index": "photos-v1", "body": {"aliases": {"photos": {}}}})


def test_serverless_bulk_lines_carry_no_embedding_and_no_refresh_request_body():
    client = RecordingClient()
    index = serverless(client, refresh="wait_for")  # a refresh asked of Serverless is not sent: it refuses them
    assert index.upsert([document("p-beach")]) == ["p-beach"]
    index.delete(OWNER, "p-gone", version=1_700_000_000_000_010)
    (_, upsert), (_, tombstone) = client.calls
    assert upsert["params"] == tombstone["params"] == {}
    action, source = upsert["body"]
    assert "embedding" not in source
    assert source == {k: v for k, v in document_source(document("p-beach")).items() if k != "embedding"}
    # Our ids and external versions, exactly as on the domain (whether aoss honours them is unverified).
    assert action == {"index": {"_index": "photos", "_id": f"{OWNER}#p-beach", "routing": OWNER,
                                "version": 1_700_000_000_000_001, "version_type": "external"}}
    assert tombstone["body"][0]["index"]["version_type"] == "external_gte"
    domain_client = RecordingClient()
    adapter(domain_client, refresh="wait_for").upsert([document("p-beach")])
    assert domain_client.calls[0][1]["params"] == {"refresh": "wait_for"}  # the domain still gets it


def test_serverless_search_with_an_embedding_sends_no_knn_request_body():
    query = full_query(text="puppy at the seaside", embedding=VECTOR)
    client = RecordingClient(search=[load("search_response.json")])
    results = serverless(client, hybrid_window=50).search(query, facets=True)
    ((operation, call),) = client.calls
    assert operation == "search"  # one keyword search, no _msearch with a knn side
    assert "knn" not in _keys(call["body"]) and "vector" not in json.dumps(call["body"])
    assert call["body"] == search_body(query.model_copy(update={"embedding": None}), facets=True)
    assert call["params"] == {"routing": OWNER}
    assert not any(h.semantic_only for h in results.hits)
    assert "meaning" not in {m.field for h in results.hits for m in h.matched}


def test_serverless_reindex_sends_no_refresh_or_load_settings_request_body():
    client = RecordingClient(**{"indices.get_alias": [{"photos-v1": {"aliases": {"photos": {}}}}]})
    report = serverless(client).reindex_from(iter([document("p-beach"), document("p-dog")]), 2)
    assert report.index == "photos-v2" and report.written == 2
    assert [operation for operation, _ in client.calls] == [
        "indices.put_index_template",
        "indices.exists",  # a rerun of a failed reindex carries on with the index that run created
        "indices.create",
        "indices.get_alias",
        "bulk",
        "indices.update_aliases",
    ]
    assert client.calls[2] == ("indices.create", {"index": "photos-v2", "body": {}})
    assert "embedding" not in _keys(client.calls[4][1]["body"])
    assert client.calls[-1][1]["body"] == {
        "actions": [{"remove": {"index": "photos-v1", "alias": "photos"}}, {"add": {"index": "photos-v2", "alias": "photos"}}]
    }


def test_search_service_over_serverless_neither_embeds_nor_claims_semantic_results():
    from photo_organizer.services.search import SearchFilters, SearchService

    embedded: list[Any] = []

    def embed(texts):
        embedded.append(list(texts))
        return [VECTOR for _ in texts]

    class NoPeople:
        def people(self, owner):
            return []

    def service(index: OpenSearchIndex) -> SearchService:
        return SearchService(index=index, metadata=None, analysis=None, people=NoPeople(),
                             thumbnail_url=lambda photo: "", cursor_key=b"test-key", embed=embed)

    client = RecordingClient()
    response = service(serverless(client)).search(OWNER, "puppy at the seaside", SearchFilters())
    assert response.semantic == "off" and embedded == []
    # the vocabulary, the strict query, and the relaxed one (the recorded empty answer found nothing)
    assert [operation for operation, _ in client.calls] == ["search", "search", "search"]
    assert response.relaxed == ["puppy seaside"]
    assert all("knn" not in _keys(call["body"]) for _, call in client.calls)
    # The same phrase on the domain is hybrid: the control that shows the phrase would have been embedded.
    domain_client = RecordingClient()
    assert service(adapter(domain_client)).search(OWNER, "puppy at the seaside", SearchFilters()).semantic == "on"
    assert embedded and [operation for operation, _ in domain_client.calls] == ["search", "msearch", "msearch"]


# ---- isolation and injection ------------------------------------------------------------------------------


def _walk(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _walk(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _walk(child, (*path, i))


def _per_owner_bodies(query: SearchQuery) -> list[dict[str, Any]]:
    bodies = [search_body(query, facets=True), count_body(query.owner), suggest_body(query.owner, query.text)]
    if query.embedding is not None:
        bodies.append(knn_body(query, k=10))
    client = RecordingClient()
    index = adapter(client)
    index.search(query)
    index.suggest(query.owner, query.text)
    index.count(query.owner)
    for operation, call in client.calls:
        if operation == "msearch":
            bodies += call["body"][1::2]
        else:
            bodies.append(call["body"])
    return bodies


ISOLATION_QUERIES = [
    SearchQuery(owner=OWNER),
    full_query(),
    full_query(embedding=VECTOR),
    full_query(sort=SortOrder.NEWEST, after=(1, "x")),
    SearchQuery(owner=OWNER, text="owner-b", include_hidden=True, include_sensitive=True),
]


@pytest.mark.parametrize("query", ISOLATION_QUERIES, ids=range(len(ISOLATION_QUERIES)))
def test_every_query_facet_and_suggestion_body_is_filtered_by_the_owner_request_body(query):
    for body in _per_owner_bodies(query):
        assert body["query"].keys() <= {"bool", "knn"}
        if "bool" in body["query"]:
            assert body["query"]["bool"]["filter"][0] == {"term": {"owner": OWNER}}, body
            assert {"term": {"deleted": True}} in body["query"]["bool"]["must_not"]
        for path, value in _walk(body):
            if path[-2:-1] == ("knn",):
                assert value["filter"]["bool"]["filter"][0] == {"term": {"owner": OWNER}}
            # No other owner id appears in a filter position (text may contain it, as text).
            if isinstance(value, dict) and "owner" in value and path[-1:] == ("term",):
                assert value == {"owner": OWNER}


def test_an_empty_owner_is_refused_rather_than_searched():
    with pytest.raises(ValidationError):
        search_body(SearchQuery(owner=""))
    with pytest.raises(ValidationError):
        suggest_body("", "a")


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_strings_are_only_plain_match_text_request_body(text):
    query = full_query(text=text, embedding=VECTOR)
    words = set(explained_terms(text))
    for body in _per_owner_bodies(query):
        for path, value in _walk(body):
            assert path[-1:] not in {("query_string",), ("simple_query_string",), ("regexp",), ("wildcard",), ("script",)}
            if path[-1:] in {("operator",), ("type",)}:
                continue  # the builder's own constants ("and") may equal a word of the text
            if isinstance(value, str) and (value == text.strip() or value in words):
                if path[-2:] == ("value",) or path[-1:] == ("value",):
                    # Suggestions: the value of a prefix query, which takes no syntax at all.
                    assert path[-3] == "prefix", path
                else:
                    # a multi_match's query, or the OCR trigrams' match query (search.grams)
                    assert path[-1] == "query" and (path[-2] == "multi_match" or path[-3] == "match"), path
        if "bool" in body["query"]:
            assert body["query"]["bool"]["filter"][0] == {"term": {"owner": OWNER}}


@pytest.mark.parametrize(
    "after", [("p-1",), ({"owner": OTHER}, 1, "x"), (1.5, "x"), (True, 1, "x"), (1, 2, "x", "extra")]
)
def test_forged_search_after_values_are_refused(after):
    with pytest.raises(ValidationError):
        search_body(SearchQuery(owner=OWNER, text="dog", after=after))


def test_forged_hybrid_cursor_is_refused():
    client = RecordingClient()
    with pytest.raises(ValidationError):
        adapter(client).search(full_query(embedding=VECTOR, after=("owner-b", "x")))


# ---- response shapes --------------------------------------------------------------------------------------


def test_search_recorded_response_shape():
    client = RecordingClient(search=[load("search_response.json")])
    results = adapter(client).search(SearchQuery(owner=OWNER, text="dog lisbon"))
    assert [h.photo_id for h in results.hits] == ["p-beach", "p-dog"]
    assert results.total == 2
    beach, dog = results.hits
    assert beach.sort_values == (9.423171, 1688205600000, "p-beach")
    assert [(m.field, m.terms) for m in beach.matched] == [("tags", ("dog",)), ("place", ("lisbon",))]
    assert [(m.field, m.terms) for m in dog.matched] == [("tags", ("dog",)), ("caption", ("dog", "lisbon"))]
    assert not beach.semantic_only
    assert [(f.value, f.count) for f in results.facets["tags"]] == [("animal", 2), ("dog", 2), ("beach", 1)]
    assert [(f.value, f.count) for f in results.facets["years"]] == [("2023", 2)]
    assert [(f.value, f.count) for f in results.facets["places"]] == [("Lisbon", 1)]
    assert [(f.value, f.label) for f in results.facets["people"]] == [("person-ana", "Ana")]


def test_hybrid_msearch_recorded_response_shape():
    client = RecordingClient(msearch=[load("msearch_response_hybrid.json")])
    results = adapter(client).search(SearchQuery(owner=OWNER, text="dog", embedding=VECTOR))
    assert [h.photo_id for h in results.hits] == ["p-dog", "p-beach"]  # in both lists beats in one
    dog, beach = results.hits
    assert not dog.semantic_only and beach.semantic_only
    assert [m.field for m in dog.matched] == ["tags", "meaning"]
    assert [m.field for m in beach.matched] == ["meaning"]
    assert results.total == 2 and results.facets["tags"][0].value == "dog"
    # The next page continues after the last fused hit, whatever the two sides' own orders were.
    client.responses["msearch"] = [load("msearch_response_hybrid.json")]
    page = adapter(client).search(SearchQuery(owner=OWNER, text="dog", embedding=VECTOR, after=dog.sort_values))
    assert [h.photo_id for h in page.hits] == ["p-beach"]


def test_bulk_recorded_response_shape_conflict_is_not_newer():
    client = RecordingClient(bulk=[load("bulk_response_conflict.json")])
    index = adapter(client)
    writes = [document("p-old", version=1_700_000_000_000_001), document("p-new", version=1_700_000_000_000_005)]
    assert index.upsert(writes) == ["p-new"]
    client.responses["bulk"] = [load("bulk_response_conflict.json")]
    outcomes = [r.outcome for r in index.write([IndexWrite.of(d) for d in writes])]
    assert outcomes == [WriteOutcome.NOT_NEWER, WriteOutcome.WRITTEN]


def test_bulk_recorded_response_shape_throttled_item_is_retryable():
    client = RecordingClient(bulk=[load("bulk_response_throttled.json")])
    with pytest.raises(StorageUnavailableError):
        adapter(client).upsert([document("p-new")])


def test_suggest_recorded_response_shape():
    client = RecordingClient(search=[load("suggest_response.json")])
    found = adapter(client).suggest(OWNER, "li")
    assert [(f.value, f.count) for f in found["tags"]] == [("lighthouse", 2), ("lily", 1)]
    assert [(f.value, f.label, f.count) for f in found["people"]] == [("person-lia", "Lia Silva", 1)]
    assert [(f.value, f.count) for f in found["places"]] == [("Lisbon", 2)]


def test_transport_errors_are_translated():
    from opensearchpy.exceptions import ConnectionError, TransportError

    assert isinstance(translate_error(TransportError(429, "too_many_requests", {}), what="x"), StorageUnavailableError)
    assert isinstance(translate_error(TransportError(503, "unavailable", {}), what="x"), StorageUnavailableError)
    assert isinstance(translate_error(ConnectionError("N/A", "timed out", None), what="x"), StorageUnavailableError)
    assert isinstance(translate_error(TransportError(403, "forbidden", {}), what="x"), ConfigurationError)
    assert isinstance(translate_error(TransportError(400, "parsing_exception", {}), what="x"), PermanentError)
    client = RecordingClient(search=[TransportError(429, "too_many_requests", {})])
    with pytest.raises(StorageUnavailableError):
        adapter(client).search(SearchQuery(owner=OWNER))


# ---- reconcile --------------------------------------------------------------------------------------------


def test_diff_finds_missing_stale_and_orphaned_documents():
    table = [document("p-1", version=5), document("p-2", version=9), document("p-3", version=4), document("p-4", version=2)]
    indexed = {
        (OWNER, "p-2"): IndexedEntry(7),  # older than the table: stale
        (OWNER, "p-3"): IndexedEntry(4),  # in step
        (OWNER, "p-4"): IndexedEntry(3, deleted=True),  # a tombstone: missing (the write will say if it is newer)
        (OWNER, "p-9"): IndexedEntry(6),  # not in the table: orphaned
        (OWNER, "p-8"): IndexedEntry(6, deleted=True),  # a tombstone of a deleted photo: fine
    }
    drift = diff_index(table, indexed)
    assert [d.photo_id for d in drift.missing] == ["p-1", "p-4"]
    assert [d.photo_id for d in drift.stale] == ["p-2"]
    assert drift.orphaned == ((OWNER, "p-9", 6),)


def scan_page(*entries: tuple[str, int, bool]) -> dict:
    """One page of the index scan (photo id, version, tombstone), as OpenSearch answers it."""
    return {"hits": {"hits": [
        {"_id": f"{OWNER}#{pid}", "_version": version,
         "_source": {"owner": OWNER, "photo_id": pid, "deleted": deleted}, "sort": [OWNER, pid]}
        for pid, version, deleted in entries
    ]}}


def test_reconcile_applies_the_repairs_with_versions():
    client = RecordingClient(search=[scan_page(("p-2", 7, False), ("p-9", 6, False))])
    drift = adapter(client).reconcile([document("p-1", version=5, embedding=None), document("p-2", version=9, embedding=None)])
    assert not drift.clean
    bulk = client.calls[-1][1]["body"]
    assert [(line["index"]["_id"], line["index"]["version"]) for line in bulk[::2]] == [
        (f"{OWNER}#p-1", 5),
        (f"{OWNER}#p-2", 9),
        (f"{OWNER}#p-9", 6),  # the orphan's tombstone (external_gte) applies over what the index holds
    ]
    assert bulk[-1]["deleted"] is True


def test_live_versions_scans_one_owner_and_leaves_tombstones_out():
    client = RecordingClient(search=[scan_page(("p-2", 7, False), ("p-8", 6, True))])
    assert adapter(client).live_versions(OWNER) == {"p-2": 7}
    body = client.calls[-1][1]["body"]
    assert body["query"] == {"bool": {"filter": [{"term": {"owner": OWNER}}]}} and body["version"] is True


def test_hybrid_ranking_rewards_agreement_and_breaks_ties_newest_first_then_by_id():
    """One function and one tie order for both indexes (the local index's contract tests use it too)."""
    times = {"a": 1, "b": 1, "c": 1, "x": 2, "y": 3, "p": 7, "q": 7}
    fused = fusion.hybrid_ranking(["a", "b", "x", "p"], ["b", "c", "y", "q"], sort_time=times.__getitem__,
                                  photo_id=str)
    # exact (keyword) hits first, in keyword order (meaning only breaks their ties); the meaning-only ones after
    # them, since the exact ones are few
    assert [pid for pid, _ in fused] == ["a", "b", "x", "p", "c", "y", "q"]
    assert fused[0][1] == pytest.approx(fusion.EXACT_TIER + 1 / 61)
    assert fused[1][1] == pytest.approx(fusion.EXACT_TIER + 1 / 62 + fusion.MEANING_WEIGHT / 61)
    tied = fusion.hybrid_ranking(["a", "b"], ["b"], sort_time=lambda _: 0, photo_id=str, k=0)  # a 1/1, b 1/2+w
    assert [pid for pid, _ in tied] == ["a", "b"]


def test_meaning_only_hits_are_withheld_when_exact_hits_are_enough():
    exact = [f"k{i}" for i in range(fusion.FEW_EXACT_HITS)]
    fused = fusion.hybrid_ranking(exact, ["m1", exact[0]], sort_time=lambda _: 0, photo_id=str)
    assert [pid for pid, _ in fused] == exact
    fewer = fusion.hybrid_ranking(exact[:-1], ["m1", exact[0]], sort_time=lambda _: 0, photo_id=str)
    assert [pid for pid, _ in fewer][-1] == "m1" and min(s for _, s in fewer[:-1]) > fewer[-1][1]


def test_explanation_names_cover_every_field_group():
    body = search_body(SearchQuery(owner=OWNER, text="dog lisbon"))
    clauses = [c.get("multi_match") or c["match"]["ocr_text.grams"] for c in body["query"]["bool"]["should"]]
    names = {c["_name"] for c in clauses}
    # every field group per word, plus the OCR trigrams for the word long enough to use them ("lisbon")
    assert names == {f"why:{field}:{i}" for field in EXPLAINED_FIELDS for i in range(2)} | {"why:ocr_text:1"}
    assert all(c["boost"] == 0 for c in clauses)


# ---- issue 12: understood parts, relaxation, OCR trigrams, the meaning floor ----------------------------------


def test_understood_parts_are_ranked_clauses_not_filters_request_body():
    from photo_organizer.search.models import QueryPart

    parts = (QueryPart(kind="tag", value="Dog", words=("Dog", "puppy")), QueryPart(kind="place", value="Lisbon",
                                                                                    words=("Lisbon",)))
    body = search_body(SearchQuery(owner=OWNER, parts=parts), facets=False)
    bool_query = body["query"]["bool"]
    assert bool_query["filter"] == [{"term": {"owner": OWNER}}]  # no tag or place filter
    tag, place = bool_query["must"]
    keyword, weak, *words = tag["bool"]["should"]
    assert tag["bool"]["minimum_should_match"] == 1
    assert keyword == {"constant_score": {"filter": {"term": {"tags.keyword": "dog"}}, "boost": 4.0}}
    # a weak label satisfies the part too, at a quarter of the tag's boost (the local index's PART_WEAK_SCORE)
    assert weak == {"constant_score": {"filter": {"term": {"weak_tags.keyword": "dog"}}, "boost": 1.0}}
    first = [w["bool"]["must"][0] for w in words]
    assert [(w.get("dis_max", {}).get("queries") or [w])[0]["multi_match"]["query"] for w in first] == ["Dog", "puppy"]
    assert place["bool"]["should"][0]["constant_score"]["filter"]["bool"]["should"][0] == {
        "term": {"place.city.keyword": {"value": "Lisbon", "case_insensitive": True}}}
    # relaxed: any one of the parts and words, each one present adding the coverage score (search.parts)
    relaxed = search_body(SearchQuery(owner=OWNER, text="sunset", parts=parts, relaxed=True), facets=False)
    (anyone,) = relaxed["query"]["bool"]["must"]
    assert anyone["bool"]["minimum_should_match"] == 1 and len(anyone["bool"]["should"]) == 3
    strict = search_body(SearchQuery(owner=OWNER, text="sunset", parts=parts), facets=False)["query"]["bool"]["must"]
    for clause, covered in zip(strict, anyone["bool"]["should"], strict=True):
        assert covered == {"bool": {"must": [clause, {"constant_score": {"filter": clause, "boost": 1000.0}}]}}
    # the explanation covers the parts' words too
    names = {c.get("multi_match", c.get("match", {}).get("ocr_text.grams", {})).get("_name")
             for c in relaxed["query"]["bool"]["should"]}
    assert "why:tags:1" in names and "why:ocr_text:0" in names


def test_relaxed_search_ranks_by_the_parts_and_words_present_first_request_body():
    """The relaxed reading of "fresh bread sign" (a tag part and two words) as the adapter sends it: each clause
    counts RELAXED_COVERAGE_SCORE once present, so a photo with more of them ranks first, as in the local index
    (tests/integration/test_search_index_contract.py pins the order there)."""
    from photo_organizer.search.models import QueryPart
    from photo_organizer.search.parts import PART_KEYWORD_SCORE, RELAXED_COVERAGE_SCORE

    query = SearchQuery(owner=OWNER, text="fresh bread", parts=(QueryPart(kind="tag", value="sign", words=("sign",)),),
                        relaxed=True, limit=20)
    client = RecordingClient()
    adapter(client).search(query, facets=False)
    ((operation, call),) = client.calls
    assert operation == "search" and call["params"] == {"routing": OWNER}
    assert_golden("relaxed_parts_search", call["body"])
    (anyone,) = call["body"]["query"]["bool"]["must"]
    boosts = [c["bool"]["must"][1]["constant_score"]["boost"] for c in anyone["bool"]["should"]]
    assert boosts == [RELAXED_COVERAGE_SCORE] * 3 and RELAXED_COVERAGE_SCORE > 100 * PART_KEYWORD_SCORE


def test_ocr_text_has_a_trigram_subfield_like_the_local_index_request_body():
    mapping = load_mapping()
    analysis = mapping["settings"]["analysis"]
    assert mapping["mappings"]["properties"]["ocr_text"]["fields"]["grams"] == {"type": "text", "analyzer": "ocr_grams"}
    assert analysis["tokenizer"]["trigrams"] == {"type": "ngram", "min_gram": 3, "max_gram": 3}
    assert analysis["analyzer"]["ocr_grams"]["char_filter"] == ["letters_and_digits"]
    import re

    # the char filter keeps letters and digits only, as search.grams.squeeze does (ASCII stand-in for \\p{..})
    pattern = analysis["char_filter"]["letters_and_digits"]["pattern"]
    assert pattern == "[^\\p{L}\\p{Nd}]+"
    assert re.sub("[^A-Za-z0-9]+", "", "NO PARKING, any-time!") == "NOPARKINGanytime"
    body = search_body(SearchQuery(owner=OWNER, text="parking bar"), facets=False)
    parking, bar = body["query"]["bool"]["must"]
    assert parking["dis_max"]["queries"][1] == {"constant_score": {
        "filter": {"match": {"ocr_text.grams": {"query": "parking", "operator": "and"}}}, "boost": 0.5}}
    assert "dis_max" not in bar  # three letters: no trigram search


@pytest.mark.parametrize("filename", ["hubble_deep_field.jpg", "brick_sign.jpg", "Paris-2019 (copy).HEIC",
                                      "IMG_2034.JPG", "café.menu.png"])
def test_file_names_split_into_words_at_every_separator_as_in_the_local_index(filename):
    """The standard tokenizer keeps "hubble_deep_field.jpg" one token (UAX#29 joins letters across "_" and "."):
    "deep" would find the photo locally and not in the cloud. The file name's own analyzer splits at every run of
    what is neither letter nor digit, as the local index's simple tokenizer does (mapping schema 4)."""
    import re

    import tantivy

    mapping = load_mapping()
    assert mapping["mappings"]["properties"]["filename"]["analyzer"] == "file_name_text"
    analyzer = mapping["settings"]["analysis"]["analyzer"]["file_name_text"]
    tokenizer = mapping["settings"]["analysis"]["tokenizer"][analyzer["tokenizer"]]
    assert tokenizer == {"type": "pattern", "pattern": "[^\\p{L}\\p{Nd}]+"} and analyzer["filter"][0] == "lowercase"
    # the Java pattern in Python's terms: [^\p{L}\p{Nd}] is what is not a letter or a decimal digit
    cloud = [w.lower() for w in re.split(r"[\W_]+", filename) if w]
    local = (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.lowercase()).build()
             .analyze(filename))
    assert cloud == local


def test_vocabulary_lists_every_tag_weak_tag_and_city_of_the_owner_request_body():
    """moto has no OpenSearch: the request is checked against its golden file, a recorded response shape read."""
    client = RecordingClient(search=[load("vocabulary_response.json")])
    known = adapter(client).vocabulary(OWNER)
    ((operation, call),) = client.calls
    assert operation == "search" and call["params"] == {"routing": OWNER}
    assert_golden("vocabulary", call["body"])
    aggs = call["body"]["aggs"]
    # not the FACET_SIZE most common: query understanding must know a tag of any count
    assert {a["terms"]["size"] for a in aggs.values()} == {VOCABULARY_SIZE} and VOCABULARY_SIZE > FACET_SIZE
    assert known == {"tags": ("animal", "dog", "flower", "vase"), "places": ("Lisbon",)}


def test_weak_tags_are_sent_only_when_a_document_has_some_request_body():
    # an index made before mapping schema 3 is strict and would refuse the field: Rekognition's documents (no
    # weak labels) never carry it
    assert "weak_tags" not in document_source(document())
    source = document_source(document(weak_tags=("cup", "tableware")))
    assert source["weak_tags"] == ["cup", "tableware"]
    assert load_mapping()["mappings"]["properties"]["weak_tags"]["fields"]["keyword"]["type"] == "keyword"
    # explained like the tags, never a facet or a suggestion
    assert EXPLAINED_FIELDS["weak_tags"] == ("weak_tags",)
    assert "weak_tags" not in str(facet_aggs()) and "weak_tags" not in str(suggest_body(OWNER, "va"))


def test_knn_asks_for_the_meaning_floor_request_body():
    body = knn_body(SearchQuery(owner=OWNER, text="x", embedding=VECTOR), k=10)
    assert body["min_score"] == pytest.approx((1 + fusion.MEANING_FLOOR) / 2)


def test_fused_hybrid_withholds_meaning_only_hits_when_exact_hits_are_enough():
    from photo_organizer.adapters.aws.opensearch_responses import SemanticHit, fuse_hybrid
    from photo_organizer.search.models import SearchHit, SearchResults

    query = SearchQuery(owner=OWNER, text="dog", embedding=VECTOR)
    exact = [SearchHit(photo_id=f"k{i}", score=1.0, sort_values=(1.0, 10 - i, f"k{i}"))
             for i in range(fusion.FEW_EXACT_HITS)]
    semantic = [SemanticHit(photo_id="m", sort_time=99), SemanticHit(photo_id="k0", sort_time=10)]
    enough = fuse_hybrid(query, SearchResults(hits=tuple(exact), total=len(exact)), semantic)
    assert [h.photo_id for h in enough.hits] == [h.photo_id for h in exact] and enough.total == len(exact)
    few = fuse_hybrid(query, SearchResults(hits=tuple(exact[:2]), total=2), semantic)
    assert [h.photo_id for h in few.hits] == ["k0", "k1", "m"] and few.hits[-1].semantic_only and few.total == 3


# ---- the same adapter against a live cluster (OPENSEARCH_URL) ----------------------------------------------


@pytest.fixture
def live_index() -> Iterator[OpenSearchIndex]:
    """An OpenSearchIndex on a fresh alias of the cluster at OPENSEARCH_URL (e.g. http://localhost:9200 with
    the security plugin off); the contract suite can take its adapter from here. Skips without the variable."""
    url = os.environ.get("OPENSEARCH_URL")
    if not url:
        pytest.skip("OPENSEARCH_URL is not set: the live OpenSearch run is skipped (golden request tests still ran)")
    from opensearchpy import OpenSearch

    client = OpenSearch(hosts=[url], verify_certs=os.environ.get("OPENSEARCH_VERIFY_CERTS", "1") == "1", timeout=30)
    alias = f"po-test-{uuid.uuid4().hex[:8]}"
    index = OpenSearchIndex(url, alias=alias, client_factory=lambda: client, refresh="wait_for")
    index.ensure_index(1)
    yield index
    client.indices.delete(index=f"{alias}-v*", params={"ignore_unavailable": "true"})
    client.indices.delete_index_template(name=f"{alias}-template", params={"ignore": 404})


def test_live_cluster_search_isolation_versions_and_tombstones(live_index):
    live_index.upsert([document("p-beach"), document("p-dog", tags=("animal", "dog"), caption="a dog")])
    live_index.upsert([document("p-other", owner=OTHER)])
    assert live_index.upsert([document("p-dog", version=1, tags=("cat",))]) == []  # older: skipped
    found = live_index.search(SearchQuery(owner=OWNER, text="dog"))
    assert {h.photo_id for h in found.hits} == {"p-beach", "p-dog"}
    assert "p-other" not in {h.photo_id for h in live_index.search(SearchQuery(owner=OWNER, text="beach")).hits}
    live_index.delete(OWNER, "p-dog", version=2_000_000_000_000_000)
    live_index.upsert([document("p-dog", version=1_800_000_000_000_000)])  # a late record after the delete
    assert [h.photo_id for h in live_index.search(SearchQuery(owner=OWNER, text="dog")).hits] == ["p-beach"]
    assert live_index.count(OWNER) == 1
    assert [f.value for f in live_index.suggest(OWNER, "lis")["places"]] == ["Lisbon"]
    hybrid = live_index.search(SearchQuery(owner=OWNER, text="dog", embedding=VECTOR))
    assert [h.photo_id for h in hybrid.hits] == ["p-beach"]


def test_account_erasure_delete_by_query_takes_the_owners_live_documents_request_body():
    """moto has no OpenSearch: the request is checked against its golden file, the recorded response shape read.
    Tombstones are kept (must_not deleted): a retried older stream record must not bring a document back."""
    client = RecordingClient(delete_by_query=[{"took": 12, "timed_out": False, "total": 3, "deleted": 3, "batches": 1,
                                               "version_conflicts": 0, "noops": 0, "failures": []}])
    assert adapter(client).forget_owner(OWNER) == 3
    (operation, call), = client.calls
    assert operation == "delete_by_query"
    assert_golden("forget_owner_delete_by_query", call)
    assert call["params"] == {"conflicts": "proceed", "routing": OWNER}
