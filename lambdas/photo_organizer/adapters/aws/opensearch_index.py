"""SearchIndex on OpenSearch (managed domain `es`, or Serverless `aoss`) through opensearch-py with SigV4.

Layout: one index `{alias}-v{N}` behind the alias `{alias}`; the template and mapping are
opensearch_mapping.json. Documents have `_id = "{owner}#{photo_id}"` and are routed by owner, so an owner's
queries touch one shard.

Ordering: every document write carries `version_type=external`, `version=document.version` (the photo
item's `updated_at` in microseconds). OpenSearch refuses a version that is not strictly greater with a 409
version_conflict_engine_exception, which this adapter reports as "not newer" and skips: a late or repeated
stream record never overwrites newer data. Tombstones use `external_gte`: a delete decided on version V (a
REMOVE's old image) applies over the document V it saw, as the port and the local index define it; a document
write of V after that tombstone is still refused.

Deletes are tombstones: `{owner, photo_id, deleted: true, deleted_at}` indexed with the external version,
and every query, count, facet and suggestion excludes `deleted: true`. A real DELETE keeps the deleted
version only for `index.gc_deletes` (60 s): a stream record retried after that (Lambda retries for up to
the stream's 24 h retention) would bring the photo back. Raising gc_deletes to 24 h instead would keep every
delete's version in memory on every shard and still be a time bet; a tombstone is a few bytes of disk and
is exact. `purge_tombstones` removes tombstones older than the stream retention (nothing older can arrive).

Isolation: every per-owner request body is built here, and each one starts its bool filter with
`{"term": {"owner": owner}}` (the knn clause carries it inside, as an efficient filter). User text only ever
appears as the `query` of a match/multi_match (or the value of a prefix query for suggestions), never as
query_string, simple_query_string, regexp or wildcard syntax.

Text: `multi_match` `cross_fields` with `operator: and` over fields sharing one analyzer, so "ana lisbon"
matches a photo with Ana in people and Lisbon in place (best_fields would want both words in one field).
Explanations come from named zero-boost clauses (one per field group and query word), which OpenSearch
reports in `matched_queries` without changing the score.

Hybrid: with an embedding and text, one `_msearch` runs the keyword query and a knn query (same filters,
inside the knn clause) over the top `hybrid_window` of each, fused client-side by search.fusion.hybrid_ranking,
the local index's function and tie order: (fused score desc, sort_time desc, photo_id asc), the hybrid cursor.

Serverless (service "aoss") runs without vectors (`supports_vectors = False`): the stack creates a SEARCH
collection, the template maps no `embedding` field and sets no `index.knn`, documents are written without their
embedding, and a query's embedding is ignored (keyword search; the search service reports semantic "off"). Why:
AWS documents that VECTORSEARCH and TIMESERIES collections use server-generated document ids (ours are not kept)
and lists `_create/<id>`, `_update/<id>` and `PUT _doc/<id>` for SEARCH collections only, while knn_vector fields
need VECTORSEARCH. Without our ids the indexer could neither update nor delete a photo's document, nor version it.
- From AWS documentation (not run against a collection here): a SEARCH collection keeps the ids we send;
  `PUT <index>`, `HEAD <index>`, `_bulk`, `_search`, `_count`, index templates and `POST _aliases` are supported
  operations; Serverless does not support refresh parameters on writes, so none is sent (`refresh` is ignored);
  capacity is the service's (no cluster or node tuning). Hence, by our reading rather than a documented
  refusal, nothing refresh- or capacity-shaped goes to aoss: no `_refresh` call after a reindex, and no
  shards, replicas or refresh interval in the template or a reindex.
- Unverified (no live collection): that bulk writes honour `version_type=external` / `external_gte` (a 409 for
  a version that is not newer) and searches return `_version` (reconcile); that index aliases work and the swap
  in one `_aliases` call is atomic (reindex_from); that `routing` is accepted; that `_delete_by_query` works
  (purge_tombstones). Were external versions ignored, a late stream record could overwrite newer data until
  `reconcile` repairs it from the table.

Layout of the adapter: opensearch_requests builds every request body, opensearch_responses reads every response
(and fuses hybrid pages), opensearch_lifecycle holds the mapping, templates, alias swaps and drift; this module
is the client: signing, calls, error translation, retries, reindex and reconcile.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from photo_organizer.adapters.aws.clients import LazyClient
from photo_organizer.errors import (
    ConfigurationError,
    PermanentError,
    PhotoOrganizerError,
    StorageUnavailableError,
)
from photo_organizer.search.models import (
    FacetValue,
    SearchDocument,
    SearchQuery,
    SearchResults,
    SortOrder,
)
from photo_organizer.search.writes import IndexWrite, WriteOutcome, WriteResult
from photo_organizer.adapters.aws.opensearch_lifecycle import (
    Drift,
    IndexedEntry,
    ReindexReport,
    alias_swap_actions,
    diff_index,
    index_name,
    load_mapping,
    template_body,
)
from photo_organizer.keys import check_owner
from photo_organizer.adapters.aws.opensearch_requests import (
    bulk_lines,
    count_body,
    forget_owner_body,
    iso_time,
    knn_body,
    search_body,
    suggest_body,
    vocabulary_body,
)
from photo_organizer.adapters.aws.opensearch_responses import (
    fuse_hybrid,
    parse_bulk_response,
    parse_search_response,
    parse_semantic_hits,
    parse_suggest_response,
    parse_vocabulary_response,
)

DEFAULT_ALIAS = "photos"
HYBRID_WINDOW = 200
BULK_CHUNK = 500
STREAM_RETENTION = timedelta(hours=24)


def translate_error(exc: Exception, *, what: str) -> PhotoOrganizerError:
    from opensearchpy.exceptions import ConnectionError as OsConnectionError
    from opensearchpy.exceptions import TransportError

    if isinstance(exc, OsConnectionError):
        return StorageUnavailableError(f"{what}: {exc}")
    if isinstance(exc, TransportError):
        status = exc.status_code if isinstance(exc.status_code, int) else 0
        if status == 429 or status >= 500:
            return StorageUnavailableError(f"{what}: {exc}")
        if status in (401, 403, 404):
            return ConfigurationError(f"{what}: {exc}")
        return PermanentError(f"{what}: {exc}")
    return PermanentError(f"{what}: {exc!r}")


def _signed_client(endpoint: str, region: str, service: str) -> Any:
    import boto3
    from opensearchpy import AWSV4SignerAuth, OpenSearch, RequestsHttpConnection

    credentials = boto3.Session().get_credentials()
    if credentials is None:
        raise ConfigurationError("no AWS credentials for OpenSearch")
    url = endpoint if "://" in endpoint else f"https://{endpoint}"
    return OpenSearch(
        hosts=[url],
        # The signer asks the (refreshable) credentials for a frozen copy on every request.
        http_auth=AWSV4SignerAuth(credentials, region, service),
        use_ssl=url.startswith("https://"),
        verify_certs=True,
        connection_class=RequestsHttpConnection,
        pool_maxsize=8,
        timeout=10,
        max_retries=2,
        retry_on_timeout=True,
    )


class OpenSearchIndex:
    def __init__(
        self,
        endpoint: str,
        *,
        alias: str = DEFAULT_ALIAS,
        region: str | None = None,
        service: str = "es",
        client_factory: Callable[[], Any] | None = None,
        refresh: bool | str = False,
        hybrid_window: int = HYBRID_WINDOW,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        if service not in ("es", "aoss"):
            raise ConfigurationError("OpenSearch service must be 'es' (domain) or 'aoss' (Serverless)")
        if client_factory is None and not endpoint:
            raise ConfigurationError("OpenSearch endpoint is not set")
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
        self.alias = alias
        self.service = service
        self._serverless = service == "aoss"
        # The SearchIndex port's capability flag: Serverless is a SEARCH collection, keyword only.
        self.supports_vectors = not self._serverless
        self._refresh = refresh
        self._window = hybrid_window
        self._clock = clock
        self._client = LazyClient(client_factory or (lambda: _signed_client(endpoint, region, service)))

    def _call(self, what: str, operation: Callable[[Any], Any]) -> Any:
        from opensearchpy.exceptions import OpenSearchException

        try:
            return operation(self._client())
        except OpenSearchException as exc:
            raise translate_error(exc, what=what) from exc

    def _write_params(self) -> dict[str, Any]:
        # Serverless refuses refresh parameters on writes; its documents become searchable on its own schedule.
        return {"refresh": self._refresh} if self._refresh and not self._serverless else {}

    # ---- SearchIndex ------------------------------------------------------------------------------------

    def write(self, writes: Sequence[IndexWrite], *, index: str | None = None) -> list[WriteResult]:
        """One bulk request; per-item outcomes (the indexer maps RETRYABLE/FAILED onto its stream records)."""
        if not writes:
            return []
        lines = bulk_lines(index or self.alias, writes, now=self._clock(), vectors=self.supports_vectors)
        response = self._call(
            "bulk", lambda c: c.bulk(body=_ndjson(lines), params=self._write_params())
        )
        return parse_bulk_response(writes, response)

    def upsert(self, documents: list[SearchDocument]) -> list[str]:
        written: list[str] = []
        for start in range(0, len(documents), BULK_CHUNK):
            results = self.write([IndexWrite.of(d) for d in documents[start : start + BULK_CHUNK]])
            _raise_for(results)
            written += [r.write.photo_id for r in results if r.outcome is WriteOutcome.WRITTEN]
        return written

    def delete(self, owner: str, photo_id: str, *, version: int) -> None:
        _raise_for(self.write([IndexWrite(owner, photo_id, version)]))

    def search(self, query: SearchQuery, *, facets: bool = True) -> SearchResults:
        hybrid = (
            self.supports_vectors
            and query.embedding is not None
            and bool(query.text.strip())
            and query.sort is SortOrder.RELEVANCE
        )
        if not hybrid:
            body = search_body(query, facets=facets)
            response = self._call(
                "search",
                lambda c: c.search(index=self.alias, body=body, params={"routing": query.owner}),
            )
            return parse_search_response(query, response)
        header = {"index": self.alias, "routing": query.owner}
        keyword_body = search_body(query, facets=facets, size=self._window)
        semantic_body = knn_body(query, k=self._window)
        response = self._call(
            "msearch", lambda c: c.msearch(body=_ndjson([header, keyword_body, header, semantic_body]))
        )
        keyword_response, semantic_response = _msearch_parts(response)
        keyword = parse_search_response(query, keyword_response)
        return fuse_hybrid(query, keyword, parse_semantic_hits(semantic_response))

    def suggest(self, owner: str, prefix: str, *, limit: int = 10) -> dict[str, tuple[FacetValue, ...]]:
        body = suggest_body(owner, prefix)
        response = self._call(
            "suggest", lambda c: c.search(index=self.alias, body=body, params={"routing": owner})
        )
        return parse_suggest_response(prefix, response, limit=limit)

    def vocabulary(self, owner: str) -> dict[str, tuple[str, ...]]:
        """Every tag, weak tag and city of the owner (see vocabulary_body), for query understanding."""
        body = vocabulary_body(owner)
        response = self._call(
            "vocabulary", lambda c: c.search(index=self.alias, body=body, params={"routing": owner})
        )
        return parse_vocabulary_response(response)

    def count(self, owner: str) -> int:
        body = count_body(owner)
        response = self._call("count", lambda c: c.count(index=self.alias, body=body, params={"routing": owner}))
        return int(response["count"])

    # ---- lifecycle --------------------------------------------------------------------------------------

    def ensure_index(self, version: int) -> str:
        """Puts the template and creates `{alias}-v{version}`; the alias points at it if it points nowhere."""
        name = index_name(self.alias, version)
        self._call(
            "put_index_template",
            lambda c: c.indices.put_index_template(
                name=f"{self.alias}-template", body=template_body(self.alias, serverless=self._serverless)
            ),
        )
        if not self._call("exists", lambda c: c.indices.exists(index=name)):
            has_alias = self._call("exists_alias", lambda c: c.indices.exists_alias(name=self.alias))
            body = {} if has_alias else {"aliases": {self.alias: {}}}
            self._call("create", lambda c: c.indices.create(index=name, body=body))
        return name

    def current_indices(self) -> tuple[str, ...]:
        from opensearchpy.exceptions import NotFoundError

        try:
            return tuple(sorted(self._client().indices.get_alias(name=self.alias)))
        except NotFoundError:
            return ()
        except Exception as exc:  # noqa: BLE001 - translated like every other call
            raise translate_error(exc, what="get_alias") from exc

    def reindex_from(self, documents: Iterable[SearchDocument], new_version: int) -> ReindexReport:
        """Builds `{alias}-v{new_version}` from the table's documents, then swaps the alias in one atomic call.
        Stream writes during the build go to the old index; run `reconcile` after the swap to catch them up
        (versions make it idempotent)."""
        name = index_name(self.alias, new_version)
        settings = load_mapping()["settings"]["index"]
        self._call(
            "put_index_template",
            lambda c: c.indices.put_index_template(
                name=f"{self.alias}-template", body=template_body(self.alias, serverless=self._serverless)
            ),
        )
        # No refreshes and no replicas while loading: the bulk load runs several times faster (auto-expansion off,
        # or it would add the replica back on a multi-node domain). Serverless manages both itself: the index gets
        # the template alone.
        loading: dict[str, Any] = {} if self._serverless else {"settings": {"index": {
            "refresh_interval": "-1", "auto_expand_replicas": "false", "number_of_replicas": 0}}}
        # A rerun of a reindex that failed part-way (a throttled bulk, a refused swap) carries on loading the index
        # the failed run created: the writes are versioned, so what it wrote already comes back NOT_NEWER.
        if not self._call("exists", lambda c: c.indices.exists(index=name)):
            self._call("create", lambda c: c.indices.create(index=name, body=loading))
        previous = self.current_indices()
        report = ReindexReport(index=name, previous=previous, written=0)
        for chunk in _chunks(documents, BULK_CHUNK):
            for result in self._write_with_retry([IndexWrite.of(d) for d in chunk], index=name):
                if result.outcome is WriteOutcome.WRITTEN:
                    report.written += 1
                elif result.outcome is WriteOutcome.NOT_NEWER:
                    report.not_newer += 1
                else:
                    report.failed.append(f"{result.write.doc_id}: {result.reason}")
        if report.failed:
            raise PermanentError(f"reindex into {name} left {len(report.failed)} documents unwritten: {report.failed[:5]}")
        if not self._serverless:  # Serverless: no load settings to undo, and it refreshes on its own schedule
            self._call(
                "put_settings",
                lambda c: c.indices.put_settings(
                    index=name,
                    body={"index": {k: settings[k] for k in ("refresh_interval", "auto_expand_replicas")}},
                ),
            )
            self._call("refresh", lambda c: c.indices.refresh(index=name))
        actions = alias_swap_actions(self.alias, previous, name)
        self._call("update_aliases", lambda c: c.indices.update_aliases(body=actions))
        return report

    def _write_with_retry(self, writes: list[IndexWrite], *, index: str, attempts: int = 3) -> list[WriteResult]:
        done: list[WriteResult] = []
        pending = writes
        for attempt in range(attempts):
            results = self.write(pending, index=index)
            done += [r for r in results if r.outcome is not WriteOutcome.RETRYABLE]
            pending = [r.write for r in results if r.outcome is WriteOutcome.RETRYABLE]
            if not pending:
                return done
        raise StorageUnavailableError(f"bulk into {index}: {len(pending)} documents still throttled")

    def live_versions(self, owner: str) -> dict[str, int]:
        """photo_id -> version of the owner's live documents (the library audit and reconcile)."""
        return {pid: e.version for (_, pid), e in self.indexed_versions(owner=owner).items() if not e.deleted}

    def indexed_versions(self, *, owner: str | None = None) -> dict[tuple[str, str], IndexedEntry]:
        """Every document and tombstone in the index with its version (an admin scan across owners, or one's)."""
        found: dict[tuple[str, str], IndexedEntry] = {}
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "size": 1000,
                "query": {"match_all": {}} if owner is None else {"bool": {"filter": [{"term": {"owner": owner}}]}},
                "_source": ["owner", "photo_id", "deleted"],
                "version": True,
                "sort": [{"owner": {"order": "asc"}}, {"photo_id": {"order": "asc"}}],
            }
            if after is not None:
                body["search_after"] = after
            hits = self._call("scan", lambda c: c.search(index=self.alias, body=body))["hits"]["hits"]
            for hit in hits:
                source = hit["_source"]
                found[(source["owner"], source["photo_id"])] = IndexedEntry(
                    int(hit["_version"]), bool(source.get("deleted"))
                )
            if len(hits) < 1000:
                return found
            after = hits[-1]["sort"]

    def reconcile(self, table_documents: Iterable[SearchDocument], *, apply: bool = True) -> Drift:
        drift = diff_index(table_documents, self.indexed_versions())
        if apply and not drift.clean:
            writes = [IndexWrite.of(d) for d in (*drift.missing, *drift.stale)]
            writes += [IndexWrite(owner, photo_id, version) for owner, photo_id, version in drift.orphaned]
            for start in range(0, len(writes), BULK_CHUNK):
                _raise_for(self._write_with_retry(writes[start : start + BULK_CHUNK], index=self.alias))
        return drift

    def forget_owner(self, owner: str) -> int:
        """Account erasure, once it finished: the owner's live documents go at once, whatever the stream still
        carries (a document whose photo's REMOVE record was lost past the retries, a leftover of a reindex).
        Tombstones stay (owner and photo id only, purged with the others): without them a retried older stream
        record of the photo could bring its document back."""
        check_owner(owner)
        response = self._call("delete_by_query", lambda c: c.delete_by_query(
            index=self.alias, body=forget_owner_body(owner), params={"conflicts": "proceed", "routing": owner}))
        return int(response.get("deleted", 0))

    def purge_tombstones(self, *, older_than: timedelta = STREAM_RETENTION + timedelta(hours=1)) -> int:
        """Deletes tombstones no stream record can still overtake (older than the stream's retention)."""
        cutoff = iso_time(self._clock() - older_than)
        body = {"query": {"bool": {"filter": [{"term": {"deleted": True}}, {"range": {"deleted_at": {"lt": cutoff}}}]}}}
        response = self._call(
            "delete_by_query",
            lambda c: c.delete_by_query(index=self.alias, body=body, params={"conflicts": "proceed"}),
        )
        return int(response.get("deleted", 0))


def _raise_for(results: Sequence[WriteResult]) -> None:
    retryable = [r for r in results if r.outcome is WriteOutcome.RETRYABLE]
    failed = [r for r in results if r.outcome is WriteOutcome.FAILED]
    if failed:
        raise PermanentError(f"index write refused: {failed[0].write.doc_id}: {failed[0].reason}")
    if retryable:
        raise StorageUnavailableError(f"index write throttled: {len(retryable)} documents: {retryable[0].reason}")


def _ndjson(lines: Sequence[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n" for line in lines)


def _msearch_parts(response: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    parts = response.get("responses") or []
    if len(parts) != 2:
        raise StorageUnavailableError(f"msearch answered {len(parts)} responses for 2 searches")
    for part in parts:
        if "error" in part:
            status = int(part.get("status", 500))
            message = f"msearch: {status} {json.dumps(part['error'])[:300]}"
            raise StorageUnavailableError(message) if status == 429 or status >= 500 else PermanentError(message)
    return parts[0], parts[1]


def _chunks(items: Iterable[SearchDocument], size: int) -> Iterator[list[SearchDocument]]:
    chunk: list[SearchDocument] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def build_index() -> OpenSearchIndex:
    """The adapter from the Lambda environment: PO_OPENSEARCH_ENDPOINT (host or https URL), PO_OPENSEARCH_ALIAS
    (default "photos"), PO_OPENSEARCH_SERVICE ("es" for a domain, "aoss" for Serverless), AWS_REGION."""
    endpoint = os.environ.get("PO_OPENSEARCH_ENDPOINT", "")
    if not endpoint:
        raise ConfigurationError("PO_OPENSEARCH_ENDPOINT is not set")
    return OpenSearchIndex(
        endpoint,
        alias=os.environ.get("PO_OPENSEARCH_ALIAS") or DEFAULT_ALIAS,
        service=os.environ.get("PO_OPENSEARCH_SERVICE") or "es",
        region=os.environ.get("AWS_REGION"),
    )
