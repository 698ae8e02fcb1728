"""The local search index's reads: plans, keyword and vector rankings, the hybrid page, hits with their
explanations, facets and suggestions. Readers never block: one tantivy searcher and one vector state per
search. See search_index."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tantivy import FieldType, Occur, Order, Query

from photo_organizer.adapters.local.vector_slices import (
    HIDDEN,
    SENSITIVE,
    Ranked,
    rank_by_similarity,
    within_km,
)
from photo_organizer.adapters.local.search_schema import (
    FACET_SIZE,
    MAX_QUERY_TOKENS,
    VOCABULARY_SIZE,
    WEAK_TAG_PREFIX,
    SEP,
    TEXT_FIELDS,
    check_owner,
    gram_term,
    keyword_term,
    weak_tag_term,
    micros,
)
from photo_organizer.search.grams import GRAM_SCORE, found_in_run, word_grams
from photo_organizer.search.parts import PART_KEYWORD_SCORE, PART_WEAK_SCORE, RELAXED_COVERAGE_SCORE
from photo_organizer.errors import ValidationError
from photo_organizer.search.fusion import RRF_K, hybrid_ranking
from photo_organizer.search.models import (
    facet_order,
    FacetValue,
    MatchReason,
    QueryPart,
    SearchHit,
    SearchQuery,
    SearchResults,
    SortOrder,
)

HYBRID_WINDOW = 200  # per list; the largest page
UNIQUE_TEXT = frozenset({"ocr_text", "filename"})  # text fields whose values are mostly one photo's own


@dataclass
class Candidate:
    t: int
    addr: Any
    score: float = 0.0
    key: int = -1
    pid: str | None = None
    kw_rank: int | None = None
    vec_rank: int | None = None


@dataclass
class Plan:
    owner_q: Query
    filtered: Query  # owner + filters, no text
    keyword: Query | None  # filtered + text; None when the text has no searchable token
    tokens: dict[str, str]  # analysed token -> the word the user typed
    filter_reasons: list[MatchReason] = field(default_factory=list)
    term_filters: bool = False  # tags/people/place/camera: filters the vector store cannot pre-check
    lower: int | None = None  # sort-time range, micros, [lower, upper)
    upper: int | None = None
    grams: dict[str, str] = field(default_factory=dict)  # words also searched inside OCR runs
    weak: dict[str, str] = field(default_factory=dict)  # weak-tag term -> the understood tag it stands for


class SearchReads:
    """count, search and suggest of LocalSearchIndex."""

    def count(self, owner: str) -> int:
        check_owner(owner)
        return self._index.searcher().search(self._owner_query(owner), 1, count=True).count

    def live_versions(self, owner: str) -> dict[str, int]:
        """photo_id -> version of the owner's live documents, from the ledger (the library audit and reconcile)."""
        check_owner(owner)
        with self._lock:
            rows = self._db.execute(
                "SELECT photo_id, version FROM docs WHERE owner = ? AND deleted = 0", (owner,)
            ).fetchall()
        return dict(rows)

    def indexed_owners(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT DISTINCT owner FROM docs WHERE deleted = 0 ORDER BY owner")]

    def search(self, query: SearchQuery, *, facets: bool = True) -> SearchResults:
        check_owner(query.owner)
        searcher = self._index.searcher()
        plan = self._plan(query)
        hybrid = query.embedding is not None and query.sort is SortOrder.RELEVANCE
        if hybrid:
            page, total = self._hybrid_page(searcher, plan, query)
        elif plan.keyword is None:
            page, total = [], 0
        else:
            by_time = query.sort is SortOrder.NEWEST or not plan.tokens
            after = self._parse_after(query.after, by_time=by_time)
            page, total = self._ranked(searcher, plan.keyword, by_time=by_time, after=after, limit=query.limit)
            self._resolve_keys(searcher, page)
        weak_found = self._weak_found(searcher, plan, page)
        hits = tuple(self._hit(searcher, plan, query, c, hybrid=hybrid, weak=weak_found.get(c.key, ()))
                     for c in page)
        facet_values = self._facets(searcher, plan.keyword) if facets and plan.keyword is not None else {}
        return SearchResults(hits=hits, total=total, facets=facet_values)

    def suggest(self, owner: str, prefix: str, *, limit: int = 10) -> dict[str, tuple[FacetValue, ...]]:
        check_owner(owner)
        prefix = keyword_term(prefix)[:100]
        searcher = self._index.searcher()
        visible = self._visible(self._owner_query(owner), include_hidden=False, include_sensitive=False)
        out: dict[str, tuple[FacetValue, ...]] = {}
        for kind, name in (("t", "tags"), ("p", "people"), ("l", "places")):
            if kind == "t":  # tags_kw terms are "owner SEP tag" already
                terms = searcher.terms_with_prefix("tags_kw", f"{owner}{SEP}{prefix}", filter_query=visible)
                terms = [(f"{SEP}{SEP}{SEP}{term.partition(SEP)[2]}{SEP}", count) for term, count in terms]
            else:
                terms = searcher.terms_with_prefix("suggest", f"{owner}{SEP}{kind}{SEP}{prefix}",
                                                   filter_query=visible)
            best: dict[str, FacetValue] = {}
            for term, count in terms:
                if count <= 0:
                    continue
                _, _, _, value, label = term.split(SEP, 4)
                current = best.get(value)
                if current is None or count > current.count:
                    best[value] = FacetValue(value=value, count=count, label=label or None)
            out[name] = tuple(sorted(best.values(), key=lambda f: (-f.count, f.value))[:limit])
        return out

    def vocabulary(self, owner: str) -> dict[str, tuple[str, ...]]:
        """{"tags": every tag of the owner's photos, then every weak tag that is not one; "places": every city},
        hidden photos included, sensitive ones not, up to VOCABULARY_SIZE each: what query understanding may turn
        into tag and place parts. Facets stop at the FACET_SIZE most common; a synonym must reach a tag of any
        count."""
        check_owner(owner)
        searcher = self._index.searcher()
        visible = self._visible(self._owner_query(owner), include_hidden=True, include_sensitive=False)
        result = searcher.aggregate(visible, {name: {"terms": {"field": field, "size": VOCABULARY_SIZE}}
                                              for name, field in (("tags", "tags_kw"), ("places", "city_facet"))})

        def values(name: str) -> list[str]:
            return [str(b["key"]) for b in result.get(name, {}).get("buckets", []) if int(b["doc_count"]) > 0]

        tags = dict.fromkeys(key.partition(SEP)[2] for key in values("tags"))
        weak = searcher.terms_with_prefix("suggest", f"{owner}{WEAK_TAG_PREFIX}", filter_query=visible,
                                          limit=VOCABULARY_SIZE)
        tags.update(dict.fromkeys(term.removeprefix(f"{owner}{WEAK_TAG_PREFIX}") for term, count in weak if count > 0))
        return {"tags": tuple(t for t in tags if t), "places": tuple(values("places"))}

    def _owner_query(self, owner: str) -> Query:
        return Query.term_query(self._schema, "owner", owner)

    def _visible(self, q: Query, *, include_hidden: bool, include_sensitive: bool) -> Query:
        clauses = [(Occur.Must, q)]
        if not include_hidden:
            clauses.append((Occur.MustNot, Query.term_query(self._schema, "hidden", 1)))
        if not include_sensitive:
            clauses.append((Occur.MustNot, Query.term_query(self._schema, "sensitive", 1)))
        return Query.boolean_query(clauses)

    def _plan(self, query: SearchQuery) -> Plan:
        s = self._schema
        owner_q = self._owner_query(query.owner)
        must: list[Query] = [owner_q]
        reasons: list[MatchReason] = []
        for tag in query.tags:
            must.append(Query.term_query(s, "tags_kw", f"{query.owner}{SEP}{keyword_term(tag)}"))
        if query.tags:
            reasons.append(MatchReason(field="tags", terms=tuple(query.tags)))
        for person in query.people:
            must.append(Query.term_query(s, "people_ids", person))
        if query.people:
            reasons.append(MatchReason(field="people", terms=tuple(query.people)))
        if query.place:
            must.append(Query.term_query(s, "place_kw", keyword_term(query.place)))
            reasons.append(MatchReason(field="place", terms=(query.place,)))
        if query.camera:
            must.append(Query.term_query(s, "camera_kw", keyword_term(query.camera)))
            reasons.append(MatchReason(field="camera", terms=(query.camera,)))
        term_filters = len(must) > 1
        lower = upper = None
        if query.dates and (query.dates.start or query.dates.end):
            lower = micros(query.dates.start) if query.dates.start else None
            upper = micros(query.dates.end) if query.dates.end else None
            # The end is exclusive; an open end (from= without to=) must stay inclusive: tantivy refuses an
            # exclusive unbounded side.
            must.append(Query.range_query(s, "t", FieldType.Integer, lower, upper, include_upper=upper is None))
        if query.near:
            keys = self._vectors.within(query.owner, query.near.lat, query.near.lon, query.near.km)
            must.append(Query.term_set_query(s, "key", keys.tolist()) if len(keys) else Query.empty_query())
        clauses = [(Occur.Must, Query.const_score_query(q, 0.0)) for q in must]
        filtered = self._visible(
            Query.boolean_query(clauses),
            include_hidden=query.include_hidden,
            include_sensitive=query.include_sensitive,
        )
        tokens = self._tokens(query.text)
        grams: dict[str, str] = {}  # query word -> the same word, for words that may sit inside an OCR run
        required: list[Query] = []
        for token, word in tokens.items():
            required.append(self._token_query(query.owner, token, word, grams))
        weak: dict[str, str] = {}
        for part in query.parts:
            alternatives = [Query.const_score_query(self._part_keyword(query.owner, part), PART_KEYWORD_SCORE)]
            if part.kind == "tag":
                term = weak_tag_term(query.owner, part.value)
                weak[term] = part.value
                alternatives.append(Query.const_score_query(Query.term_query(self._schema, "suggest", term),
                                                            PART_WEAK_SCORE))
            for phrase in part.words:
                phrase_tokens = self._tokens(phrase)
                if phrase_tokens:
                    alternatives.append(Query.boolean_query([
                        (Occur.Must, self._token_query(query.owner, t, w, grams)) for t, w in phrase_tokens.items()
                    ]))
                    for t, w in phrase_tokens.items():
                        tokens.setdefault(t, w)
            required.append(Query.boolean_query([(Occur.Should, q) for q in alternatives]))
        if not query.text.strip() and not query.parts:
            keyword: Query | None = filtered
        elif not required:
            keyword = None  # text made only of punctuation: matches nothing rather than everything
        elif query.relaxed and len(required) > 1:
            # the relaxed reading: every part and word optional, at least one present; more present ranks higher
            # (each present one adds RELAXED_COVERAGE_SCORE to its own score: search.parts)
            anyone = Query.boolean_query([
                (Occur.Should, Query.boolean_query([
                    (Occur.Must, q), (Occur.Must, Query.const_score_query(q, RELAXED_COVERAGE_SCORE))]))
                for q in required
            ])
            keyword = Query.boolean_query([(Occur.Must, filtered), (Occur.Must, anyone)])
        else:
            keyword = Query.boolean_query([(Occur.Must, filtered), *[(Occur.Must, q) for q in required]])
        return Plan(owner_q, filtered, keyword, tokens, reasons, term_filters, lower, upper, grams, weak)

    def _token_query(self, owner: str, token: str, word: str, grams: dict[str, str]) -> Query:
        """One analysed word over every text field (the best field counts, the others a fifth), or inside a run
        of OCR letters by its trigrams (a constant GRAM_SCORE, below a whole-word match)."""
        s = self._schema
        alternatives = [Query.boost_query(Query.term_query(s, name, token), boost) for name, boost in TEXT_FIELDS]
        needed = word_grams(word)
        if needed:
            grams[word] = word
            inside = Query.boolean_query(
                [(Occur.Must, Query.term_query(s, "suggest", gram_term(owner, g))) for g in needed])
            alternatives.append(Query.const_score_query(inside, GRAM_SCORE))
        return Query.disjunction_max_query(alternatives, tie_breaker=0.2)

    def _part_keyword(self, owner: str, part: QueryPart) -> Query:
        if part.kind == "tag":
            return Query.term_query(self._schema, "tags_kw", f"{owner}{SEP}{keyword_term(part.value)}")
        return Query.term_query(self._schema, "place_kw", keyword_term(part.value))

    def _tokens(self, text: str) -> dict[str, str]:
        tokens: dict[str, str] = {}
        for word in text[:4096].split():
            analysed = self._query_analyzer.analyze(word) or self._doc_analyzer.analyze(word)
            for token in analysed:
                tokens.setdefault(token, word)
            if len(tokens) >= MAX_QUERY_TOKENS:
                break
        return tokens

    @staticmethod
    def _parse_after(after: tuple | None, *, by_time: bool) -> tuple | None:
        if after is None:
            return None
        try:
            if by_time:
                t, pid = after
                return (int(t), str(pid))
            score, t, pid = after
            score = float(score)
            if not math.isfinite(score):
                raise ValueError(score)
            return (score, int(t), str(pid))
        except (TypeError, ValueError) as e:
            raise ValidationError("invalid cursor") from e

    def _ranked(self, searcher, q: Query, *, by_time: bool, after: tuple | None,
                limit: int) -> tuple[list[Candidate], int]:
        """The exact page after `after`, and the number of matches. tantivy returns the top K by one value (score
        or time) with ties in arbitrary order, so only hits strictly above the K-th value are known to be complete;
        K grows until that complete prefix holds a full page (or the matches run out). The recency factor in the
        score keeps tied groups small, so K rarely grows."""
        total = None
        if by_time and after is not None:
            total = searcher.search(q, 1, count=True).count
            q = Query.boolean_query(
                [(Occur.Must, q), (Occur.Must, Query.range_query(self._schema, "t", FieldType.Integer, None, after[0]))]
            )
        # by score, room for the tied group at the boundary (~20 photos for a big owner's common tag) so one
        # search usually completes the page: each costs ~4 ms for the largest owners at 1M
        size = (limit + 1 if by_time else 2 * limit + 1) if after is None else 4 * limit + 1
        while True:
            result = searcher.search(q, size, count=total is None, order_by_field="t" if by_time else None,
                                     order=Order.Desc, weight_by_field=None if by_time else "recency")
            if total is None:
                total = result.count
            hits = result.hits
            exhausted = len(hits) < size
            complete = len(hits)
            if not exhausted:
                boundary = hits[-1][0]
                while complete and hits[complete - 1][0] == boundary:
                    complete -= 1
            addrs = [addr for _, addr in hits[:complete]]
            if by_time:
                cands = [Candidate(t=value, addr=addr) for value, addr in hits[:complete]]
            else:
                times = searcher.fast_field_values("t", addrs) if addrs else []
                cands = [Candidate(t=t, addr=a, score=v) for (v, a), t in zip(hits[:complete], times, strict=True)]
            ordered = self._order(searcher, cands, lambda c: (-c.score, -c.t))
            if after is not None:
                head = (0.0, after[0]) if by_time else (after[0], after[1])
                ordered = [c for c in ordered if self._is_after(searcher, c, (-head[0], -head[1]), after[-1])]
            if len(ordered) >= limit or exhausted:
                return ordered[:limit], total
            size *= 4

    def _is_after(self, searcher, c: Candidate, head: tuple, pid: str) -> bool:
        mine = (-c.score, -c.t)
        if mine != head:
            return mine > head
        return self._pid(searcher, c) > pid

    def _order(self, searcher, cands: list[Candidate], head) -> list[Candidate]:
        """Sorts by head(c) then photo_id, loading photo ids only for candidates that tie on head."""
        cands.sort(key=head)
        i = 0
        while i < len(cands):
            j = i + 1
            while j < len(cands) and head(cands[j]) == head(cands[i]):
                j += 1
            if j - i > 1:
                cands[i:j] = sorted(cands[i:j], key=lambda c: self._pid(searcher, c))
            i = j
        return cands

    @staticmethod
    def _pid(searcher, c: Candidate) -> str:
        if c.pid is None:
            c.pid = searcher.doc(c.addr)["photo_id"][0]
        return c.pid

    @staticmethod
    def _resolve_keys(searcher, cands: list[Candidate]) -> None:
        missing = [c for c in cands if c.key < 0]
        if missing:
            for c, key in zip(missing, searcher.fast_field_values("key", [c.addr for c in missing]), strict=True):
                c.key = key

    def _hybrid_page(self, searcher, plan: Plan, query: SearchQuery) -> tuple[list[Candidate], int]:
        after = self._parse_after(query.after, by_time=False)
        keyword: list[Candidate] = []
        total = 0
        if plan.keyword is not None and plan.tokens:
            keyword, total = self._ranked(searcher, plan.keyword, by_time=False, after=None, limit=HYBRID_WINDOW)
            self._resolve_keys(searcher, keyword)
        vector = self._vector_ranked(searcher, plan, query)
        by_key: dict[int, Candidate] = {}
        for rank, c in enumerate(keyword, start=1):
            c.kw_rank = rank
            by_key[c.key] = c
        for rank, c in enumerate(vector, start=1):
            by_key.setdefault(c.key, c).vec_rank = rank
        ordered = []
        for key, score in hybrid_ranking(
            [c.key for c in keyword], [c.key for c in vector], k=RRF_K,
            sort_time=lambda key: by_key[key].t, photo_id=lambda key: self._pid(searcher, by_key[key]),
        ):
            by_key[key].score = score
            ordered.append(by_key[key])
        total += sum(1 for c in ordered if c.kw_rank is None)
        if after is not None:
            ordered = [c for c in ordered if self._is_after(searcher, c, (-after[0], -after[1]), after[2])]
        return ordered[: query.limit], total

    def _vector_ranked(self, searcher, plan: Plan, query: SearchQuery) -> list[Candidate]:
        """The owner's rows by cosine, best first (key breaks ties), that pass every filter of the query, up to the
        window: int8 estimates pick candidates, re-scored exactly from the float32 rows (vector_slices). Dates, visibility and distance are numpy masks over the owner's slice, so the candidates
        checked against tantivy (which also yields their addresses) nearly all pass: one round, usually."""
        vector = self._unit(query.embedding)
        if vector is None:
            return []
        try:
            ranked = self._by_similarity(plan, query, vector)
        except ValueError:  # a compaction retired the vectors file this state read: the next state names the new one
            ranked = self._by_similarity(plan, query, vector)
        out: list[Candidate] = []
        taken = 0
        while len(out) < HYBRID_WINDOW and taken < len(ranked):
            want = min(len(ranked), taken + (2 if plan.term_filters else 1) * (HYBRID_WINDOW - len(out)))
            chunk = ranked.take(taken, want)
            taken += len(chunk)
            # visibility again even when numpy checked it: the vector state and this searcher may be one write
            # apart, and a photo that just became hidden must not slip through on stale flags
            check = self._keys_query(chunk.tolist())
            if plan.term_filters:
                check = Query.boolean_query([(Occur.Must, check), (Occur.Must, plan.filtered)])
            else:
                check = self._visible(check, include_hidden=query.include_hidden,
                                      include_sensitive=query.include_sensitive)
            hits = searcher.search(check, len(chunk), count=False, order_by_field="t").hits
            if not hits:
                continue
            addrs = [a for _, a in hits]
            found = {k: (t, a) for k, (t, a) in zip(searcher.fast_field_values("key", addrs), hits, strict=True)}
            for key in chunk.tolist():
                if key in found:
                    t, addr = found[key]
                    out.append(Candidate(t=t, addr=addr, key=key))
        return out[:HYBRID_WINDOW]

    def _keys_query(self, keys: list[int]) -> Query:
        """The documents of these keys (a few hundred at most): one term lookup per key and segment. A
        term_set_query streamed the key field's whole term dictionary instead: 3.1 ms for 200 keys at 200k photos
        (~5x that at 1M, most of a hybrid query) against 0.6 ms this way."""
        s = self._schema
        return Query.boolean_query([(Occur.Should, Query.term_query(s, "key", key)) for key in keys])

    def _by_similarity(self, plan: Plan, query: SearchQuery, vector: np.ndarray) -> Ranked:
        rows = self._vectors.owner_slice(query.owner, with_vectors=True)
        mask = rows.has_vector.copy()
        hide = (0 if query.include_hidden else HIDDEN) | (0 if query.include_sensitive else SENSITIVE)
        if hide:
            mask &= (rows.flags & hide) == 0
        if plan.lower is not None:
            mask &= rows.t >= plan.lower
        if plan.upper is not None:
            mask &= rows.t < plan.upper
        if query.near:
            mask &= within_km(rows.lat, rows.lon, query.near.lat, query.near.lon, query.near.km)
        return rank_by_similarity(rows, vector, mask, self._min_similarity)

    def _weak_found(self, searcher, plan: Plan, page: list[Candidate]) -> dict[int, list[str]]:
        """key -> the understood tags a page's photo carries only as weak labels (its explanation): one small
        query per understood tag, over the page's keys (weak terms are not stored on the document)."""
        if not plan.weak or not page:
            return {}
        self._resolve_keys(searcher, page)
        keys = self._keys_query([c.key for c in page])
        found: dict[int, list[str]] = {}
        for term, tag in plan.weak.items():
            q = Query.boolean_query([(Occur.Must, keys), (Occur.Must, Query.term_query(self._schema, "suggest", term))])
            hits = searcher.search(q, len(page), count=False).hits
            if hits:
                for key in searcher.fast_field_values("key", [addr for _, addr in hits]):
                    found.setdefault(key, []).append(tag)
        return found

    def _hit(self, searcher, plan: Plan, query: SearchQuery, c: Candidate, *, hybrid: bool,
             weak: tuple[str, ...] | list[str] = ()) -> SearchHit:
        doc = searcher.doc(c.addr)
        pid = doc["photo_id"][0]
        semantic_only = hybrid and c.kw_rank is None
        if semantic_only:
            matched: tuple[MatchReason, ...] = (MatchReason(field="meaning"),)
        else:
            reasons = []
            for name, _ in TEXT_FIELDS if plan.tokens else ():
                values = doc.get_all(name)
                if not values:
                    continue
                # OCR text and file names rarely repeat: analysed each time, they would only push out of the
                # cache the values that do (and hold memory of the open index for nothing)
                tokens_of = self._analysed if name in UNIQUE_TEXT else self._tokens_of
                present = tokens_of(values[0]) if len(values) == 1 else frozenset().union(*map(tokens_of, values))
                found = [word for token, word in plan.tokens.items() if token in present]
                if name == "ocr_text":
                    found += [word for word in plan.grams if any(found_in_run(word, value) for value in values)]
                words = tuple(dict.fromkeys(found))
                if words:
                    reasons.append(MatchReason(field=name, terms=words))
            if weak:
                reasons.append(MatchReason(field="weak_tags", terms=tuple(weak)))
            matched = (*reasons, *plan.filter_reasons)
        if query.sort is SortOrder.NEWEST and not hybrid:
            sort_values: tuple = (c.t, pid)
        elif not hybrid and not plan.tokens:
            sort_values = (c.t, pid)  # nothing to score: newest first, same cursor shape as NEWEST
        else:
            sort_values = (c.score, c.t, pid)
        return SearchHit(photo_id=pid, score=c.score, sort_values=sort_values, matched=matched,
                         semantic_only=semantic_only)

    def _facets(self, searcher, q: Query) -> dict[str, tuple[FacetValue, ...]]:
        aggs = {
            name: {"terms": {"field": fast, "size": FACET_SIZE}}
            for name, fast in (("tags", "tags_kw"), ("people", "people_facet"), ("places", "city_facet"),
                               ("years", "year"))
        }
        result = searcher.aggregate(q, aggs)
        out: dict[str, tuple[FacetValue, ...]] = {}
        for name in aggs:
            values = []
            for bucket in result.get(name, {}).get("buckets", []):
                key, count = bucket["key"], int(bucket["doc_count"])
                if name == "people":
                    person, _, label = str(key).partition(SEP)
                    values.append(FacetValue(value=person, count=count, label=label or None))
                elif name == "years":
                    values.append(FacetValue(value=str(int(key)), count=count))
                elif name == "tags":
                    values.append(FacetValue(value=str(key).partition(SEP)[2], count=count))
                else:
                    values.append(FacetValue(value=str(key), count=count))
            out[name] = facet_order(name, values)
        return out
