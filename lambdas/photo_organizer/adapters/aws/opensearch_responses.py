"""OpenSearch responses of the search index read back into the port's shapes: bulk item outcomes, hits with
their explanations, facets, suggestions, and the hybrid (keyword + knn) page fused by search.fusion. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from photo_organizer.errors import (
    StorageUnavailableError,
    ValidationError,
)
from photo_organizer.search import fusion
from photo_organizer.search.models import (
    facet_order,
    FacetValue,
    MatchReason,
    SearchHit,
    SearchQuery,
    SearchResults,
)
from photo_organizer.search.writes import IndexWrite, WriteOutcome, WriteResult
from photo_organizer.adapters.aws.opensearch_requests import (
    EXPLAINED_FIELDS,
    FACET_FIELDS,
    MAX_PREFIX_CHARS,
    PERSON_SEP,
    SUGGEST_FIELDS,
    explained_terms,
    query_terms_text,
)

RRF_K = fusion.RRF_K


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
    terms = explained_terms(query_terms_text(query))
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


def parse_vocabulary_response(response: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """{"tags": the tags, then the weak tags that are not tags; "places": the cities}, each once."""
    aggregations = response.get("aggregations") or {}

    def values(name: str) -> list[str]:
        return [str(b["key"]) for b in (aggregations.get(name) or {}).get("buckets", [])
                if int(b.get("doc_count") or 0) > 0 and str(b.get("key") or "").strip()]

    return {"tags": tuple(dict.fromkeys([*values("tags"), *values("weak_tags")])), "places": tuple(values("places"))}


def parse_facets(aggregations: Mapping[str, Any]) -> dict[str, tuple[FacetValue, ...]]:
    facets: dict[str, tuple[FacetValue, ...]] = {}
    for name in (*FACET_FIELDS, "years"):
        if name in aggregations:
            values = [
                _facet_value(name, str(b.get("key_as_string", b["key"])), int(b["doc_count"]))
                for b in aggregations[name].get("buckets", [])
                if int(b["doc_count"]) > 0
            ]
            facets[name] = facet_order(name, values)
    return facets


@dataclass(frozen=True)
class SemanticHit:
    photo_id: str
    sort_time: int  # epoch milliseconds, as the keyword side's sort values carry it


def parse_semantic_hits(response: Mapping[str, Any]) -> list[SemanticHit]:
    hits = []
    for hit in response.get("hits", {}).get("hits", []):
        source = hit.get("_source", {})
        when = source.get("sort_time")
        millis = int(datetime.fromisoformat(str(when).replace("Z", "+00:00")).timestamp() * 1000) if when else 0
        hits.append(SemanticHit(str(source.get("photo_id") or hit["_id"].split("#", 1)[-1]), millis))
    return hits


def fuse_hybrid(query: SearchQuery, keyword: SearchResults, semantic: Sequence[SemanticHit]) -> SearchResults:
    """Keyword and knn rankings in the hybrid order both indexes share (search.fusion.hybrid_ranking), paged by
    (score, sort_time, photo_id) since neither side's search_after means anything in the fused order."""
    by_id = {hit.photo_id: hit for hit in keyword.hits}
    times = {hit.photo_id: hit.sort_time for hit in semantic}
    # A keyword hit's relevance sort values are (score, sort_time, photo_id): _sort(RELEVANCE).
    times.update({hit.photo_id: int(hit.sort_values[1]) for hit in keyword.hits if len(hit.sort_values) >= 2})
    semantic_ids = [hit.photo_id for hit in semantic]
    found_by_meaning = set(semantic_ids)
    fused = fusion.hybrid_ranking(
        [h.photo_id for h in keyword.hits], semantic_ids, k=RRF_K,
        sort_time=lambda pid: times.get(pid, 0), photo_id=lambda pid: pid,
    )
    fused_all = fused
    if query.after is not None:
        if (
            len(query.after) != 3
            or not isinstance(query.after[0], (int, float))
            or isinstance(query.after[0], bool)
            or not isinstance(query.after[1], int)
            or isinstance(query.after[1], bool)
            or not isinstance(query.after[2], str)
        ):
            raise ValidationError("invalid cursor")
        last = (-float(query.after[0]), -query.after[1], query.after[2])
        fused = [(pid, s) for pid, s in fused if (-s, -times.get(pid, 0), pid) > last]
    hits = []
    for photo_id, score in fused[: query.limit]:
        keyword_hit = by_id.get(photo_id)
        matched = (keyword_hit.matched if keyword_hit else ()) + (
            (MatchReason(field="meaning"),) if photo_id in found_by_meaning else ()
        )
        hits.append(
            SearchHit(
                photo_id=photo_id,
                score=score,
                sort_values=(score, times.get(photo_id, 0), photo_id),
                matched=matched,
                semantic_only=keyword_hit is None,
            )
        )
    semantic_only = sum(1 for pid, _ in fused_all if pid not in by_id)
    return SearchResults(hits=tuple(hits), total=keyword.total + semantic_only, facets=keyword.facets)
