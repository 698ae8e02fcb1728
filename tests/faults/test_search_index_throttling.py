"""Throttling of every OpenSearch call (HTTP 429, es_rejected_execution_exception: the domain's answer when its
queues are full), with recorded response shapes (tests/data/opensearch): no OpenSearch server can be had here.

The index adapter runs against an opensearch-py stand-in that keeps indices, aliases and documents and answers the
recorded shapes; each case throttles one call once in the operation that makes it (stream writes, search, suggest,
count, index creation, a full reindex with its alias swap, account erasure's forget, tombstone purge). The
operation raises a retryable error (the stream indexer reports the batch's records failed, the API answers 503, the
operator command says try again); run again it completes, and the index holds each document once, at its version.
The security plugin's role requests (deploy time) retry a 429 themselves within their budget."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from photo_organizer.errors import RetryableError
from photo_organizer.search.models import SearchDocument, SearchQuery

from fault_library import OWNER, OpenSearchStandIn
from throttling import covers

DATA = Path(__file__).resolve().parents[1] / "data" / "opensearch"
SEARCH = covers(
    "search indexing",
    "opensearch_index:opensearch.bulk",
    "opensearch_index:opensearch.search",
    "opensearch_index:opensearch.msearch",
    "opensearch_index:opensearch.count",
    "opensearch_index:opensearch.delete_by_query",
    "opensearch_index:opensearch.indices.put_index_template",
    "opensearch_index:opensearch.indices.exists",
    "opensearch_index:opensearch.indices.exists_alias",
    "opensearch_index:opensearch.indices.create",
    "opensearch_index:opensearch.indices.get_alias",
    "opensearch_index:opensearch.indices.put_settings",
    "opensearch_index:opensearch.indices.refresh",
    "opensearch_index:opensearch.indices.update_aliases",
)
SECURITY = covers(
    "search indexing",
    "opensearch_security:opensearch.PUT security/roles",
    "opensearch_security:opensearch.PUT security/rolesmapping",
    "opensearch_security:opensearch.DELETE security/roles",
    "opensearch_security:opensearch.DELETE security/rolesmapping",
)


class Throttled(Exception):
    pass


class Cluster(OpenSearchStandIn):
    """The bulk stand-in of the fault suite, with indices, aliases and the read calls answering recorded shapes;
    `throttle` names one call ("bulk", "indices.create") refused with a 429 once."""

    def __init__(self) -> None:
        super().__init__()
        self.indices = _Indices(self)
        self.names: set[str] = set()
        self.aliases: dict[str, set[str]] = {}
        self.throttle: str | None = None
        self.throttled = 0
        self.calls: list[str] = []

    def hit(self, name: str) -> None:
        from opensearchpy.exceptions import TransportError

        self.calls.append(name)
        if name == self.throttle and not self.throttled:
            self.throttled += 1
            raise TransportError(429, "es_rejected_execution_exception", {"error": {
                "type": "es_rejected_execution_exception", "reason": "rejected execution of coordinating operation"}})

    def bulk(self, **kwargs: Any) -> dict[str, Any]:
        self.hit("bulk")
        return super().bulk(**kwargs)

    def search(self, **kwargs: Any) -> dict[str, Any]:
        self.hit("search")
        return json.loads((DATA / "search_response.json").read_text())

    def msearch(self, **kwargs: Any) -> dict[str, Any]:
        self.hit("msearch")
        return json.loads((DATA / "msearch_response_hybrid.json").read_text())

    def count(self, **kwargs: Any) -> dict[str, Any]:
        self.hit("count")
        return super().count(**kwargs)

    def delete_by_query(self, **kwargs: Any) -> dict[str, Any]:
        self.hit("delete_by_query")
        return super().delete_by_query(**kwargs)


class _Indices:
    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster

    def put_index_template(self, **kwargs: Any) -> dict:
        self.c.hit("indices.put_index_template")
        return {"acknowledged": True}

    def exists(self, *, index: str) -> bool:
        self.c.hit("indices.exists")
        return index in self.c.names

    def exists_alias(self, *, name: str) -> bool:
        self.c.hit("indices.exists_alias")
        return bool(self.c.aliases.get(name))

    def create(self, *, index: str, body: dict) -> dict:
        from opensearchpy.exceptions import RequestError

        self.c.hit("indices.create")
        if index in self.c.names:
            raise RequestError(400, "resource_already_exists_exception", {"error": {
                "type": "resource_already_exists_exception", "reason": f"index [{index}] already exists"}})
        self.c.names.add(index)
        for alias in (body or {}).get("aliases", {}):
            self.c.aliases.setdefault(alias, set()).add(index)
        return {"acknowledged": True, "index": index}

    def get_alias(self, *, name: str) -> dict:
        from opensearchpy.exceptions import NotFoundError

        self.c.hit("indices.get_alias")
        if not self.c.aliases.get(name):
            raise NotFoundError(404, "alias_not_found", {})
        return {index: {"aliases": {name: {}}} for index in self.c.aliases[name]}

    def put_settings(self, **kwargs: Any) -> dict:
        self.c.hit("indices.put_settings")
        return {"acknowledged": True}

    def refresh(self, **kwargs: Any) -> dict:
        self.c.hit("indices.refresh")
        return {"_shards": {"total": 1, "successful": 1, "failed": 0}}

    def update_aliases(self, *, body: dict) -> dict:
        self.c.hit("indices.update_aliases")
        for action in body["actions"]:
            (kind, spec), = action.items()
            indices = spec.get("indices") or [spec["index"]]
            for index in indices:
                if kind == "add":
                    self.c.aliases.setdefault(spec["alias"], set()).add(index)
                elif kind == "remove":
                    self.c.aliases.get(spec["alias"], set()).discard(index)
        return {"acknowledged": True}


def document(n: int, version: int = 1) -> SearchDocument:
    return SearchDocument(owner=OWNER, photo_id=f"{n:032x}", version=version, filename=f"p{n}.jpg",
                          tags=("beach",), uploaded_at=datetime(2026, 12, 1, 10, tzinfo=timezone.utc))


def operation(index, name: str):
    """The use-case operation that makes the call `name`."""
    from photo_organizer.search.models import SortOrder

    if name == "bulk":
        return lambda: index.upsert([document(1), document(2)])
    if name == "search":
        return lambda: index.search(SearchQuery(owner=OWNER, text="beach", sort=SortOrder.NEWEST))
    if name == "msearch":
        return lambda: index.search(SearchQuery(owner=OWNER, text="beach", embedding=(0.1,) * 384))
    if name == "count":
        return lambda: index.count(OWNER)
    if name == "delete_by_query":
        return lambda: index.forget_owner(OWNER)
    if name in ("indices.exists", "indices.exists_alias"):
        return lambda: index.ensure_index(3)  # a version the cluster has no index of yet
    return lambda: index.reindex_from([document(1, 2), document(2, 2)], 2)  # a reindex makes the rest


@pytest.mark.parametrize("site", SEARCH, ids=str)
def test_a_throttled_opensearch_call_fails_retryably_and_the_rerun_completes_recorded_shapes(site):
    from photo_organizer.adapters.aws.opensearch_index import OpenSearchIndex

    cluster = Cluster()
    index = OpenSearchIndex("search.example", region="us-east-1", client_factory=lambda: cluster)
    index.ensure_index(1)
    index.upsert([document(1), document(2)])
    cluster.throttle, cluster.calls = site.operation, []
    run = operation(index, site.operation)
    with pytest.raises(RetryableError):
        run()
    assert cluster.throttled == 1, f"{site} was never throttled: the operation no longer makes it"
    run()  # the caller's retry: the stream's redelivery, the client's retry after a 503, the operator's rerun
    live = cluster.live_versions(OWNER)
    if site.operation == "delete_by_query":
        assert live == {}
    else:
        assert sorted(live) == [f"{1:032x}", f"{2:032x}"], "each document once"
    if site.operation.startswith("indices.") and site.operation not in ("indices.exists", "indices.exists_alias"):
        assert cluster.aliases["photos"] == {"photos-v2"}, "the alias points at the rebuilt index only"


@pytest.mark.parametrize("site", SECURITY, ids=str)
def test_a_throttled_security_api_request_is_retried_within_the_budget_recorded_shapes(site):
    from photo_organizer.adapters.aws.opensearch_security import HttpResponse, OpenSearchSecurity

    method, resource = site.operation.split(" ")
    resource = resource.removeprefix("security/")
    sent: list[tuple[str, str, int]] = []

    def transport(m: str, url: str, headers: dict, payload: bytes) -> HttpResponse:
        throttled = m == method and f"/{resource}/" in url and not any(s[2] == 429 for s in sent)
        status = 429 if throttled else 200
        sent.append((m, url, status))
        body = b'{"status":"TOO_MANY_REQUESTS"}' if throttled else b'{"status":"OK"}'
        return HttpResponse(status, body)

    clock = [0.0]
    security = OpenSearchSecurity("https://search.example", region="us-east-1", credentials=_Frozen(),
                                  transport=transport, clock=lambda: clock[0], budget_seconds=300,
                                  sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    if method == "PUT":
        security.grant("photos", "reader", ["arn:aws:iam::123456789012:role/api"])
    else:
        security.revoke("photos-reader")
    assert [s for s in sent if s[2] == 429], f"{site} was never throttled"
    assert sum(1 for m, url, status in sent if m == method and f"/{resource}/" in url and status == 200) == 1


class _Frozen:
    access_key, secret_key, token = "testing", "testing", None
