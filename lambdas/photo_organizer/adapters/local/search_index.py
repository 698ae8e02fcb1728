"""SearchIndex for the embedded local stack: tantivy for text, filters and facets, an owner-sorted float32 matrix
for vectors (vector_slices.py), and a small SQLite ledger for versions, tombstones and embeddings.

Why tantivy: at 1M photos owner-scoped keyword p99 is ~2.5 ms against ~10 ms for SQLite FTS5 with the owner as a
token column, the index is ~5x smaller and builds faster (TOOLCHAIN.md; benchmarks/search.py measures both in
one run). DuckDB's FTS cannot be installed offline and SQLite extensions cannot be loaded here.

Safety: user text is never parsed as query syntax. It goes through the same analyzer as the documents and
every token becomes a term query built in code; quotes, colons, `*`, `AND/OR/NOT` are just separators. The
owner is a Must clause on a raw field in every query, aggregation and suggestion (never a post-filter), and the
suggestion terms themselves carry the owner as a prefix.

Versions: the ledger row per (owner, photo_id) holds the newest version seen, live or tombstoned. An upsert
writes only if its version is greater; a delete applies if its version is >= the stored one (the stream's REMOVE
carries the last written version, as OpenSearch `external_gte` would), and leaves a tombstone so a late, older
upsert cannot bring the photo back.

Concurrency: one writer at a time (a lock; tantivy also holds a lock file), readers never block: every search
takes one tantivy searcher (a point-in-time snapshot) and one vector state. The tantivy commit comes before the
ledger commit, so a crash in between leaves the ledger behind and the retried write is applied again.

Ordering: NEWEST is (sort_time desc, photo_id asc); RELEVANCE is (score desc, sort_time desc, photo_id asc),
so recency breaks score ties; with a query embedding, RELEVANCE is reciprocal rank fusion of the keyword top
HYBRID_WINDOW and the vector top HYBRID_WINDOW, (rrf desc, sort_time desc, photo_id asc). Every hit carries those
values as `sort_values`; `after` continues strictly after them, exactly, on an unchanged index.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import tantivy
from tantivy import FieldType, Occur, Order, Query

from photo_organizer.adapters.local.vector_slices import OwnerVectors, Row
from photo_organizer.errors import StorageUnavailableError, ValidationError
from photo_organizer.search.fusion import RRF_K, reciprocal_rank_fusion
from photo_organizer.search.models import (
    EMBEDDING_DIMENSIONS,
    FacetValue,
    MatchReason,
    SearchDocument,
    SearchHit,
    SearchQuery,
    SearchResults,
    SortOrder,
)

SCHEMA_VERSION = 1
HYBRID_WINDOW = 200  # per list; the largest page
FACET_SIZE = 20
MAX_QUERY_TOKENS = 32
SEP = "\x1f"  # inside raw terms; never in owners, photo ids or prefixes (stripped/refused)

# (field, boost): people and tags over place over caption over OCR/filename/camera.
TEXT_FIELDS: tuple[tuple[str, float], ...] = (
    ("people", 4.0),
    ("tags", 4.0),
    ("place", 2.5),
    ("caption", 1.5),
    ("camera", 1.0),
    ("ocr_text", 1.0),
    ("filename", 1.0),
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_LEDGER = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    key       INTEGER PRIMARY KEY,
    owner     TEXT NOT NULL,
    photo_id  TEXT NOT NULL,
    version   INTEGER NOT NULL,
    deleted   INTEGER NOT NULL,
    lat       REAL,
    lon       REAL,
    embedding BLOB,
    UNIQUE (owner, photo_id)
);
CREATE INDEX IF NOT EXISTS docs_owner_key ON docs (owner, key);
"""


def _micros(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _clean(value: str) -> str:
    """Display text without control characters (SEP among them) or runs of whitespace."""
    if not value.isprintable():
        value = _CONTROL.sub(" ", value)
    return " ".join(value.split())


def _kw(value: str) -> str:
    return _clean(value).casefold()


def _analyzer(*, stopwords: bool) -> tantivy.TextAnalyzer:
    builder = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
    )
    if stopwords:
        builder = builder.filter(tantivy.Filter.stopword("english"))
    return builder.filter(tantivy.Filter.stemmer("english")).build()


def _schema() -> tantivy.Schema:
    b = tantivy.SchemaBuilder()
    b.add_unsigned_field("key", stored=True, indexed=True, fast=True)
    b.add_text_field("owner", tokenizer_name="raw", index_option="basic")
    b.add_text_field("photo_id", stored=True, tokenizer_name="raw", index_option="basic")
    b.add_integer_field("t", indexed=True, fast=True)
    b.add_integer_field("year", indexed=True, fast=True)
    b.add_unsigned_field("hidden", indexed=True)
    b.add_unsigned_field("sensitive", indexed=True)
    for name in ("tags_kw", "people_facet", "city_facet"):
        b.add_text_field(name, fast=True, tokenizer_name="raw", index_option="basic")
    for name in ("people_ids", "place_kw", "camera_kw", "suggest"):
        b.add_text_field(name, tokenizer_name="raw", index_option="basic")
    for name, _ in TEXT_FIELDS:
        b.add_text_field(name, stored=True, tokenizer_name="po_text", index_option="freq")
    return b.build()


@dataclass
class _Candidate:
    t: int
    addr: Any
    score: float = 0.0
    key: int = -1
    pid: str | None = None
    kw_rank: int | None = None
    vec_rank: int | None = None


@dataclass
class _Plan:
    owner_q: Query
    filtered: Query  # owner + filters, no text
    keyword: Query | None  # filtered + text; None when the text has no searchable token
    tokens: dict[str, str]  # analysed token -> the word the user typed
    filter_reasons: list[MatchReason] = field(default_factory=list)


class LocalSearchIndex:
    def __init__(
        self,
        directory: Path | str,
        *,
        dimensions: int = EMBEDDING_DIMENSIONS,
        min_similarity: float = 0.2,
        writer_heap_bytes: int = 256_000_000,
    ) -> None:
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._dims = dimensions
        self._min_similarity = min_similarity
        self._heap = writer_heap_bytes
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self._dir / "ledger.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_LEDGER)
        stored = self._db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        if stored is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(stored[0]) != SCHEMA_VERSION:
            raise StorageUnavailableError(f"search index schema {stored[0]} != {SCHEMA_VERSION}: rebuild the index")
        self._next_key = (self._db.execute("SELECT MAX(key) FROM docs").fetchone()[0] or 0) + 1
        self._schema = _schema()
        (self._dir / "tantivy").mkdir(exist_ok=True)
        self._index = tantivy.Index(self._schema, path=str(self._dir / "tantivy"), reuse=True)
        self._doc_analyzer = _analyzer(stopwords=False)
        self._query_analyzer = _analyzer(stopwords=True)
        self._index.register_tokenizer("po_text", self._doc_analyzer)
        self._index.config_reader("commit")
        self._writer: tantivy.IndexWriter | None = None  # taken on first write so readers in other processes work
        self._vectors = OwnerVectors(dimensions)
        self._load_vectors()

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.wait_merging_threads()
                self._writer = None
            self._db.close()

    # ---- writes -----------------------------------------------------------------------------------------

    def upsert(self, documents: list[SearchDocument], *, embeddings: np.ndarray | None = None) -> list[str]:
        """`embeddings` (optional, shape (len(documents), dims)) overrides each document's `embedding`, so bulk
        loads need not build tuples of Python floats."""
        if embeddings is not None and embeddings.shape != (len(documents), self._dims):
            raise ValidationError(f"embeddings must have shape ({len(documents)}, {self._dims})")
        newest: dict[tuple[str, str], int] = {}
        for i, doc in enumerate(documents):
            ident = (doc.owner, doc.photo_id)
            if ident not in newest:
                self._check_owner(doc.owner)
                newest[ident] = i
            elif doc.version > documents[newest[ident]].version:
                newest[ident] = i
        order = sorted(newest.values())
        vectors = self._units(documents, order, embeddings)
        written: list[str] = []
        rows: list[Row] = []
        with self._lock:
            writer = self._take_writer()
            try:
                self._db.execute("BEGIN IMMEDIATE")
                existing = self._existing(list(newest))
                inserts, updates = [], []
                for i, vector in zip(order, vectors, strict=True):
                    doc = documents[i]
                    found = existing.get((doc.owner, doc.photo_id))
                    if found is not None and doc.version <= found[1]:
                        continue
                    place = doc.place
                    located = place is not None and place.lat is not None and place.lon is not None
                    lat, lon = (place.lat, place.lon) if located else (None, None)
                    blob = None if vector is None else vector.tobytes()
                    if found is None:
                        key = self._next_key
                        self._next_key += 1
                        inserts.append((key, doc.owner, doc.photo_id, doc.version, lat, lon, blob))
                    else:
                        key = found[0]
                        updates.append((doc.version, lat, lon, blob, key))
                        writer.delete_documents_by_query(Query.term_query(self._schema, "key", key))
                    writer.add_document(tantivy.Document.from_dict(self._fields(doc, key), self._schema))
                    rows.append(Row(doc.owner, key, vector, lat, lon))
                    written.append(doc.photo_id)
                self._db.executemany(
                    "INSERT INTO docs (key, owner, photo_id, version, deleted, lat, lon, embedding)"
                    " VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
                    inserts,
                )
                self._db.executemany(
                    "UPDATE docs SET version = ?, deleted = 0, lat = ?, lon = ?, embedding = ? WHERE key = ?", updates
                )
                if rows:
                    writer.commit()
                self._db.execute("COMMIT")
            except (sqlite3.Error, ValueError, OSError) as e:
                self._abort(writer)
                raise StorageUnavailableError(f"local search index write failed: {e}") from e
            if rows:
                self._index.reload()
                self._vectors.apply(rows)
        return written

    def _existing(self, idents: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, int, int]]:
        found: dict[tuple[str, str], tuple[int, int, int]] = {}
        by_owner: dict[str, list[str]] = {}
        for owner, pid in idents:
            by_owner.setdefault(owner, []).append(pid)
        for owner, photo_ids in by_owner.items():
            for start in range(0, len(photo_ids), 500):
                chunk = photo_ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for pid, key, version, deleted in self._db.execute(
                    f"SELECT photo_id, key, version, deleted FROM docs WHERE owner = ? AND photo_id IN ({marks})",
                    (owner, *chunk),
                ):
                    found[(owner, pid)] = (key, version, deleted)
        return found

    def _units(self, documents, order: list[int], embeddings: np.ndarray | None) -> list[np.ndarray | None]:
        if embeddings is not None:
            matrix = np.asarray(embeddings, dtype=np.float32)[order]
        else:
            matrix = np.zeros((len(order), self._dims), np.float32)
            for row, i in enumerate(order):
                if documents[i].embedding is not None:
                    if len(documents[i].embedding) != self._dims:
                        raise ValidationError(f"embedding must have {self._dims} dimensions")
                    matrix[row] = documents[i].embedding
        norms = np.linalg.norm(matrix, axis=1)
        usable = np.isfinite(norms) & (norms > 0)
        matrix[usable] /= norms[usable, None]
        return [matrix[row] if usable[row] else None for row in range(len(order))]

    def delete(self, owner: str, photo_id: str, *, version: int) -> None:
        self._check_owner(owner)
        with self._lock:
            writer = self._take_writer()
            try:
                self._db.execute("BEGIN IMMEDIATE")
                existing = self._db.execute(
                    "SELECT key, version, deleted FROM docs WHERE owner = ? AND photo_id = ?", (owner, photo_id)
                ).fetchone()
                if existing is None:
                    self._db.execute(
                        "INSERT INTO docs (key, owner, photo_id, version, deleted) VALUES (?, ?, ?, ?, 1)",
                        (self._next_key, owner, photo_id, version),
                    )
                    self._next_key += 1
                elif version >= existing[1]:
                    key, _, deleted = existing
                    self._db.execute(
                        "UPDATE docs SET version = ?, deleted = 1, lat = NULL, lon = NULL, embedding = NULL"
                        " WHERE key = ?",
                        (version, key),
                    )
                    if not deleted:
                        writer.delete_documents_by_query(Query.term_query(self._schema, "key", key))
                        writer.commit()
                        self._db.execute("COMMIT")
                        self._index.reload()
                        self._vectors.apply((), [(owner, key)])
                        return
                self._db.execute("COMMIT")
            except (sqlite3.Error, ValueError, OSError) as e:
                self._abort(writer)
                raise StorageUnavailableError(f"local search index delete failed: {e}") from e

    def compact(self) -> None:
        """Merges the vector delta into the owner-sorted matrix (also happens on its own as the delta grows)."""
        self._vectors.compact()

    # ---- reads ------------------------------------------------------------------------------------------

    def count(self, owner: str) -> int:
        self._check_owner(owner)
        return self._index.searcher().search(self._owner_query(owner), 1, count=True).count

    def search(self, query: SearchQuery, *, facets: bool = True) -> SearchResults:
        self._check_owner(query.owner)
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
            page = self._ranked(searcher, plan.keyword, by_time=by_time, after=after, limit=query.limit)
            total = searcher.search(plan.keyword, 1, count=True).count
            self._resolve_keys(searcher, page)
        hits = tuple(self._hit(searcher, plan, query, c, hybrid=hybrid) for c in page)
        facet_values = self._facets(searcher, plan.keyword) if facets and plan.keyword is not None else {}
        return SearchResults(hits=hits, total=total, facets=facet_values)

    def suggest(self, owner: str, prefix: str, *, limit: int = 10) -> dict[str, tuple[FacetValue, ...]]:
        self._check_owner(owner)
        prefix = _kw(prefix)[:100]
        searcher = self._index.searcher()
        visible = self._visible(self._owner_query(owner), include_hidden=False, include_sensitive=False)
        out: dict[str, tuple[FacetValue, ...]] = {}
        for kind, name in (("t", "tags"), ("p", "people"), ("l", "places")):
            terms = searcher.terms_with_prefix("suggest", f"{owner}{SEP}{kind}{SEP}{prefix}", filter_query=visible)
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

    # ---- query building ---------------------------------------------------------------------------------

    def _owner_query(self, owner: str) -> Query:
        return Query.term_query(self._schema, "owner", owner)

    def _visible(self, q: Query, *, include_hidden: bool, include_sensitive: bool) -> Query:
        clauses = [(Occur.Must, q)]
        if not include_hidden:
            clauses.append((Occur.MustNot, Query.term_query(self._schema, "hidden", 1)))
        if not include_sensitive:
            clauses.append((Occur.MustNot, Query.term_query(self._schema, "sensitive", 1)))
        return Query.boolean_query(clauses)

    def _plan(self, query: SearchQuery) -> _Plan:
        s = self._schema
        owner_q = self._owner_query(query.owner)
        must: list[Query] = [owner_q]
        reasons: list[MatchReason] = []
        for tag in query.tags:
            must.append(Query.term_query(s, "tags_kw", _kw(tag)))
        if query.tags:
            reasons.append(MatchReason(field="tags", terms=tuple(query.tags)))
        for person in query.people:
            must.append(Query.term_query(s, "people_ids", person))
        if query.people:
            reasons.append(MatchReason(field="people", terms=tuple(query.people)))
        if query.place:
            must.append(Query.term_query(s, "place_kw", _kw(query.place)))
            reasons.append(MatchReason(field="place", terms=(query.place,)))
        if query.camera:
            must.append(Query.term_query(s, "camera_kw", _kw(query.camera)))
            reasons.append(MatchReason(field="camera", terms=(query.camera,)))
        if query.dates and (query.dates.start or query.dates.end):
            lower = _micros(query.dates.start) if query.dates.start else None
            upper = _micros(query.dates.end) if query.dates.end else None
            must.append(Query.range_query(s, "t", FieldType.Integer, lower, upper, include_upper=False))
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
        if not query.text.strip():
            keyword: Query | None = filtered
        elif not tokens:
            keyword = None  # text made only of punctuation: matches nothing rather than everything
        else:
            per_token = [
                Query.disjunction_max_query(
                    [Query.boost_query(Query.term_query(s, name, token), boost) for name, boost in TEXT_FIELDS],
                    tie_breaker=0.2,
                )
                for token in tokens
            ]
            keyword = Query.boolean_query([(Occur.Must, filtered), *[(Occur.Must, q) for q in per_token]])
        return _Plan(owner_q, filtered, keyword, tokens, reasons)

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

    # ---- ranking ----------------------------------------------------------------------------------------

    def _ranked(self, searcher, q: Query, *, by_time: bool, after: tuple | None, limit: int) -> list[_Candidate]:
        """The exact page after `after`. tantivy returns the top K by one value (score or time) with ties in
        arbitrary order, so only hits strictly above the K-th value are known to be complete; K grows until that
        complete prefix holds a full page (or the matches run out)."""
        if by_time and after is not None:
            q = Query.boolean_query(
                [(Occur.Must, q), (Occur.Must, Query.range_query(self._schema, "t", FieldType.Integer, None, after[0]))]
            )
        size = limit + 1 if after is None else 4 * limit + 1
        while True:
            hits = searcher.search(q, size, count=False, order_by_field="t" if by_time else None, order=Order.Desc).hits
            exhausted = len(hits) < size
            complete = len(hits)
            if not exhausted:
                boundary = hits[-1][0]
                while complete and hits[complete - 1][0] == boundary:
                    complete -= 1
            addrs = [addr for _, addr in hits[:complete]]
            if by_time:
                cands = [_Candidate(t=value, addr=addr) for value, addr in hits[:complete]]
            else:
                times = searcher.fast_field_values("t", addrs) if addrs else []
                cands = [_Candidate(t=t, addr=a, score=v) for (v, a), t in zip(hits[:complete], times, strict=True)]
            ordered = self._order(searcher, cands, lambda c: (-c.score, -c.t))
            if after is not None:
                head = (0.0, after[0]) if by_time else (after[0], after[1])
                ordered = [c for c in ordered if self._is_after(searcher, c, (-head[0], -head[1]), after[-1])]
            if len(ordered) >= limit or exhausted:
                return ordered[:limit]
            size *= 4

    def _is_after(self, searcher, c: _Candidate, head: tuple, pid: str) -> bool:
        mine = (-c.score, -c.t)
        if mine != head:
            return mine > head
        return self._pid(searcher, c) > pid

    def _order(self, searcher, cands: list[_Candidate], head) -> list[_Candidate]:
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
    def _pid(searcher, c: _Candidate) -> str:
        if c.pid is None:
            c.pid = searcher.doc(c.addr)["photo_id"][0]
        return c.pid

    @staticmethod
    def _resolve_keys(searcher, cands: list[_Candidate]) -> None:
        missing = [c for c in cands if c.key < 0]
        if missing:
            for c, key in zip(missing, searcher.fast_field_values("key", [c.addr for c in missing]), strict=True):
                c.key = key

    def _hybrid_page(self, searcher, plan: _Plan, query: SearchQuery) -> tuple[list[_Candidate], int]:
        after = self._parse_after(query.after, by_time=False)
        keyword: list[_Candidate] = []
        total = 0
        if plan.keyword is not None and plan.tokens:
            keyword = self._ranked(searcher, plan.keyword, by_time=False, after=None, limit=HYBRID_WINDOW)
            self._resolve_keys(searcher, keyword)
            total = searcher.search(plan.keyword, 1, count=True).count
        vector = self._vector_ranked(searcher, plan, query)
        by_key: dict[int, _Candidate] = {}
        for rank, c in enumerate(keyword, start=1):
            c.kw_rank = rank
            by_key[c.key] = c
        for rank, c in enumerate(vector, start=1):
            by_key.setdefault(c.key, c).vec_rank = rank
        fused = reciprocal_rank_fusion([[c.key for c in keyword], [c.key for c in vector]], k=RRF_K)
        cands = list(by_key.values())
        for c in cands:
            c.score = fused[c.key]
        total += sum(1 for c in cands if c.kw_rank is None)
        ordered = self._order(searcher, cands, lambda c: (-c.score, -c.t))
        if after is not None:
            ordered = [c for c in ordered if self._is_after(searcher, c, (-after[0], -after[1]), after[2])]
        return ordered[: query.limit], total

    def _vector_ranked(self, searcher, plan: _Plan, query: SearchQuery) -> list[_Candidate]:
        """The owner's rows by exact cosine, best first, that pass every filter of the query, up to the window."""
        vector = self._unit(query.embedding)
        if vector is None:
            return []
        keys, sims = self._vectors.similarities(query.owner, vector)
        keep = sims >= self._min_similarity
        keys, sims = keys[keep], sims[keep]
        order = np.lexsort((keys, -sims))
        out: list[_Candidate] = []
        position, chunk = 0, 2 * HYBRID_WINDOW
        while len(out) < HYBRID_WINDOW and position < len(order):
            chunk_keys = keys[order[position : position + chunk]].tolist()
            position += chunk
            chunk *= 2
            check = Query.boolean_query(
                [(Occur.Must, plan.filtered), (Occur.Must, Query.term_set_query(self._schema, "key", chunk_keys))]
            )
            hits = searcher.search(check, len(chunk_keys), count=False, order_by_field="t").hits
            if not hits:
                continue
            addrs = [a for _, a in hits]
            found = {
                k: (t, a)
                for k, t, a in zip(searcher.fast_field_values("key", addrs), (t for t, _ in hits), addrs, strict=True)
            }
            for key in chunk_keys:
                if key in found:
                    t, addr = found[key]
                    out.append(_Candidate(t=t, addr=addr, key=key))
        return out[:HYBRID_WINDOW]

    # ---- hits and facets --------------------------------------------------------------------------------

    def _hit(self, searcher, plan: _Plan, query: SearchQuery, c: _Candidate, *, hybrid: bool) -> SearchHit:
        doc = searcher.doc(c.addr)
        pid = doc["photo_id"][0]
        semantic_only = hybrid and c.kw_rank is None
        if semantic_only:
            matched: tuple[MatchReason, ...] = (MatchReason(field="meaning"),)
        else:
            reasons = []
            for name, _ in TEXT_FIELDS:
                values = doc.get_all(name)
                if not values or not plan.tokens:
                    continue
                present = {token for value in values for token in self._doc_analyzer.analyze(value)}
                words = tuple(dict.fromkeys(word for token, word in plan.tokens.items() if token in present))
                if words:
                    reasons.append(MatchReason(field=name, terms=words))
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
                else:
                    values.append(FacetValue(value=str(key), count=count))
            if name == "years":
                values.sort(key=lambda f: f.value, reverse=True)
            else:
                values.sort(key=lambda f: (-f.count, f.value))
            out[name] = tuple(values)
        return out

    # ---- documents --------------------------------------------------------------------------------------

    def _fields(self, doc: SearchDocument, key: int) -> dict[str, list]:
        f: dict[str, list] = {
            "key": [key], "owner": [doc.owner], "photo_id": [doc.photo_id], "t": [_micros(doc.sort_time)],
            "year": [(doc.taken_at or doc.uploaded_at).year], "hidden": [int(doc.hidden)],
            "sensitive": [int(doc.sensitive)],
        }
        prefix = f"{doc.owner}{SEP}"
        suggest: set[str] = set()
        if doc.tags:
            tags = list(dict.fromkeys(doc.tags))
            kws = [_kw(tag) for tag in tags]
            f["tags"] = tags
            f["tags_kw"] = [kw for kw in kws if kw]
            suggest.update(f"{prefix}t{SEP}{kw}{SEP}{kw}{SEP}" for kw in f["tags_kw"])
        if doc.people:
            f["people_ids"] = [p.person_id for p in doc.people]
            names = [_clean(p.name or "") for p in doc.people]
            f["people_facet"] = [f"{p.person_id}{SEP}{name}" for p, name in zip(doc.people, names, strict=True)]
            f["people"] = [name for name in names if name]
            for person, name in zip(doc.people, names, strict=True):
                words = name.casefold().split()
                for i in range(len(words)):  # "ana silva" is suggested for "an" and for "sil"
                    suggest.add(f"{prefix}p{SEP}{' '.join(words[i:])}{SEP}{person.person_id}{SEP}{name}")
        place = doc.place
        if place:
            names = [_clean(n) for n in (place.city, place.region, place.country) if n]
            if names:
                f["place"] = names
                suggest.update(f"{prefix}l{SEP}{n.casefold()}{SEP}{n}{SEP}" for n in names)
            f["place_kw"] = [n.casefold() for n in (*names, place.country_code or "") if n]
            if place.city:
                f["city_facet"] = [_clean(place.city)]
        for name in ("ocr_text", "caption", "filename"):
            value = getattr(doc, name)
            if value:
                f[name] = [value]
        if doc.camera:
            f["camera"] = [doc.camera]
            f["camera_kw"] = [_kw(doc.camera)]
        if suggest:
            f["suggest"] = list(suggest)
        return f

    # ---- plumbing ---------------------------------------------------------------------------------------

    def _unit(self, embedding: Sequence[float] | np.ndarray | None) -> np.ndarray | None:
        if embedding is None:
            return None
        vector = np.asarray(embedding, dtype=np.float32)
        if vector.shape != (self._dims,):
            raise ValidationError(f"embedding must have {self._dims} dimensions")
        norm = float(np.linalg.norm(vector))
        if not math.isfinite(norm) or norm == 0.0:
            return None
        return vector / norm

    @staticmethod
    def _check_owner(owner: str) -> None:
        if not owner or _CONTROL.search(owner):
            raise ValidationError("invalid owner")

    def _take_writer(self) -> tantivy.IndexWriter:
        if self._writer is None:
            try:
                self._writer = self._index.writer(heap_size=self._heap)
            except ValueError as e:  # another process holds the writer lock
                raise StorageUnavailableError(f"local search index is locked: {e}") from e
        return self._writer

    def _abort(self, writer: tantivy.IndexWriter) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        try:
            writer.rollback()
        except ValueError:
            self._writer = None

    def _load_vectors(self) -> None:
        owners: list[str] = []
        keys: list[int] = []
        lats: list[float] = []
        lons: list[float] = []
        blobs: list[bytes] = []
        has: list[bool] = []
        zero = bytes(4 * self._dims)
        cursor = self._db.execute(
            "SELECT owner, key, lat, lon, embedding FROM docs WHERE deleted = 0 ORDER BY owner, key"
        )
        for owner, key, lat, lon, blob in cursor:
            owners.append(owner)
            keys.append(key)
            lats.append(math.nan if lat is None else lat)
            lons.append(math.nan if lon is None else lon)
            has.append(blob is not None)
            blobs.append(blob if blob is not None else zero)
        vectors = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(keys), self._dims)
        self._vectors.load(
            np.array(owners, dtype=object), np.array(keys, np.int64), vectors.astype(np.float32),
            np.array(has, bool), np.array(lats), np.array(lons),
        )

    @property
    def vector_bytes(self) -> int:
        return self._vectors.nbytes
