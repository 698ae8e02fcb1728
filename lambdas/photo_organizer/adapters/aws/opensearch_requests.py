"""OpenSearch request bodies of the search index: documents and tombstones for _bulk, and the search, knn,
count and suggest queries. Pure: every per-owner body starts its bool filter with the owner term, and user
text only ever appears as the `query` of a match/multi_match (or a prefix query's value). See opensearch_index."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from photo_organizer.errors import (
    ValidationError,
)
from photo_organizer.search.grams import GRAM_SCORE, word_grams
from photo_organizer.search.models import (
    QueryPart,
    SearchDocument,
    SearchQuery,
    SortOrder,
)
from photo_organizer.search.fusion import PHOTO_ID_TIE_ORDER, knn_min_score
from photo_organizer.search.parts import PART_KEYWORD_SCORE, PART_WEAK_SCORE, RELAXED_COVERAGE_SCORE
from photo_organizer.search.writes import IndexWrite

FACET_SIZE = 20
# Query understanding knows every tag of the owner, not the FACET_SIZE most common (the local index's the same).
VOCABULARY_SIZE = 2000
SUGGEST_BUCKETS = 100  # buckets per field before the prefix check; docs matching "li" also carry other tags
MAX_EXPLAINED_TERMS = 8
MAX_PREFIX_CHARS = 64
MAX_QUERY_WORDS = 32  # as the local index's MAX_QUERY_TOKENS
_WORD = re.compile(r"\w+")

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
    "weak_tags": ("weak_tags",),
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


def iso_time(moment: datetime) -> str:
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def document_source(document: SearchDocument, *, vectors: bool = True) -> dict[str, Any]:
    source: dict[str, Any] = {
        "owner": document.owner,
        "photo_id": document.photo_id,
        "deleted": False,
        "uploaded_at": iso_time(document.uploaded_at),
        "sort_time": iso_time(document.sort_time),
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
        source["taken_at"] = iso_time(document.taken_at)
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
    if document.weak_tags:
        # only when there are some (the local analyser's): an index made before mapping schema 3 (strict) refuses
        # the field, and Rekognition's documents never carry it, so the cloud writes on until it reindexes
        source["weak_tags"] = list(document.weak_tags)
    if document.camera:
        source["camera"] = document.camera
    if document.duplicate_of:
        source["duplicate_of"] = document.duplicate_of
    if vectors and document.embedding is not None:  # without vectors the mapping has no such field (strict)
        source["embedding"] = list(document.embedding)
    return source


def tombstone_source(owner: str, photo_id: str, deleted_at: datetime) -> dict[str, Any]:
    return {"owner": owner, "photo_id": photo_id, "deleted": True, "deleted_at": iso_time(deleted_at)}


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


def owner_filter(owner: str) -> dict[str, Any]:
    if not owner:
        raise ValidationError("a search needs an owner")
    return {"term": {"owner": owner}}


def _place_filter(place: str) -> dict[str, Any]:
    return {
        "bool": {
            "should": [
                {"term": {f"place.{name}.keyword": {"value": place, "case_insensitive": True}}}
                for name in ("city", "region", "country")
            ]
            + [{"term": {"place.country_code": place}}],
            "minimum_should_match": 1,
        }
    }


def _scope(query: SearchQuery) -> dict[str, Any]:
    """The filter-only bool every part of a search shares (keyword side, knn side, facets)."""
    filters: list[dict[str, Any]] = [owner_filter(query.owner)]
    filters += [{"term": {"tags.keyword": tag.casefold()}} for tag in query.tags]
    filters += [{"term": {"people.id": person}} for person in query.people]
    if query.place:
        filters.append(_place_filter(query.place))
    if query.dates is not None and (query.dates.start or query.dates.end):
        bounds: dict[str, str] = {}
        if query.dates.start:
            bounds["gte"] = iso_time(query.dates.start)
        if query.dates.end:
            bounds["lt"] = iso_time(query.dates.end)
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
    # Ties on score and time go by photo id in the order the local index and hybrid fusion use; search_after
    # follows whatever order the sort names, so cursors stay exact.
    tail = [{"sort_time": {"order": "desc"}}, {"photo_id": {"order": PHOTO_ID_TIE_ORDER}}]
    return tail if order is SortOrder.NEWEST else [{"_score": {"order": "desc"}}, *tail]


def _check_after(order: SortOrder, after: tuple) -> list[Any]:
    """search_after values come from a cursor: only the shapes this adapter hands out get through."""
    expected = (int, str) if order is SortOrder.NEWEST else ((int, float), int, str)
    if len(after) != len(expected) or not all(
        isinstance(v, kind) and not isinstance(v, bool) for v, kind in zip(after, expected)
    ):
        raise ValidationError("invalid cursor")
    return list(after)


def _words(text: str) -> list[str]:
    """Words of plain text, as the request splits them (the analyzer still folds each)."""
    return [w for w in _WORD.findall(text)][:MAX_QUERY_WORDS]


def _word_clause(word: str) -> dict[str, Any]:
    """One word over every text field (the best field counts, the others a fifth: the local index's disjunction
    max), or inside a run of OCR letters by its trigrams (constant GRAM_SCORE, below a whole-word match)."""
    alternatives: list[dict[str, Any]] = [
        {"multi_match": {"query": word, "type": "best_fields", "tie_breaker": 0.2, "fields": list(TEXT_FIELDS)}}
    ]
    if word_grams(word):
        alternatives.append(
            {"constant_score": {"filter": {"match": {"ocr_text.grams": {"query": word, "operator": "and"}}},
                                "boost": GRAM_SCORE}}
        )
    return {"dis_max": {"queries": alternatives, "tie_breaker": 0.2}} if len(alternatives) > 1 else alternatives[0]


def _part_keyword(part: QueryPart) -> dict[str, Any]:
    if part.kind == "tag":
        return {"term": {"tags.keyword": part.value.casefold()}}
    return _place_filter(part.value)


def _part_clause(part: QueryPart) -> dict[str, Any]:
    """An understood tag or place: as a keyword (strong constant boost), a tag as a weak label (a weak constant
    boost), or any of its words in the text."""
    alternatives: list[dict[str, Any]] = [{"constant_score": {"filter": _part_keyword(part), "boost": PART_KEYWORD_SCORE}}]
    if part.kind == "tag":
        alternatives.append({"constant_score": {"filter": {"term": {"weak_tags.keyword": part.value.casefold()}},
                                                "boost": PART_WEAK_SCORE}})
    for phrase in part.words:
        words = _words(phrase)
        if words:
            alternatives.append({"bool": {"must": [_word_clause(w) for w in words]}})
    return {"bool": {"should": alternatives, "minimum_should_match": 1}}


def query_terms_text(query: SearchQuery) -> str:
    """The words a hit's explanation can name: the free text, then the parts' words."""
    return " ".join([query.text, *(w for part in query.parts for w in part.words)])


def search_body(query: SearchQuery, *, facets: bool = True, size: int | None = None) -> dict[str, Any]:
    """The keyword side: filters, free words and understood parts (required, or at least one when relaxed),
    sort, search_after, facets."""
    scope = _scope(query)
    bool_query: dict[str, Any] = dict(scope)
    required = [_word_clause(w) for w in _words(query.text)] + [_part_clause(p) for p in query.parts]
    if required:
        if query.relaxed and len(required) > 1:
            # at least one present; each present one adds RELAXED_COVERAGE_SCORE (search.parts), so more present
            # ranks higher whatever the scores, as in the local index
            covered = [{"bool": {"must": [clause, {"constant_score": {"filter": clause,
                                                                      "boost": RELAXED_COVERAGE_SCORE}}]}}
                       for clause in required]
            bool_query["must"] = [{"bool": {"should": covered, "minimum_should_match": 1}}]
        else:
            bool_query["must"] = required
        terms = explained_terms(query_terms_text(query))
        bool_query["should"] = [
            {"multi_match": {"query": term, "fields": list(fields), "boost": 0, "_name": f"why:{name}:{i}"}}
            for name, fields in EXPLAINED_FIELDS.items()
            for i, term in enumerate(terms)
        ] + [
            {"match": {"ocr_text.grams": {"query": term, "operator": "and", "boost": 0, "_name": f"why:ocr_text:{i}"}}}
            for i, term in enumerate(terms)
            if word_grams(term)
        ]
    elif query.text.strip():
        bool_query["must"] = [{"match_none": {}}]  # text made only of punctuation: nothing, as the local index
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


VOCABULARY_FIELDS = {"tags": "tags.keyword", "weak_tags": "weak_tags.keyword", "places": "place.city.keyword"}


def vocabulary_body(owner: str) -> dict[str, Any]:
    """Every tag, weak tag and city of the owner's photos (hidden ones too, sensitive ones not: what query
    understanding may turn into tag and place parts), up to VOCABULARY_SIZE each."""
    return {
        "size": 0,
        "query": {"bool": {"filter": [owner_filter(owner)],
                           "must_not": [{"term": {"deleted": True}}, {"term": {"sensitive": True}}]}},
        "aggs": {name: {"terms": {"field": field, "size": VOCABULARY_SIZE}} for name, field in VOCABULARY_FIELDS.items()},
    }


def knn_body(query: SearchQuery, *, k: int) -> dict[str, Any]:
    if query.embedding is None:
        raise ValidationError("a semantic search needs an embedding")
    return {
        "size": k,
        # sort_time: the tie order of fused hits (search.fusion.hybrid_ranking) for semantic-only ones too.
        "_source": ["photo_id", "sort_time"],
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
        # the similarity floor of meaning matches (search.fusion.MEANING_FLOOR), as cosinesimil scores
        "min_score": knn_min_score(),
    }


def count_body(owner: str) -> dict[str, Any]:
    return {"query": {"bool": {"filter": [owner_filter(owner)], "must_not": [{"term": {"deleted": True}}]}}}


def forget_owner_body(owner: str) -> dict[str, Any]:
    """_delete_by_query of account erasure: the owner's live documents (the ones count_body counts)."""
    return count_body(owner)


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
