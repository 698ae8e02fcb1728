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
inside the knn clause) over the top `hybrid_window` of each, fused with reciprocal rank fusion client-side.

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
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from photo_organizer.adapters.aws.clients import LazyClient
from photo_organizer.errors import (
    ConfigurationError,
    PermanentError,
    PhotoOrganizerError,
    StorageUnavailableError,
    ValidationError,
)
from photo_organizer.search import fusion
from photo_organizer.search.models import (
    FacetValue,
    MatchReason,
    SearchDocument,
    SearchHit,
    SearchQuery,
    SearchResults,
    SortOrder,
)
from photo_organizer.search.writes import IndexWrite, WriteOutcome, WriteResult

MAPPING_FILE = Path(__file__).with_name("opensearch_mapping.json")
DEFAULT_ALIAS = "photos"
RRF_K = fusion.RRF_K
HYBRID_WINDOW = 200
FACET_SIZE = 20
SUGGEST_BUCKETS = 100  # buckets per field before the prefix check; docs matching "li" also carry other tags
MAX_EXPLAINED_TERMS = 8
MAX_PREFIX_CHARS = 64
BULK_CHUNK = 500
STREAM_RETENTION = timedelta(hours=24)

TEXT_FIELDS = (
    "tags^4",
    "people.name^4",
    "place.city^2",
    "place.region^2",
    "place.country^2",
    "caption^1.5",
    "ocr_text",
    "filename",
)
# MatchReason.field -> the fields that stand for it. Listed rather than `place.*`: a wildcard would also pull
# in the keyword subfields and the geo_point.
EXPLAINED_FIELDS: dict[str, tuple[str, ...]] = {
    "people": ("people.name",),
    "tags": ("tags",),
    "place": ("place.city", "place.region", "place.country"),
    "caption": ("caption",),
    "ocr_text": ("ocr_text",),
    "filename": ("filename",),
}
FACET_FIELDS = {"tags": "tags.keyword", "people": "people.facet", "places": "place.city.keyword"}
PERSON_SEP = "\x1f"  # people.facet = "{person_id}\x1f{name}": one bucket carries the id and its display name
SUGGEST_FIELDS: dict[str, tuple[str, ...]] = {
    "tags": ("tags.keyword",),
    "people": ("people.name",),  # analysed: "sil" finds "Ana Silva"
    "places": ("place.city.keyword", "place.region.keyword", "place.country.keyword"),
}


# ---- writes -----------------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def document_source(document: SearchDocument, *, vectors: bool = True) -> dict[str, Any]:
    source: dict[str, Any] = {
        "owner": document.owner,
        "photo_id": document.photo_id,
        "deleted": False,
        "uploaded_at": _iso(document.uploaded_at),
        "sort_time": _iso(document.sort_time),
        "filename": document.filename,
        "tags": list(document.tags),
        "people": [
            {"id": p.person_id, "facet": f"{p.person_id}{PERSON_SEP}{p.name or ''}", **({"name": p.name} if p.name else {})}
            for p in document.people
        ],
        "ocr_text": document.ocr_text,
        "caption": document.caption,
        "sensitive": document.sensitive,
        "hidden": document.hidden,
    }
    if document.taken_at is not None:
        source["taken_at"] = _iso(document.taken_at)
    if document.place is not None:
        place = document.place
        source["place"] = {
            k: v
            for k, v in {
                "city": place.city,
                "region": place.region,
                "country": place.country,
                "country_code": place.country_code,
            }.items()
            if v
        }
        if place.lat is not None and place.lon is not None:
            source["place"]["location"] = {"lat": place.lat, "lon": place.lon}
    if document.camera:
        source["camera"] = document.camera
    if document.duplicate_of:
        source["duplicate_of"] = document.duplicate_of
    if vectors and document.embedding is not None:  # without vectors the mapping has no such field (strict)
        source["embedding"] = list(document.embedding)
    return source


def tombstone_source(owner: str, photo_id: str, deleted_at: datetime) -> dict[str, Any]:
    return {"owner": owner, "photo_id": photo_id, "deleted": True, "deleted_at": _iso(deleted_at)}


def bulk_lines(
    index: str, writes: Sequence[IndexWrite], *, now: datetime, vectors: bool = True
) -> list[dict[str, Any]]:
    """The bulk API's alternating action/source lines."""
    lines: list[dict[str, Any]] = []
    for write in writes:
        action = {
            "_index": index,
            "_id": write.doc_id,
            "routing": write.owner,
            "version": write.version,
            "version_type": "external" if write.document is not None else "external_gte",
        }
        source = (
            document_source(write.document, vectors=vectors)
            if write.document is not None
            else tombstone_source(write.owner, write.photo_id, now)
        )
        lines += [{"index": action}, source]
    return lines


def parse_bulk_response(writes: Sequence[IndexWrite], response: Mapping[str, Any]) -> list[WriteResult]:
    items = response.get("items") or []
    if len(items) != len(writes):
        raise StorageUnavailableError(f"bulk answered {len(items)} items for {len(writes)} writes")
    results = []
    for write, item in zip(writes, items):
        (result,) = item.values()
        status = int(result.get("status", 0))
        error = result.get("error") or {}
        kind = error.get("type", "") if isinstance(error, dict) else str(error)
        if 200 <= status < 300:
            results.append(WriteResult(write, WriteOutcome.WRITTEN))
        elif status == 409 and kind == "version_conflict_engine_exception":
            results.append(WriteResult(write, WriteOutcome.NOT_NEWER))
        elif status == 429 or status >= 500:
            results.append(WriteResult(write, WriteOutcome.RETRYABLE, f"{status} {kind}"))
        else:
            reason = error.get("reason", "") if isinstance(error, dict) else ""
            results.append(WriteResult(write, WriteOutcome.FAILED, f"{status} {kind}: {reason}"[:500]))
    return results


# ---- reads ------------------------------------------------------------------------------------------------


def owner_filter(owner: str) -> dict[str, Any]:
    if not owner:
        raise ValidationError("a search needs an owner")
    return {"term": {"owner": owner}}


def _scope(query: SearchQuery) -> dict[str, Any]:
    """The filter-only bool every part of a search shares (keyword side, knn side, facets)."""
    filters: list[dict[str, Any]] = [owner_filter(query.owner)]
    filters += [{"term": {"tags.keyword": tag.casefold()}} for tag in query.tags]
    filters += [{"term": {"people.id": person}} for person in query.people]
    if query.place:
        filters.append(
            {
                "bool": {
                    "should": [
                        {"term": {f"place.{name}.keyword": {"value": query.place, "case_insensitive": True}}}
                        for name in ("city", "region", "country")
                    ]
                    + [{"term": {"place.country_code": query.place}}],
                    "minimum_should_match": 1,
                }
            }
        )
    if query.dates is not None and (query.dates.start or query.dates.end):
        bounds: dict[str, str] = {}
        if query.dates.start:
            bounds["gte"] = _iso(query.dates.start)
        if query.dates.end:
            bounds["lt"] = _iso(query.dates.end)
        filters.append({"range": {"sort_time": bounds}})
    if query.near is not None:
        filters.append(
            {
                "geo_distance": {
                    "distance": f"{query.near.km}km",
                    "place.location": {"lat": query.near.lat, "lon": query.near.lon},
                }
            }
        )
    if query.camera:
        filters.append({"term": {"camera": query.camera}})
    must_not: list[dict[str, Any]] = [{"term": {"deleted": True}}]
    if not query.include_hidden:
        must_not.append({"term": {"hidden": True}})
    if not query.include_sensitive:
        must_not.append({"term": {"sensitive": True}})
    return {"filter": filters, "must_not": must_not}


def explained_terms(text: str) -> list[str]:
    terms: list[str] = []
    for word in text.split():
        word = word.casefold()[:64]
        if word not in terms:
            terms.append(word)
    return terms[:MAX_EXPLAINED_TERMS]


def _sort(order: SortOrder) -> list[dict[str, Any]]:
    tail = [{"sort_time": {"order": "desc"}}, {"photo_id": {"order": "desc"}}]
    return tail if order is SortOrder.NEWEST else [{"_score": {"order": "desc"}}, *tail]


def _check_after(order: SortOrder, after: tuple) -> list[Any]:
    """search_after values come from a cursor: only the shapes this adapter hands out get through."""
    expected = (int, str) if order is SortOrder.NEWEST else ((int, float), int, str)
    if len(after) != len(expected) or not all(
        isinstance(v, kind) and not isinstance(v, bool) for v, kind in zip(after, expected)
    ):
        raise ValidationError("invalid cursor")
    return list(after)


def search_body(query: SearchQuery, *, facets: bool = True, size: int | None = None) -> dict[str, Any]:
    """The keyword side: filters, optional text, sort, search_after, facets."""
    scope = _scope(query)
    bool_query: dict[str, Any] = dict(scope)
    text = query.text.strip()
    if text:
        bool_query["must"] = [
            {
                "multi_match": {
                    "query": text,
                    "type": "cross_fields",
                    "operator": "and",
                    "fields": list(TEXT_FIELDS),
                }
            }
        ]
        bool_query["should"] = [
            {"multi_match": {"query": term, "fields": list(fields), "boost": 0, "_name": f"why:{name}:{i}"}}
            for name, fields in EXPLAINED_FIELDS.items()
            for i, term in enumerate(explained_terms(text))
        ]
    body: dict[str, Any] = {
        "size": size if size is not None else query.limit,
        "track_total_hits": True,
        "_source": ["photo_id"],
        "query": {"bool": bool_query},
        "sort": _sort(query.sort),
    }
    if query.after is not None and size is None:
        body["search_after"] = _check_after(query.sort, query.after)
    if facets:
        body["aggs"] = facet_aggs()
    return body


def facet_aggs() -> dict[str, Any]:
    aggs: dict[str, Any] = {name: {"terms": {"field": f, "size": FACET_SIZE}} for name, f in FACET_FIELDS.items()}
    aggs["years"] = {
        "date_histogram": {"field": "sort_time", "calendar_interval": "year", "format": "yyyy", "min_doc_count": 1}
    }
    return aggs


def knn_body(query: SearchQuery, *, k: int) -> dict[str, Any]:
    if query.embedding is None:
        raise ValidationError("a semantic search needs an embedding")
    return {
        "size": k,
        "_source": ["photo_id"],
        "query": {
            "knn": {
                "embedding": {
                    "vector": list(query.embedding),
                    "k": k,
                    # Inside the knn clause: the lucene engine filters while it walks the graph, so an owner
                    # with few photos still gets k of their own (a post-filter would return mostly nothing).
                    "filter": {"bool": _scope(query)},
                }
            }
        },
    }


def count_body(owner: str) -> dict[str, Any]:
    return {"query": {"bool": {"filter": [owner_filter(owner)], "must_not": [{"term": {"deleted": True}}]}}}


def suggest_body(owner: str, prefix: str) -> dict[str, Any]:
    """One filter agg per field (a prefix query: its value is literal, `*` included) with a terms agg below.
    The terms of a matching photo include its other values too; parse_suggest_response keeps the ones that
    start with the prefix."""
    prefix = prefix.strip()[:MAX_PREFIX_CHARS]
    aggs: dict[str, Any] = {}
    for kind, fields in SUGGEST_FIELDS.items():
        for f in fields:
            if kind == "people":  # the analysed name's words hold lowercase tokens; the bucket is id + name
                condition, values = {"prefix": {f: {"value": prefix.casefold()}}}, FACET_FIELDS["people"]
            else:
                condition, values = {"prefix": {f: {"value": prefix, "case_insensitive": True}}}, f
            aggs[f"{kind}|{f}"] = {
                "filter": condition,
                "aggs": {"values": {"terms": {"field": values, "size": SUGGEST_BUCKETS}}},
            }
    return {
        "size": 0,
        "query": {
            "bool": {
                "filter": [owner_filter(owner)],
                "must_not": [{"term": {"deleted": True}}, {"term": {"hidden": True}}, {"term": {"sensitive": True}}],
            }
        },
        "aggs": aggs,
    }


def parse_suggest_response(
    prefix: str, response: Mapping[str, Any], *, limit: int
) -> dict[str, tuple[FacetValue, ...]]:
    wanted = prefix.strip()[:MAX_PREFIX_CHARS].casefold()
    found: dict[str, dict[str, FacetValue]] = {kind: {} for kind in SUGGEST_FIELDS}
    for name, agg in (response.get("aggregations") or {}).items():
        kind = name.split("|", 1)[0]
        if kind not in found:
            continue
        for bucket in agg.get("values", {}).get("buckets", []):
            candidate = _facet_value(kind, str(bucket["key"]), int(bucket["doc_count"]))
            words = (candidate.label or "").casefold().split() if kind == "people" else [candidate.value.casefold()]
            if not any(word.startswith(wanted) for word in words):
                continue
            # The same name as a city and a region counts once: the larger count.
            current = found[kind].get(candidate.value)
            if current is None or candidate.count > current.count:
                found[kind][candidate.value] = candidate
    return {
        kind: tuple(sorted(values.values(), key=lambda f: (-f.count, f.value))[:limit]) for kind, values in found.items()
    }


def _facet_value(kind: str, key: str, count: int) -> FacetValue:
    if kind == "people":
        person_id, _, name = key.partition(PERSON_SEP)
        return FacetValue(value=person_id, count=count, label=name or None)
    return FacetValue(value=key, count=count)


def _reasons(matched: Any, terms: Sequence[str]) -> tuple[MatchReason, ...]:
    names = matched.keys() if isinstance(matched, Mapping) else (matched or ())
    by_field: dict[str, list[str]] = {}
    for name in names:
        parts = str(name).split(":")
        if len(parts) != 3 or parts[0] != "why" or parts[1] not in EXPLAINED_FIELDS or not parts[2].isdigit():
            continue
        index = int(parts[2])
        if index < len(terms):
            by_field.setdefault(parts[1], []).append(terms[index])
    return tuple(
        MatchReason(field=f, terms=tuple(sorted(set(by_field[f])))) for f in EXPLAINED_FIELDS if f in by_field
    )


def parse_search_response(query: SearchQuery, response: Mapping[str, Any]) -> SearchResults:
    terms = explained_terms(query.text)
    hits = tuple(
        SearchHit(
            photo_id=str(hit.get("_source", {}).get("photo_id") or hit["_id"].split("#", 1)[-1]),
            score=float(hit.get("_score") or 0.0),
            sort_values=tuple(hit.get("sort") or ()),
            matched=_reasons(hit.get("matched_queries"), terms),
        )
        for hit in response.get("hits", {}).get("hits", [])
    )
    total = response.get("hits", {}).get("total", 0)
    return SearchResults(
        hits=hits,
        total=int(total["value"] if isinstance(total, Mapping) else total),
        facets=parse_facets(response.get("aggregations") or {}),
    )


def parse_facets(aggregations: Mapping[str, Any]) -> dict[str, tuple[FacetValue, ...]]:
    facets: dict[str, tuple[FacetValue, ...]] = {}
    for name in (*FACET_FIELDS, "years"):
        if name in aggregations:
            values = [
                _facet_value(name, str(b.get("key_as_string", b["key"])), int(b["doc_count"]))
                for b in aggregations[name].get("buckets", [])
                if int(b["doc_count"]) > 0
            ]
            # The local index's order: years newest first, the rest by count then value.
            if name == "years":
                values.sort(key=lambda f: f.value, reverse=True)
            else:
                values.sort(key=lambda f: (-f.count, f.value))
            facets[name] = tuple(values)
    return facets


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], *, k: int = RRF_K) -> list[tuple[str, float]]:
    """(id, score) best first, scored by search.fusion (as the local index does); ties broken by id, which
    the (score, photo_id) cursor needs to be exact."""
    scores = fusion.reciprocal_rank_fusion(rankings, k=k)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


def fuse_hybrid(query: SearchQuery, keyword: SearchResults, semantic: Sequence[str]) -> SearchResults:
    """Keyword and knn rankings fused by RRF, paged by (score, photo_id) since neither side's search_after
    means anything in the fused order."""
    by_id = {hit.photo_id: hit for hit in keyword.hits}
    fused = reciprocal_rank_fusion([[h.photo_id for h in keyword.hits], list(semantic)])
    if query.after is not None:
        if (
            len(query.after) != 2
            or not isinstance(query.after[0], (int, float))
            or isinstance(query.after[0], bool)
            or not isinstance(query.after[1], str)
        ):
            raise ValidationError("invalid cursor")
        last_score, last_id = float(query.after[0]), query.after[1]
        fused = [(pid, s) for pid, s in fused if s < last_score or (s == last_score and pid > last_id)]
    hits = []
    for photo_id, score in fused[: query.limit]:
        keyword_hit = by_id.get(photo_id)
        matched = (keyword_hit.matched if keyword_hit else ()) + (
            (MatchReason(field="meaning"),) if photo_id in semantic else ()
        )
        hits.append(
            SearchHit(
                photo_id=photo_id,
                score=score,
                sort_values=(score, photo_id),
                matched=matched,
                semantic_only=keyword_hit is None,
            )
        )
    semantic_only = sum(1 for pid in semantic if pid not in by_id)
    return SearchResults(hits=tuple(hits), total=keyword.total + semantic_only, facets=keyword.facets)


# ---- index lifecycle --------------------------------------------------------------------------------------


# Serverless manages shards, replicas and refreshes, and a SEARCH collection has no vectors (module docstring).
SERVERLESS_DROPPED_SETTINGS = ("knn", "number_of_shards", "number_of_replicas", "refresh_interval")


def load_mapping(*, serverless: bool = False) -> dict[str, Any]:
    mapping = json.loads(MAPPING_FILE.read_text(encoding="utf-8"))
    if serverless:
        for name in SERVERLESS_DROPPED_SETTINGS:
            mapping["settings"]["index"].pop(name, None)
        del mapping["mappings"]["properties"]["embedding"]
    return mapping


def index_name(alias: str, version: int) -> str:
    if version < 1:
        raise ValidationError("index versions start at 1")
    return f"{alias}-v{version}"


def template_body(alias: str, *, serverless: bool = False) -> dict[str, Any]:
    mapping = load_mapping(serverless=serverless)
    return {
        "index_patterns": [f"{alias}-v*"],
        "priority": 100,
        "template": {"settings": mapping["settings"], "mappings": mapping["mappings"]},
        "_meta": mapping["_meta"],
    }


def alias_swap_actions(alias: str, current: Iterable[str], new_index: str) -> dict[str, Any]:
    """One _aliases call: OpenSearch applies its actions atomically, so readers see old or new, never none."""
    actions: list[dict[str, Any]] = [
        {"remove": {"index": name, "alias": alias}} for name in sorted(current) if name != new_index
    ]
    actions.append({"add": {"index": new_index, "alias": alias}})
    return {"actions": actions}


@dataclass(frozen=True)
class IndexedEntry:
    version: int
    deleted: bool = False


@dataclass(frozen=True)
class Drift:
    missing: tuple[SearchDocument, ...] = ()
    stale: tuple[SearchDocument, ...] = ()
    orphaned: tuple[tuple[str, str, int], ...] = ()  # (owner, photo_id, indexed version)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.stale or self.orphaned)


def diff_index(
    table_documents: Iterable[SearchDocument], indexed: Mapping[tuple[str, str], IndexedEntry]
) -> Drift:
    """Table (the truth: the documents of searchable photos) against the index's live documents and tombstones."""
    missing, stale, seen = [], [], set()
    for document in table_documents:
        key = (document.owner, document.photo_id)
        seen.add(key)
        entry = indexed.get(key)
        if entry is None or entry.deleted:
            missing.append(document)
        elif entry.version < document.version:
            stale.append(document)
    orphaned = sorted(
        (owner, photo_id, entry.version)
        for (owner, photo_id), entry in indexed.items()
        if not entry.deleted and (owner, photo_id) not in seen
    )
    return Drift(tuple(missing), tuple(stale), tuple(orphaned))


@dataclass
class ReindexReport:
    index: str
    previous: tuple[str, ...]
    written: int
    not_newer: int = 0
    failed: list[str] = field(default_factory=list)


# ---- errors -----------------------------------------------------------------------------------------------


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


# ---- the adapter ------------------------------------------------------------------------------------------


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
        semantic = [
            str(h.get("_source", {}).get("photo_id") or h["_id"].split("#", 1)[-1])
            for h in semantic_response.get("hits", {}).get("hits", [])
        ]
        return fuse_hybrid(query, keyword, semantic)

    def suggest(self, owner: str, prefix: str, *, limit: int = 10) -> dict[str, tuple[FacetValue, ...]]:
        body = suggest_body(owner, prefix)
        response = self._call(
            "suggest", lambda c: c.search(index=self.alias, body=body, params={"routing": owner})
        )
        return parse_suggest_response(prefix, response, limit=limit)

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
        # No refreshes and no replicas while loading: the bulk load runs several times faster. Serverless
        # manages both itself: the index gets the template alone.
        loading: dict[str, Any] = (
            {} if self._serverless else {"settings": {"index": {"refresh_interval": "-1", "number_of_replicas": 0}}}
        )
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
                    body={"index": {k: settings[k] for k in ("refresh_interval", "number_of_replicas")}},
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

    def indexed_versions(self) -> dict[tuple[str, str], IndexedEntry]:
        """Every document and tombstone in the index with its version (an admin scan across owners)."""
        found: dict[tuple[str, str], IndexedEntry] = {}
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "size": 1000,
                "query": {"match_all": {}},
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

    def purge_tombstones(self, *, older_than: timedelta = STREAM_RETENTION + timedelta(hours=1)) -> int:
        """Deletes tombstones no stream record can still overtake (older than the stream's retention)."""
        cutoff = _iso(self._clock() - older_than)
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
