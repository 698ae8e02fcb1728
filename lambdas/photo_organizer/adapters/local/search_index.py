"""SearchIndex for the embedded local stack: tantivy for text, filters and facets, an owner-sorted float32 matrix
for vectors (vector_slices.py), a small SQLite ledger for versions and tombstones, and an append-only float32
file for the embeddings (the ledger keeps each photo's row in it, and the file's name).

Embeddings file: updates and deletes leave dead rows behind. Once they are more than `vector_file_dead_share` of
the file (checked after writes from `vector_file_min_dead` dead rows on, and by `compact()`), the live rows are
copied owner by owner into the next generation, vectors.<n>.f32, synced, and one ledger transaction moves every
row number and the file's name to it: a crash before that commit leaves the old file named and untouched, one
after it a complete new file. Only the process holding the writer lock compacts; a process opening the index
reads the name and the rows in one snapshot and reads again if that file has just been retired.

Why tantivy: at 1M photos owner-scoped keyword p99 is ~2.5 ms against ~10 ms for SQLite FTS5 with the owner as a
token column, the index is ~5x smaller and builds faster (TOOLCHAIN.md; benchmarks/search.py measures both in
one run). DuckDB's FTS cannot be installed offline and SQLite extensions cannot be loaded here.

Safety: user text is never parsed as query syntax. It goes through the same analyzer as the documents and
every token becomes a term query built in code; quotes, colons, `*`, `AND/OR/NOT` are just separators. The
owner is a Must clause on a raw field in every query, aggregation and suggestion (never a post-filter), and the
suggestion terms and tag keywords themselves carry the owner as a prefix.

Versions: the ledger row per (owner, photo_id) holds the newest version seen, live or tombstoned. An upsert
writes only if its version is greater; a delete applies if its version is >= the stored one (the stream's REMOVE
carries the last written version, as OpenSearch `external_gte` would), and leaves a tombstone so a late, older
upsert cannot bring the photo back.

Concurrency: one writer at a time (a lock; tantivy also holds a lock file), readers never block: every search
takes one tantivy searcher (a point-in-time snapshot) and one vector state. The tantivy commit comes before the
ledger commit, so a crash in between leaves the ledger behind and the retried write is applied again; documents
of new photos that tantivy kept would come back under reused keys, so the next writer deletes every key the
ledger never handed out. A process that takes the writer lock after another one wrote reloads what it keeps in
memory first (keys, vectors, the embeddings file).

Ordering: NEWEST is (sort_time desc, photo_id asc); RELEVANCE is (score desc, sort_time desc, photo_id asc).
The score carries a tiny recency factor (log2(2 + RECENCY_SPREAD * years since 1970 / 100): at most +0.07%,
~0.01% across a 13-year library), so recency breaks what would otherwise be exact ties: a big owner's common tag
tied thousands of photos at one score and every page read them all to order them by time (relevance p99 22.6 ms
at 1M). Only text scores closer than that can swap; sort_time and photo_id still break the ties that remain,
exactly. With a query embedding, RELEVANCE is reciprocal rank fusion of the keyword top
HYBRID_WINDOW and the vector top HYBRID_WINDOW, (rrf desc, sort_time desc, photo_id asc). Every hit carries those
values as `sort_values`; `after` continues strictly after them, exactly, on an unchanged index.
"""

from __future__ import annotations

import functools
import gc
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

from photo_organizer.adapters.local.vector_slices import (
    HIDDEN,
    SENSITIVE,
    OwnerVectors,
    VectorFile,
    sync_directory,
    within_km,
)
from photo_organizer.errors import StorageUnavailableError, ValidationError
from photo_organizer.search.fusion import RRF_K, hybrid_ranking
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

SCHEMA_VERSION = 2
VECTORS_FILE = "vectors.f32"  # generation 0; a compaction writes vectors.<n>.f32 and the ledger names it
HYBRID_WINDOW = 200  # per list; the largest page
FACET_SIZE = 20
MAX_QUERY_TOKENS = 32
SEP = "\x1f"  # inside raw terms; never in owners, photo ids or prefixes (stripped/refused)
RECENCY_SPREAD = 1e-3  # weight field range; tantivy multiplies the score by log2(2 + weight)
_CENTURY_MICROS = 36_525 * 86_400 * 1_000_000

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
    t         INTEGER,
    flags     INTEGER,
    lat       REAL,
    lon       REAL,
    vrow      INTEGER,  -- row in vectors.f32; NULL without an embedding
    UNIQUE (owner, photo_id)
);
"""


def _generation(name: str) -> int:
    middle = name.removeprefix("vectors").removesuffix(".f32").strip(".")
    return int(middle) if middle.isdigit() else 0


def _micros(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@functools.lru_cache(maxsize=65_536)  # tags, names and places repeat across a library
def _clean(value: str) -> str:
    """Display text without control characters (SEP among them) or runs of whitespace."""
    if not value.isprintable():
        value = _CONTROL.sub(" ", value)
    return " ".join(value.split())


@functools.lru_cache(maxsize=65_536)
def _kw(value: str) -> str:
    return _clean(value).casefold()


class _OwnerTerms:
    """One owner's tag, person and place terms, each computed once: a library repeats its owners' tags, people and
    places on every photo, and bulk loads are bound by Python work per document (plain dict lookups here cost a
    third of what an lru_cache call with several arguments did). Bounded: a dict is cleared when it grows past
    LIMIT values. The lists returned are shared between documents: they are only read (by from_dict)."""

    LIMIT = 8192
    __slots__ = ("owner", "tags", "tag_sets", "people", "places")

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.tags: dict[str, str] = {}
        self.tag_sets: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
        self.people: dict[tuple[str, str | None], tuple[str, str, tuple[str, ...]]] = {}
        self.places: dict[tuple, tuple[list[str], list[str], tuple[str, ...], list[str]]] = {}

    def tag(self, tag: str) -> str:
        """The owner-prefixed keyword term, or "" for a tag with no text."""
        if len(self.tags) >= self.LIMIT:
            self.tags.clear()
        kw = _kw(tag)
        term = self.tags[tag] = f"{self.owner}{SEP}{kw}" if kw else ""
        return term

    def tag_set(self, tags: tuple[str, ...]) -> tuple[list[str], list[str]]:
        """(text value, keyword terms) of a photo's tags, duplicates dropped."""
        if len(self.tag_sets) >= self.LIMIT:
            self.tag_sets.clear()
        unique = tuple(dict.fromkeys(tags))
        known = self.tags
        terms = [known[tag] if tag in known else self.tag(tag) for tag in unique]
        found = self.tag_sets[tags] = ([" ".join(unique)], [term for term in terms if term])
        return found

    def person(self, person_id: str, name: str | None) -> tuple[str, str, tuple[str, ...]]:
        """(facet term, display name, suggest terms): "ana silva" is suggested for "an" and for "sil"."""
        if len(self.people) >= self.LIMIT:
            self.people.clear()
        clean = _clean(name or "")
        words = clean.casefold().split()
        suggest = tuple(f"{self.owner}{SEP}p{SEP}{' '.join(words[i:])}{SEP}{person_id}{SEP}{clean}"
                        for i in range(len(words)))
        found = self.people[(person_id, name)] = (f"{person_id}{SEP}{clean}", clean, suggest)
        return found

    def place(self, ident: tuple) -> tuple[list[str], list[str], tuple[str, ...], list[str]]:
        """(text value, keyword terms, suggest terms, city facet) for (city, region, country, code)."""
        if len(self.places) >= self.LIMIT:
            self.places.clear()
        city, region, country, code = ident
        names = [_clean(n) for n in (city, region, country) if n]
        keywords = [n.casefold() for n in (*names, code or "") if n]
        suggest = tuple(f"{self.owner}{SEP}l{SEP}{n.casefold()}{SEP}{n}{SEP}" for n in names)
        found = self.places[ident] = ([" ".join(names)] if names else [], keywords, suggest,
                                      [_clean(city)] if city else [])
        return found


@functools.lru_cache(maxsize=4096)
def _owner_terms(owner: str) -> _OwnerTerms:
    return _OwnerTerms(owner)


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
    b.add_unsigned_field("key", indexed=True, fast=True)
    b.add_text_field("owner", tokenizer_name="raw", index_option="basic")
    b.add_text_field("photo_id", stored=True, tokenizer_name="raw", index_option="basic")
    b.add_integer_field("t", indexed=True, fast=True)
    b.add_integer_field("year", indexed=True, fast=True)
    b.add_float_field("recency", fast=True)
    b.add_unsigned_field("hidden", indexed=True)
    b.add_unsigned_field("sensitive", indexed=True)
    for name in ("tags_kw", "people_facet", "city_facet"):
        b.add_text_field(name, fast=True, tokenizer_name="raw", index_option="basic")
    for name in ("people_ids", "place_kw", "camera_kw", "suggest"):
        b.add_text_field(name, tokenizer_name="raw", index_option="basic")
    for name, _ in TEXT_FIELDS:
        b.add_text_field(name, stored=True, tokenizer_name="po_text", index_option="freq")
    return b.build()


class _no_gc:
    """Pauses the cyclic garbage collector for a write. A batch allocates a few lists and dicts per document, all
    freed by reference counting, yet they triggered collections that traversed every live object: half the Python
    time of building the documents at 1M photos (35 us per document instead of 14). From the first allocation of
    the write on: the caller's own garbage (a batch of documents just built) made the first tuples of a write
    trigger a full collection (~50 ms per 10k batch)."""

    def __enter__(self) -> None:
        self._was = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc) -> None:
        if self._was:
            gc.enable()


class _Background:
    """Runs steps one after the other on a thread. result(i) waits for step i and returns its value or re-raises
    its exception (or an earlier step's: later steps do not run after a failure); wait() only waits for all."""

    def __init__(self, *steps) -> None:
        self._results: list[Any] = []
        self._error: BaseException | None = None
        self._done = [threading.Event() for _ in steps]

        def run() -> None:
            try:
                for step, done in zip(steps, self._done, strict=True):
                    self._results.append(step())
                    done.set()
            except BaseException as e:  # noqa: BLE001 - handed to the caller by result()
                self._error = e
            finally:
                for done in self._done:
                    done.set()

        self._thread = threading.Thread(target=run, name="search-index-writer", daemon=True)
        self._thread.start()

    def result(self, step: int) -> Any:
        self._done[step].wait()
        if step >= len(self._results):
            assert self._error is not None
            raise self._error
        return self._results[step]

    def wait(self) -> None:
        self._thread.join()


class _KnownPhotos:
    """Hashes of the (owner, photo_id) pairs the ledger holds, live or tombstoned, so that a write asks the ledger
    only about photos that may be there: all of a re-index, almost none of a bulk load of new photos, where the
    lookups were ~1.7 s of a 1M build (10k index probes per batch). Python's hash is enough: this lives as long
    as the process. A false positive costs a lookup; there is no false negative as long as every pair written to
    the ledger is added. Sorted runs, merged into one from MERGE_FROM recent hashes on (a stable sort of sorted
    runs merges them in one pass)."""

    MERGE_FROM = 65_536

    def __init__(self, hashes: np.ndarray) -> None:
        self._runs = [np.sort(hashes)]
        self._recent = 0

    def may_hold(self, hashes: np.ndarray) -> np.ndarray:
        order = np.argsort(hashes)
        wanted = hashes[order]  # sorted lookups walk the runs in order: 2-3x faster than random ones
        found = np.zeros(len(hashes), bool)
        for run in self._runs:
            if len(run):
                at = np.minimum(np.searchsorted(run, wanted), len(run) - 1)
                found |= run[at] == wanted
        out = np.empty(len(hashes), bool)
        out[order] = found
        return out

    def add(self, hashes: np.ndarray) -> None:
        if len(hashes):
            self._runs.append(np.sort(hashes))
            self._recent += len(hashes)
        if self._recent >= self.MERGE_FROM:
            self._runs = [np.sort(np.concatenate(self._runs), kind="stable")]
            self._recent = 0


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
    term_filters: bool = False  # tags/people/place/camera: filters the vector store cannot pre-check
    lower: int | None = None  # sort-time range, micros, [lower, upper)
    upper: int | None = None


class LocalSearchIndex:
    def __init__(
        self,
        directory: Path | str,
        *,
        dimensions: int = EMBEDDING_DIMENSIONS,
        min_similarity: float = 0.2,
        writer_heap_bytes: int = 256_000_000,
        vector_file_dead_share: float = 0.25,
        vector_file_min_dead: int = 4096,
    ) -> None:
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._dims = dimensions
        self._min_similarity = min_similarity
        self._heap = writer_heap_bytes
        self._file_dead_share = vector_file_dead_share
        self._file_min_dead = vector_file_min_dead
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self._dir / "ledger.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # 64 MB of page cache rather than 2: a bulk batch inserts at every owner's end of the (owner, photo_id)
        # index, and at 1M photos the ledger writes were ~0.3 s per 10k batch, mostly page reads
        self._db.execute("PRAGMA cache_size=-65536")
        # checkpoints every 64 MB of WAL rather than 4: a bulk batch rewrites the same index pages (each owner's
        # end) batch after batch, and checkpointing them each time was ~5 s of the ledger commits at 1M photos
        self._db.execute("PRAGMA wal_autocheckpoint=16384")
        self._db.execute("PRAGMA journal_size_limit=67108864")
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
        self._vector_file: VectorFile | None = None
        self._live_vrows = 0  # rows of the vectors file the ledger names; the rest are dead
        self._data_version = 0
        self._known: _KnownPhotos | None = None  # built on the first write
        self._vectors = OwnerVectors(dimensions)
        self._load_vectors()

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.wait_merging_threads()
                self._writer = None
            self._db.close()
            self._vector_file.close()

    # ---- writes -----------------------------------------------------------------------------------------

    def upsert(self, documents: list[SearchDocument], *, embeddings: np.ndarray | None = None) -> list[str]:
        """`embeddings` (optional, shape (len(documents), dims)) overrides each document's `embedding`, so bulk
        loads need not build tuples of Python floats."""
        with _no_gc():
            return self._upsert(documents, embeddings)

    def _upsert(self, documents: list[SearchDocument], embeddings: np.ndarray | None) -> list[str]:
        if embeddings is not None and embeddings.shape != (len(documents), self._dims):
            raise ValidationError(f"embeddings must have shape ({len(documents)}, {self._dims})")
        idents = [(doc.owner, doc.photo_id) for doc in documents]
        for owner in {owner for owner, _ in idents}:
            self._check_owner(owner)
        newest = dict(zip(idents, range(len(documents)), strict=True))
        if len(newest) == len(documents):
            order = list(range(len(documents)))
        else:  # the same photo more than once: the first of its greatest version wins
            newest = {}
            for i, (ident, doc) in enumerate(zip(idents, documents, strict=True)):
                j = newest.get(ident)
                if j is None or doc.version > documents[j].version:
                    newest[ident] = i
            order = sorted(newest.values())
        matrix, usable = self._units(documents, order, embeddings)
        written: list[str] = []
        with self._lock:
            writer = self._take_writer()
            background: _Background | None = None
            new_keys_from = self._next_key
            committed = False
            try:
                self._db.execute("BEGIN IMMEDIATE")
                existing = self._existing(list(newest))
                first = self._vector_file.rows
                next_vrow = first
                chosen: list[SearchDocument] = []
                picked: list[int] = []  # positions in `order` that are written
                rows: list[tuple] = []  # ledger rows; also the columns of the vectors and the tantivy documents
                replaced: list[int] = []  # keys whose tantivy document goes
                superseded = 0  # vector rows of replaced documents: dead rows in the file from now on
                for j, (i, has_vector) in enumerate(zip(order, usable.tolist(), strict=True)):
                    doc = documents[i]
                    found = existing.get(idents[i])
                    if found is None:
                        key = self._next_key
                        self._next_key += 1
                    elif doc.version <= found[1]:
                        continue
                    else:
                        key = found[0]
                        replaced.append(key)
                        superseded += found[3]
                    place = doc.place
                    if place is None or place.lat is None or place.lon is None:
                        lat = lon = None
                    else:
                        lat, lon = place.lat, place.lon
                    rows.append((key, doc.owner, doc.photo_id, doc.version, _micros(doc.taken_at or doc.uploaded_at),
                                 (HIDDEN if doc.hidden else 0) | (SENSITIVE if doc.sensitive else 0), lat, lon,
                                 next_vrow if has_vector else None))
                    next_vrow += has_vector
                    chosen.append(doc)
                    picked.append(j)
                n = len(picked)
                picked_at = np.array(picked, np.int64)
                has_vector = usable[picked_at] if n else np.empty(0, bool)
                # whole-batch views rather than copies in the common case (every document new and with an
                # embedding): each copy is ~15 MB per 10k batch
                vectors = matrix if n == len(order) else matrix[picked_at]
                all_vectors = bool(has_vector.all())
                keys, _, _, _, ts, flags, lats, lons, _ = zip(*rows, strict=True) if rows else ((),) * 9
                cols = {"key": np.array(keys, np.int64), "t": np.array(ts, np.int64), "flags": np.array(flags, np.uint8),
                        "has_vector": has_vector, "lat": np.array(lats, np.float64),  # None -> NaN
                        "lon": np.array(lons, np.float64)}
                # A helper thread appends the embeddings to their file and writes the ledger rows while this one
                # builds the tantivy documents (file writes and SQLite steps release the GIL: ~9 s of a ~70 s
                # build at 1M photos), then stages the vectors (copies, and the compaction when one is due) while
                # tantivy commits. Nothing is committed until the ledger rows are written, in the usual order, and
                # the staged vectors are published only after both commits.
                background = _Background(
                    functools.partial(self._write_ledger, vectors if all_vectors else vectors[has_vector], first, rows),
                    functools.partial(self._vectors.stage, [d.owner for d in chosen], cols,
                                      vectors if all_vectors else np.where(has_vector[:, None], vectors, np.float32(0))),
                )
                for key in replaced:
                    writer.delete_documents_by_query(Query.term_query(self._schema, "key", key))
                # from_dict without the schema: every value of _fields already has its field's Python type (str,
                # int for the i64 fields, float), and converting through the schema was ~30% of from_dict. The
                # unsigned fields go in typed; hidden and sensitive only when set, as queries only exclude the 1s.
                fields, from_dict, add = self._fields, tantivy.Document.from_dict, writer.add_document
                for doc, key, t, flag in zip(chosen, keys, ts, flags, strict=True):
                    document = from_dict(fields(doc, t))
                    document.add_unsigned("key", key)
                    if flag:
                        if flag & HIDDEN:
                            document.add_unsigned("hidden", 1)
                        if flag & SENSITIVE:
                            document.add_unsigned("sensitive", 1)
                    add(document)
                    written.append(doc.photo_id)
                background.result(0)
                if rows:
                    writer.commit()
                    committed = True
                self._db.execute("COMMIT")
            except BaseException as e:
                if background is not None:
                    background.wait()
                self._abort(writer)
                if committed:  # tantivy holds documents of new photos the ledger never recorded: they go
                    self._forget_keys_from(new_keys_from)
                if isinstance(e, (sqlite3.Error, ValueError, OSError)):
                    raise StorageUnavailableError(f"local search index write failed: {e}") from e
                raise
            if rows:
                self._index.reload()
                self._live_vrows += next_vrow - first - superseded
                self._publish_vectors(background)
                self._compact_vector_file_if_due()
        return written

    def _write_ledger(self, vectors: np.ndarray, first: int, rows: list[tuple]) -> None:
        if self._vector_file.append(vectors) != first:
            raise OSError(f"{self._vector_file.path.name} changed under the writer")
        self._db.executemany(
            "INSERT INTO docs (key, owner, photo_id, version, deleted, t, flags, lat, lon, vrow)"
            " VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET version = excluded.version,"
            " deleted = 0, t = excluded.t, flags = excluded.flags, lat = excluded.lat, lon = excluded.lon,"
            " vrow = excluded.vrow",
            rows,
        )

    def _publish_vectors(self, background: _Background) -> None:
        try:
            staged = background.result(1)
        except Exception:  # noqa: BLE001 - the write is committed: the ledger and the file hold the truth
            self._load_vectors()  # (also recounts the live vector rows)
            return
        self._vectors.publish(staged)

    def _existing(self, idents: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, int, int, int]]:
        """(key, version, deleted, has a vector row) per (owner, photo_id) the ledger holds. In the write
        transaction: the pairs it does not hold are about to be written, so they count as known from now on."""
        if self._known is None:
            self._known = _KnownPhotos(np.fromiter(
                (hash(ident) for ident in self._db.execute("SELECT owner, photo_id FROM docs")), np.int64))
        hashes = np.fromiter((hash(ident) for ident in idents), np.int64, len(idents))
        maybe = self._known.may_hold(hashes)
        self._known.add(hashes[~maybe])
        found: dict[tuple[str, str], tuple[int, int, int, int]] = {}
        by_owner: dict[str, list[str]] = {}
        for i in np.flatnonzero(maybe).tolist():
            owner, pid = idents[i]
            by_owner.setdefault(owner, []).append(pid)
        for owner, photo_ids in by_owner.items():
            for start in range(0, len(photo_ids), 500):
                chunk = photo_ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for pid, *values in self._db.execute(
                    "SELECT photo_id, key, version, deleted, vrow IS NOT NULL FROM docs"
                    f" WHERE owner = ? AND photo_id IN ({marks})",
                    (owner, *chunk),
                ):
                    found[(owner, pid)] = tuple(values)
        return found

    def _units(self, documents, order: list[int], embeddings: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(unit vectors, usable) for documents[order]; the rows of unusable ones (none, zero, not finite) hold
        anything. The result is a new array: the caller's embeddings are never written."""
        if embeddings is not None:
            source = np.asarray(embeddings, dtype=np.float32)
            if len(order) != len(source):
                source = source[order]
        else:
            source = np.zeros((len(order), self._dims), np.float32)
            for row, i in enumerate(order):
                if documents[i].embedding is not None:
                    if len(documents[i].embedding) != self._dims:
                        raise ValidationError(f"embedding must have {self._dims} dimensions")
                    source[row] = documents[i].embedding
        with np.errstate(all="ignore"):
            norms = np.sqrt(np.einsum("ij,ij->i", source, source))  # no squared temporary of the batch
            usable = np.isfinite(norms) & (norms > 0)
            return np.divide(source, norms[:, None]), usable  # one pass: the copy is the division

    def delete(self, owner: str, photo_id: str, *, version: int) -> None:
        self._check_owner(owner)
        with self._lock:
            writer = self._take_writer()
            try:
                self._db.execute("BEGIN IMMEDIATE")
                existing = self._db.execute(
                    "SELECT key, version, deleted, vrow IS NOT NULL FROM docs WHERE owner = ? AND photo_id = ?",
                    (owner, photo_id),
                ).fetchone()
                if existing is None:
                    self._db.execute(
                        "INSERT INTO docs (key, owner, photo_id, version, deleted) VALUES (?, ?, ?, ?, 1)",
                        (self._next_key, owner, photo_id, version),
                    )
                    self._next_key += 1
                    if self._known is not None:
                        self._known.add(np.array([hash((owner, photo_id))], np.int64))
                elif version >= existing[1]:
                    key, _, deleted, had_vector = existing
                    self._db.execute(
                        "UPDATE docs SET version = ?, deleted = 1, t = NULL, flags = NULL, lat = NULL, lon = NULL,"
                        " vrow = NULL WHERE key = ?",
                        (version, key),
                    )
                    if not deleted:
                        writer.delete_documents_by_query(Query.term_query(self._schema, "key", key))
                        writer.commit()
                        self._db.execute("COMMIT")
                        self._index.reload()
                        self._vectors.apply([], {}, np.empty((0, self._dims), np.float32), [(owner, key)])
                        self._live_vrows -= had_vector
                        self._compact_vector_file_if_due()
                        return
                self._db.execute("COMMIT")
            except (sqlite3.Error, ValueError, OSError) as e:
                self._abort(writer)
                raise StorageUnavailableError(f"local search index delete failed: {e}") from e

    def compact(self) -> None:
        """Merges the vector delta into the owner-sorted matrix (also happens on its own as the delta grows), and
        rewrites the embeddings file without its dead rows when they are more than `vector_file_dead_share` of it
        (also checked after every write, once there are `vector_file_min_dead` of them)."""
        with self._lock:
            self._vectors.compact()
            self._compact_vector_file_if_due(explicit=True)

    @property
    def vector_file_rows(self) -> tuple[int, int]:
        """(rows in the embeddings file, rows of them still in use)."""
        return self._vector_file.rows, self._live_vrows

    def _compact_vector_file_if_due(self, *, explicit: bool = False) -> None:
        rows = self._vector_file.rows
        dead = rows - self._live_vrows
        if dead >= (1 if explicit else self._file_min_dead) and dead > self._file_dead_share * rows:
            self._compact_vector_file()

    def _compact_vector_file(self) -> None:
        """Rewrites the embeddings file with only the rows the ledger still names, owner by owner, into a new file
        (the next generation) that one ledger commit switches to: rows and file name change in the same
        transaction. A crash or an error before that commit leaves the old file named and untouched (the new one
        is an orphan, removed by the next compaction); after it, the new file is complete and synced. The old file
        goes once nothing names it. In-memory vectors do not change: only their rows in the file do."""
        self._take_writer()  # the writer lock: no other process appends or compacts meanwhile
        old = self._vector_file
        for stray in self._dir.glob("vectors*.f32"):  # orphans of earlier crashes
            if stray.name != old.path.name:
                stray.unlink(missing_ok=True)
        path = self._dir / f"vectors.{_generation(old.path.name) + 1}.f32"
        live_rows = "deleted = 0 AND vrow IS NOT NULL AND vrow < ?"
        new: VectorFile | None = None
        try:
            self._db.execute("BEGIN IMMEDIATE")
            live = np.array(
                [vrow for (vrow,) in self._db.execute(
                    f"SELECT vrow FROM docs WHERE {live_rows} ORDER BY owner, key", (old.rows,))],
                np.int64,
            )
            new = old.rewrite(live, path)
            self._db.execute("UPDATE docs SET vrow = NULL WHERE vrow >= ?", (old.rows,))  # rows a crash lost
            self._db.execute(
                "UPDATE docs SET vrow = m.r FROM (SELECT key, row_number() OVER (ORDER BY owner, key) - 1 AS r"
                f" FROM docs WHERE {live_rows}) AS m WHERE docs.key = m.key",
                (old.rows,),
            )
            self._db.execute("INSERT INTO meta VALUES ('vectors', ?) ON CONFLICT (name) DO UPDATE"
                             " SET value = excluded.value", (path.name,))
            self._db.execute("COMMIT")
        except BaseException as e:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            if new is not None:
                new.close()
            path.unlink(missing_ok=True)
            if isinstance(e, (sqlite3.Error, OSError)):
                raise StorageUnavailableError(f"local search index compaction failed: {e}") from e
            raise
        self._vector_file = new
        self._live_vrows = len(live)
        old.close()
        old.path.unlink(missing_ok=True)
        sync_directory(self._dir)

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
            page, total = self._ranked(searcher, plan.keyword, by_time=by_time, after=after, limit=query.limit)
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
            must.append(Query.term_query(s, "tags_kw", f"{query.owner}{SEP}{_kw(tag)}"))
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
        term_filters = len(must) > 1
        lower = upper = None
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
        return _Plan(owner_q, filtered, keyword, tokens, reasons, term_filters, lower, upper)

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

    def _ranked(self, searcher, q: Query, *, by_time: bool, after: tuple | None,
                limit: int) -> tuple[list[_Candidate], int]:
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
                cands = [_Candidate(t=value, addr=addr) for value, addr in hits[:complete]]
            else:
                times = searcher.fast_field_values("t", addrs) if addrs else []
                cands = [_Candidate(t=t, addr=a, score=v) for (v, a), t in zip(hits[:complete], times, strict=True)]
            ordered = self._order(searcher, cands, lambda c: (-c.score, -c.t))
            if after is not None:
                head = (0.0, after[0]) if by_time else (after[0], after[1])
                ordered = [c for c in ordered if self._is_after(searcher, c, (-head[0], -head[1]), after[-1])]
            if len(ordered) >= limit or exhausted:
                return ordered[:limit], total
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
            keyword, total = self._ranked(searcher, plan.keyword, by_time=False, after=None, limit=HYBRID_WINDOW)
            self._resolve_keys(searcher, keyword)
        vector = self._vector_ranked(searcher, plan, query)
        by_key: dict[int, _Candidate] = {}
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

    def _vector_ranked(self, searcher, plan: _Plan, query: SearchQuery) -> list[_Candidate]:
        """The owner's rows by exact cosine, best first (key breaks ties), that pass every filter of the query, up
        to the window. Dates, visibility and distance are numpy masks over the owner's slice, so the candidates
        checked against tantivy (which also yields their addresses) nearly all pass: one round, usually."""
        vector = self._unit(query.embedding)
        if vector is None:
            return []
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
        # einsum, not BLAS gemv: OpenBLAS threads spin against tantivy's on small hosts (18 ms vs 2 ms here)
        sims = np.einsum("ij,j->i", rows.vectors, vector)
        mask &= sims >= self._min_similarity
        index = np.flatnonzero(mask)
        keys, sims = rows.keys[index], sims[index]
        out: list[_Candidate] = []
        taken = 0
        while len(out) < HYBRID_WINDOW and taken < len(keys):
            want = min(len(keys), taken + (2 if plan.term_filters else 1) * (HYBRID_WINDOW - len(out)))
            chunk = self._next_best(keys, sims, taken, want)
            taken += len(chunk)
            # visibility again even when numpy checked it: the vector state and this searcher may be one write
            # apart, and a photo that just became hidden must not slip through on stale flags
            check = Query.term_set_query(self._schema, "key", chunk.tolist())
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
                    out.append(_Candidate(t=t, addr=addr, key=key))
        return out[:HYBRID_WINDOW]

    @staticmethod
    def _next_best(keys: np.ndarray, sims: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Keys ranked [start, stop) by (similarity desc, key asc), without sorting all of them. Deterministic
        because it selects by value: everything strictly better than rank `stop`'s value, plus ties by key."""
        if stop >= len(keys):
            order = np.lexsort((keys, -sims))
            return keys[order[start:stop]]
        kth = np.partition(-sims, stop - 1)[stop - 1]  # -(similarity at rank stop)
        pick = np.flatnonzero(-sims <= kth)
        order = pick[np.lexsort((keys[pick], -sims[pick]))]
        return keys[order[start:stop]]

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
                elif name == "tags":
                    values.append(FacetValue(value=str(key).partition(SEP)[2], count=count))
                else:
                    values.append(FacetValue(value=str(key), count=count))
            if name == "years":
                values.sort(key=lambda f: f.value, reverse=True)
            else:
                values.sort(key=lambda f: (-f.count, f.value))
            out[name] = tuple(values)
        return out

    # ---- documents --------------------------------------------------------------------------------------

    def _fields(self, doc: SearchDocument, t: int) -> dict[str, list]:
        """The document's values but the unsigned ones (key, hidden, sensitive), each of its field's Python type."""
        owner = doc.owner
        f: dict[str, list] = {
            "owner": [owner], "photo_id": [doc.photo_id], "t": [t], "year": [(doc.taken_at or doc.uploaded_at).year],
            "recency": [RECENCY_SPREAD * min(1.0, max(0.0, t / _CENTURY_MICROS))],
        }
        # Text fields get one value each, the values joined by a space: they index term frequencies, not positions,
        # so a document's values score exactly as one text (same frequencies, same field length), and build time is
        # mostly per-value work (conversion, then indexing). Keyword fields keep one value per term.
        suggest: list[str] = []
        terms = _owner_terms(owner)
        tags = doc.tags
        if tags:
            # owner-prefixed keywords: the same terms filter, facet and suggest (a separate suggest term per tag
            # cost ~6 of the ~42 values per document)
            f["tags"], f["tags_kw"] = terms.tag_sets.get(tags) or terms.tag_set(tags)
        if doc.people:
            known_people = terms.people
            f["people_ids"] = [p.person_id for p in doc.people]
            people = [known_people.get((p.person_id, p.name)) or terms.person(p.person_id, p.name)
                      for p in doc.people]
            f["people_facet"] = [facet for facet, _, _ in people]
            names = " ".join(name for _, name, _ in people if name)
            if names:
                f["people"] = [names]
            for _, _, person_suggest in people:
                suggest.extend(person_suggest)
        place = doc.place
        if place:
            ident = (place.city, place.region, place.country, place.country_code)
            text, place_kw, place_suggest, city = terms.places.get(ident) or terms.place(ident)
            if text:
                f["place"] = text
                suggest.extend(place_suggest)
            if place_kw:
                f["place_kw"] = place_kw
            if city:
                f["city_facet"] = city
        for name in ("ocr_text", "caption", "filename"):
            value = getattr(doc, name)
            if value:
                f[name] = [value]
        if doc.camera:
            f["camera"] = [doc.camera]
            f["camera_kw"] = [_kw(doc.camera)]
        if suggest:
            f["suggest"] = list(dict.fromkeys(suggest)) if len(suggest) > 1 else suggest
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
                writer = self._index.writer(heap_size=self._heap)
            except ValueError as e:  # another process holds the writer lock
                raise StorageUnavailableError(f"local search index is locked: {e}") from e
            self._writer = writer
            self._catch_up(writer)
        return self._writer

    def _forget_keys_from(self, first: int) -> None:
        """Deletes the tantivy documents with keys >= first (the ledger has none), best effort."""
        try:
            writer = self._take_writer()
            writer.delete_documents_by_query(Query.range_query(self._schema, "key", FieldType.Unsigned, first, None))
            writer.commit()
            self._index.reload()
        except (ValueError, StorageUnavailableError):
            pass  # the next process that takes the writer deletes them (_catch_up)

    def _catch_up(self, writer: tantivy.IndexWriter) -> None:
        """Once this process holds the writer lock. Another process may have written (or compacted the vectors
        file) since this one loaded: what is kept in memory is loaded again. And a crash between a tantivy commit
        and the ledger commit leaves tantivy documents under keys the ledger never recorded, which the next new
        photos would get again (two documents, one key): they go."""
        if self._db.execute("PRAGMA data_version").fetchone()[0] != self._data_version:
            self._next_key = (self._db.execute("SELECT MAX(key) FROM docs").fetchone()[0] or 0) + 1
            self._known = None
            self._load_vectors()
        self._index.reload()
        orphans = Query.range_query(self._schema, "key", FieldType.Unsigned, self._next_key, None)
        if self._index.searcher().search(orphans, 1, count=True).count:
            self._forget_keys_from(self._next_key)

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
        """The ledger's live rows and their embeddings, from the vectors file the ledger names. A compaction in
        another process may retire that file between reading its name and opening it: then read again."""
        for _ in range(10):
            owners: list[str] = []
            columns: list[list] = [[] for _ in range(6)]  # key, t, flags, lat, lon, vrow
            self._db.execute("BEGIN")  # one snapshot for the name and the rows
            try:
                name = self._vectors_name()
                for owner, *values in self._db.execute(
                    "SELECT owner, key, t, flags, lat, lon, vrow FROM docs WHERE deleted = 0"
                ):
                    owners.append(owner)
                    for column, value in zip(columns, values, strict=True):
                        column.append(value)
                self._data_version = self._db.execute("PRAGMA data_version").fetchone()[0]
            finally:
                self._db.execute("COMMIT")
            try:
                vector_file = VectorFile(self._dir / name, self._dims, create=name == VECTORS_FILE)
            except FileNotFoundError:
                continue
            break
        else:
            raise StorageUnavailableError("the local search index's vectors file keeps being replaced")
        if self._vector_file is not None:
            self._vector_file.close()
        self._vector_file = vector_file
        keys, ts, flags, lats, lons, vrows = columns
        n = len(owners)
        vrow = np.array([-1 if v is None else v for v in vrows], np.int64).reshape(n)
        vectors = vector_file.read(vrow)
        has_vector = (vrow >= 0) & (vrow < vector_file.rows)
        self._live_vrows = int(has_vector.sum())
        cols = {
            "key": np.array(keys, np.int64).reshape(n),
            "t": np.array([0 if v is None else v for v in ts], np.int64).reshape(n),
            "flags": np.array([0 if v is None else v for v in flags], np.uint8).reshape(n),
            "has_vector": has_vector,
            "lat": np.array([math.nan if v is None else v for v in lats], np.float64).reshape(n),
            "lon": np.array([math.nan if v is None else v for v in lons], np.float64).reshape(n),
        }
        self._vectors.load(owners, cols, vectors)

    def _vectors_name(self) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE name = 'vectors'").fetchone()
        return VECTORS_FILE if row is None else row[0]

    @property
    def vector_bytes(self) -> int:
        return self._vectors.nbytes
