"""Searching a library: understand the phrase, query the index (keywords + meaning), explain every hit.

The owner comes from the verified token on every call and is bound into every cursor; user text only ever
becomes plain terms. Documents are built here from the photo, its analysis and its people, by the same code for
both backends; the local backend writes them through this service, the cloud through the stream indexer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from pydantic import BaseModel, Field

from photo_organizer.analysis.store import label_terms, ocr_text, weak_label_terms
from photo_organizer.ports.analysis import AnalysisStore
from photo_organizer.errors import ValidationError
from photo_organizer.feedback.effects import caption_context, suppressed_tags
from photo_organizer.feedback.models import TagOverlay, normalize_query
from photo_organizer.ports.feedback import FeedbackStore, SuggestionStore
from photo_organizer.models import Photo, PhotoStatus, PhotoSummary, utcnow
from photo_organizer.ports.people import PeopleStore
from photo_organizer.ports.storage import MetadataStore
from photo_organizer.search.describe import describe
from photo_organizer.search.models import (
    DateRange,
    GeoFilter,
    IndexedPerson,
    IndexedPlace,
    SearchDocument,
    SearchQuery,
    SortOrder,
)
from photo_organizer.ports.search import SearchIndex, supports_vectors
from photo_organizer.search.fusion import meaning_only_allowed
from photo_organizer.search.parts import SYNONYMS, query_part
from photo_organizer.search.understanding import Chip, ChipKind, ParsedQuery, QueryVocabulary, understand
from photo_organizer.services.indexing import record_version, search_document
from photo_organizer.services.photos import summarize

Embed = Callable[[Sequence[str]], np.ndarray]
MAX_QUERY_CHARS = 500
# Query texts whose embedding is kept: a query is embedded again for each of its pages (the cursor runs it again)
# and people repeat their searches; one embedding is ~15-20 ms of CPU under the GIL, most of a search's cost.
QUERY_VECTORS_KEPT = 512


class SearchFilters(BaseModel):
    """Explicit filters from the request; they add to what the phrase itself says."""

    person: list[str] = Field(default_factory=list)
    tag: list[str] = Field(default_factory=list)
    place: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    near: str | None = Field(default=None, description="lat,lon,km")
    camera: str | None = None
    include_hidden: bool = False
    include_sensitive: bool = False
    sort: SortOrder = SortOrder.RELEVANCE


class MatchView(BaseModel):
    field: str
    terms: list[str] = Field(default_factory=list)


class SearchHitView(PhotoSummary):
    matched: list[MatchView] = Field(default_factory=list)
    semantic_only: bool = False


class FacetView(BaseModel):
    value: str
    label: str | None = None
    count: int


class SearchResponse(BaseModel):
    items: list[SearchHitView]
    next_cursor: str | None = None
    total: int
    chips: list[Chip] = Field(default_factory=list, description="How the phrase was understood, for the UI.")
    facets: dict[str, list[FacetView]] = Field(default_factory=dict)
    semantic: str = Field(description="'on', 'degraded' (word matching only) or 'off'.")
    relaxed: list[str] = Field(
        default_factory=list,
        description="The strict reading (every understood part and word) found nothing: these chips' parts were "
        "made optional, and the photos shown match at least one of them (their chips say relaxed too).")
    meaning: str = Field(
        default="off",
        description="Photos found by meaning only: 'added' (after the exact matches, which were few), 'withheld' "
        "(exact matches were enough), 'none' (nothing similar enough) or 'off' (no meaning search).")


@dataclass
class SearchService:
    index: SearchIndex
    metadata: MetadataStore
    analysis: AnalysisStore
    people: PeopleStore
    thumbnail_url: Callable[[Photo], str]
    cursor_key: bytes
    embed: Embed | None = None
    semantic_degraded: bool = False
    now: Callable[[], datetime] = field(default=utcnow)
    # The user's feedback: the local documents carry its overlay; both backends leave out irrelevant-marked hits.
    feedback: FeedbackStore | None = None
    suggestions: SuggestionStore | None = None
    _query_vectors: OrderedDict[str, tuple[float, ...]] = field(default_factory=OrderedDict, init=False, repr=False)
    _query_vectors_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    # ---- documents (local backend writes; the cloud indexer builds them from the stream, by the same builder) --

    def document(self, photo: Photo) -> SearchDocument | None:
        if photo.status is not PhotoStatus.READY:
            return None
        meta = photo.metadata
        analysis = self.analysis.get(photo.owner, photo.photo_id)
        faces = {f.face_id for f in self.people.faces_of_photo(photo.owner, photo.photo_id)}
        people = tuple(
            IndexedPerson(person_id=p.person_id, name=p.name)
            for p in self.people.people(photo.owner)
            if p.face_ids & faces and not p.hidden
        )
        place = analysis.place if analysis else None
        overlay = self.feedback.overlay(photo.owner, photo.photo_id) if self.feedback else TagOverlay()
        suppressed = (
            suppressed_tags(self.suggestions.suggestions(photo.owner, photo.photo_id)) if self.suggestions else ()
        )
        context = None
        if analysis is not None:
            context = caption_context(
                [p.name for p in people if p.name], len(analysis.result.faces),
                place.short_name if place else None, analysis.local_taken_at,
            )
        return search_document(
            owner=photo.owner,
            photo_id=photo.photo_id,
            status=photo.status.value,
            # The local index is written by one process from the current state: the newest write is the truth.
            version=time.time_ns() // 1000,
            taken_at=(analysis.local_taken_at if analysis and analysis.local_taken_at else None)
            or (meta.taken_at if meta else None),
            uploaded_at=photo.created_at,
            filename=photo.filename,
            camera_make=meta.camera_make if meta else None,
            camera_model=meta.camera_model if meta else None,
            tags=label_terms(analysis.result) if analysis else (),
            weak_tags=weak_label_terms(analysis.result) if analysis else (),
            people=people,
            place=IndexedPlace(**place.model_dump()) if place else None,
            ocr_text=ocr_text(analysis.result) if analysis else "",
            caption=analysis.caption if analysis else "",
            sensitive=analysis.result.sensitive if analysis else False,
            duplicate_of=photo.duplicate_of,
            labels=list(analysis.result.labels) if analysis else (),
            feedback=overlay,
            suppressed=suppressed,
            caption_context=context,
        )

    def index_photos(self, owner: str, photo_ids: Iterable[str]) -> int:
        documents, gone = [], []
        for photo_id in photo_ids:
            photo = self.metadata.get_photo(owner, photo_id)
            document = self.document(photo) if photo else None
            if document is None:
                gone.append(photo_id)
            else:
                documents.append(document)
        for photo_id in gone:
            self.index.delete(owner, photo_id, version=time.time_ns() // 1000)
        if not documents:
            return 0
        if self.embed:
            # A photo with nothing described (no tags, caption, place, people or text) has no meaning to match:
            # an embedding of the empty string would sit moderately close to every query.
            described = [(i, text) for i, d in enumerate(documents) if (text := describe(d).strip())]
            if described:
                vectors = self.embed([text for _, text in described])
                for (i, _), vector in zip(described, vectors):
                    documents[i] = documents[i].model_copy(update={"embedding": tuple(map(float, vector))})
        return len(self.index.upsert(documents))

    def index_owner(self, owner: str) -> int:
        photo_ids, cursor = [], None
        while True:
            page = self.metadata.list_photos(owner, limit=100, after=cursor)
            photo_ids += [p.photo_id for p in page.photos]
            cursor = page.next_key
            if cursor is None:
                break
        return self.index_photos(owner, photo_ids)

    def reconcile(self, owner: str) -> list[str]:
        """Brings the owner's documents in line with the records (the local index follows them through this
        service: a write that failed while the index was unavailable is caught up here). Indexes READY photos that
        have no document or an older one than their record, and deletes documents of photos that are gone or no
        longer READY. Returns the photo ids it rewrote; an index without `live_versions` is re-indexed whole."""
        ready, cursor = {}, None
        while True:
            page = self.metadata.list_photos(owner, limit=500, after=cursor)
            ready.update((p.photo_id, p) for p in page.photos)
            cursor = page.next_key
            if cursor is None:
                break
        live_versions = getattr(self.index, "live_versions", None)
        if live_versions is None:
            self.index_photos(owner, list(ready))
            return sorted(ready)
        indexed = live_versions(owner)
        behind = [pid for pid, photo in ready.items() if indexed.get(pid, -1) < record_version(photo)]
        orphaned = [pid for pid in indexed if pid not in ready]
        drift = sorted({*behind, *orphaned})
        if drift:
            self.index_photos(owner, drift)
        return drift

    def forget(self, owner: str, photo_id: str) -> None:
        self.index.delete(owner, photo_id, version=time.time_ns() // 1000)

    # ---- queries ---------------------------------------------------------------------------------------------

    def search(
        self, owner: str, text: str, filters: SearchFilters, *, limit: int = 50, cursor: str | None = None
    ) -> SearchResponse:
        text = (text or "")[:MAX_QUERY_CHARS]
        parsed = understand(text, owner=owner, now=self.now(), vocabulary=self._vocabulary(owner))
        query = self._with_filters(_soft(parsed, filters), filters).model_copy(update={"limit": limit})
        fingerprint = _fingerprint(query)
        relaxable = len(query.parts) + len(parsed.remaining_text.split()) >= 2
        if cursor:
            after, relaxed = self._open_cursor(cursor, owner, fingerprint)
            query = query.model_copy(update={"after": after, "relaxed": relaxed and relaxable})
        semantic = "off"
        # Meaning only helps with words left over after understanding: "Madison" alone is a place filter, and
        # the filter's hits must not be reported as found "by meaning". An index without vectors (OpenSearch
        # Serverless) would ignore the embedding: do not compute it, nor claim semantic results.
        if (self.embed and supports_vectors(self.index) and parsed.remaining_text.strip() and parsed.semantic_text
                and query.sort is SortOrder.RELEVANCE):
            query = query.model_copy(update={"embedding": self._query_vector(parsed.semantic_text)})
            semantic = "degraded" if self.semantic_degraded else "on"
        results = self.index.search(query)
        if relaxable and not query.relaxed and not cursor and all(h.semantic_only for h in results.hits):
            # the strict reading found nothing exact: ask again with every part and word optional, and say so
            query = query.model_copy(update={"relaxed": True})
            results = self.index.search(query)
        page_hits = results.hits  # the page as the index cut it: the cursor continues after its last hit
        # "Not relevant for this query" (search feedback): the photo drops out of this query's results only.
        irrelevant = (
            self.feedback.irrelevant_photos(owner, normalize_query(text)) if self.feedback and text.strip() else set()
        )
        if irrelevant:
            kept = tuple(h for h in results.hits if h.photo_id not in irrelevant)
            dropped = len(results.hits) - len(kept)
            results = results.model_copy(update={"hits": kept, "total": max(0, results.total - dropped)})
        photos = {
            h.photo_id: p for h in results.hits if (p := self.metadata.get_photo(owner, h.photo_id)) is not None
        }
        # Every hit satisfies every filter: say so, beside what the index says matched the free text.
        filter_reasons = _filter_reasons(query)
        items = []
        for hit in results.hits:
            photo = photos.get(hit.photo_id)
            if photo is None:
                continue  # deleted after it was indexed; the index catches up
            items.append(
                SearchHitView(
                    **summarize(photo).model_dump(exclude={"thumbnail_url"}),
                    thumbnail_url=self.thumbnail_url(photo),
                    matched=_merge_reasons(
                        _part_reasons(query, [MatchView(field=m.field, terms=list(m.terms)) for m in hit.matched]),
                        filter_reasons,
                    ),
                    semantic_only=hit.semantic_only,
                )
            )
        next_cursor = None
        if len(page_hits) == limit and page_hits:
            next_cursor = self._seal_cursor(owner, fingerprint, page_hits[-1].sort_values, relaxed=query.relaxed)
        chips = [
            c.model_copy(update={"relaxed": True}) if query.relaxed and c.kind in _SOFT_CHIPS else c
            for c in parsed.chips
        ]
        meaning = "off"
        if query.embedding is not None:
            if any(h.semantic_only for h in results.hits):
                meaning = "added"
            else:
                meaning = "none" if meaning_only_allowed(results.total) else "withheld"
        return SearchResponse(
            items=items,
            next_cursor=next_cursor,
            total=results.total,
            chips=chips,
            relaxed=[c.display for c in chips if c.relaxed],
            meaning=meaning,
            facets={
                name: [FacetView(value=v.value, label=getattr(v, "label", None), count=v.count) for v in values]
                for name, values in results.facets.items()
            },
            semantic=semantic,
        )

    def suggest(self, owner: str, prefix: str, *, limit: int = 10) -> dict[str, list[FacetView]]:
        prefix = (prefix or "").strip()[:100]
        if not prefix:
            return {}
        found = self.index.suggest(owner, prefix, limit=limit)
        return {
            name: [FacetView(value=v.value, label=getattr(v, "label", None), count=v.count) for v in values]
            for name, values in found.items()
        }

    # ---- helpers ----------------------------------------------------------------------------------------------

    def _query_vector(self, text: str) -> tuple[float, ...]:
        """The embedding of a query's text, from the last QUERY_VECTORS_KEPT texts when it is one of them. The text
        alone decides it (never the owner): a kept vector tells nobody anything about another user's library."""
        with self._query_vectors_lock:
            kept = self._query_vectors.get(text)
            if kept is not None:
                self._query_vectors.move_to_end(text)
                return kept
        vector = tuple(map(float, self.embed([text])[0]))
        with self._query_vectors_lock:
            self._query_vectors[text] = vector
            while len(self._query_vectors) > QUERY_VECTORS_KEPT:
                self._query_vectors.popitem(last=False)
        return vector

    def _vocabulary(self, owner: str) -> QueryVocabulary:
        people = [(p.person_id, p.name) for p in self.people.people(owner) if p.name and not p.hidden]
        # every tag (weak ones included) and city of the owner: facets hold only the most common, and a synonym
        # must reach a tag of any count. An index that cannot list them gives its facets.
        vocabulary = getattr(self.index, "vocabulary", None)
        if vocabulary is not None:
            known = vocabulary(owner)
            tags, places = list(known.get("tags", ())), list(known.get("places", ()))
        else:
            facets = self.index.search(SearchQuery(owner=owner, limit=1, include_hidden=True), facets=True).facets
            tags, places = [v.value for v in facets.get("tags", ())], [v.value for v in facets.get("places", ())]
        return QueryVocabulary.build(people=people, places=places, tags=tags, synonyms=SYNONYMS)

    @staticmethod
    def _with_filters(query: SearchQuery, filters: SearchFilters) -> SearchQuery:
        dates = query.dates
        if filters.start or filters.end:
            dates = DateRange(start=filters.start or (dates.start if dates else None),
                              end=filters.end or (dates.end if dates else None))
        return query.model_copy(
            update={
                "tags": tuple(dict.fromkeys([*query.tags, *(t.casefold() for t in filters.tag)])),
                "people": tuple(dict.fromkeys([*query.people, *filters.person])),
                "place": filters.place or query.place,
                "dates": dates,
                "near": _near(filters.near) if filters.near else query.near,
                "camera": filters.camera or query.camera,
                "include_hidden": filters.include_hidden,
                "include_sensitive": filters.include_sensitive,
                "sort": filters.sort,
            }
        )

    def _seal_cursor(self, owner: str, fingerprint: str, sort_values: Sequence, *, relaxed: bool = False) -> str:
        data = {"o": owner, "q": fingerprint, "a": list(sort_values), **({"r": 1} if relaxed else {})}
        body = json.dumps(data, separators=(",", ":")).encode()
        tag = hmac.new(self.cursor_key, body, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(tag + body).rstrip(b"=").decode()

    def _open_cursor(self, cursor: str, owner: str, fingerprint: str) -> tuple[tuple, bool]:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            tag, body = raw[:16], raw[16:]
            if not hmac.compare_digest(tag, hmac.new(self.cursor_key, body, hashlib.sha256).digest()[:16]):
                raise ValueError("signature")
            data = json.loads(body)
        except (ValueError, TypeError) as exc:
            raise ValidationError("the cursor is not valid") from exc
        if data.get("o") != owner or data.get("q") != fingerprint:
            raise ValidationError("the cursor belongs to another search")
        return tuple(data["a"]), bool(data.get("r"))


_SOFT_CHIPS = frozenset({ChipKind.TAG, ChipKind.PLACE, ChipKind.TEXT})


def _soft(parsed: ParsedQuery, filters: SearchFilters) -> SearchQuery:
    """The phrase's tags and place become ranked parts (search.parts); a tag or place also picked in the UI is a
    filter there and not a part. People and dates stay filters."""
    picked_tags = {t.casefold() for t in filters.tag}
    understood = parsed.query
    parts = [query_part("tag", tag, parsed.typed.get(tag)) for tag in understood.tags
             if tag.casefold() not in picked_tags]
    if understood.place and not filters.place:
        parts.append(query_part("place", understood.place, parsed.typed.get(understood.place)))
    return understood.model_copy(update={"tags": (), "place": None, "parts": tuple(parts)})


def _filter_reasons(query: SearchQuery) -> list[MatchView]:
    reasons = []
    if query.tags:
        reasons.append(MatchView(field="tags", terms=list(query.tags)))
    if query.people:
        reasons.append(MatchView(field="people", terms=list(query.people)))
    if query.place:
        reasons.append(MatchView(field="place", terms=[query.place]))
    if query.dates:
        span = [d.date().isoformat() if d else "" for d in (query.dates.start, query.dates.end)]
        reasons.append(MatchView(field="date", terms=["/".join(span)]))
    if query.near:
        reasons.append(MatchView(field="near", terms=[f"{query.near.lat},{query.near.lon},{query.near.km}"]))
    if query.camera:
        reasons.append(MatchView(field="camera", terms=[query.camera]))
    return reasons


def _part_reasons(query: SearchQuery, reasons: list[MatchView]) -> list[MatchView]:
    """A part found as a whole in its own field is named as the user's chip is ("school trip" in tags), not as
    the separate words the index matched."""
    field_of = {"tag": "tags", "place": "place"}
    for part in query.parts:
        words = [w.casefold() for w in part.value.split()]
        for reason in reasons:
            terms = [t.casefold() for t in reason.terms]
            if reason.field == field_of[part.kind] and words and all(w in terms for w in words):
                kept = [t for t in reason.terms if t.casefold() not in words]
                reason.terms = [part.value, *kept]
    return reasons


def _merge_reasons(from_text: list[MatchView], from_filters: list[MatchView]) -> list[MatchView]:
    merged: dict[str, list[str]] = {}
    for reason in [*from_filters, *from_text]:
        terms = merged.setdefault(reason.field, [])
        terms += [t for t in reason.terms if t not in terms]
    return [MatchView(field=name, terms=terms) for name, terms in merged.items()]


def _near(text: str) -> GeoFilter:
    try:
        lat, lon, km = (float(part) for part in text.split(","))
        return GeoFilter(lat=lat, lon=lon, km=km)
    except (ValueError, TypeError) as exc:
        raise ValidationError("near is lat,lon,km (for example 38.72,-9.14,5)") from exc


def _fingerprint(query: SearchQuery) -> str:
    """A cursor only continues the search it came from."""
    stable = query.model_dump(mode="json", exclude={"after", "embedding", "limit", "relaxed"})
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:16]


__all__ = ["SearchFilters", "SearchResponse", "SearchService"]
