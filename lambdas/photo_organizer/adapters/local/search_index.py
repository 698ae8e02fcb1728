"""SearchIndex for the embedded local stack: tantivy for text, filters and facets, an owner-sorted int8 matrix
for vectors (vector_slices.py: candidates re-scored from float32), a small SQLite ledger for versions and
tombstones, and an append-only float32 file for the embeddings with its int8 copies beside it (vectors.i8; the
ledger keeps each photo's row in them, and the file's name).

Embeddings file: updates and deletes leave dead rows behind. Once they are more than `vector_file_dead_share` of
the file (checked after writes from `vector_file_min_dead` dead rows on, and by `compact()`), the live rows are
copied owner by owner into the next generation, vectors.<n>.f32 and .i8, synced, and one ledger transaction moves every
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

Layout: search_schema (tantivy schema, analyzers, owner-prefixed terms, a document's fields), search_ledger (the
SQLite ledger and what is loaded from it), search_reader (searches, suggestions, facets), search_writer
(upserts, bulk writes, deletes, the embeddings file); this module opens the index and holds its state.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from pathlib import Path

import tantivy

from photo_organizer.adapters.local.sqlite_access import SECURE_DELETE
from photo_organizer.adapters.local.search_ledger import LEDGER_SQL, SCHEMA_VERSION, KnownPhotos, SearchLedger
from photo_organizer.adapters.local.search_reader import SearchReads
from photo_organizer.adapters.local.search_schema import tantivy_schema, text_analyzer
from photo_organizer.adapters.local.search_writer import SearchWrites
from photo_organizer.adapters.local.vector_slices import OwnerVectors, VectorFile
from photo_organizer.errors import StorageUnavailableError
from photo_organizer.search.fusion import MEANING_FLOOR
from photo_organizer.search.models import EMBEDDING_DIMENSIONS


class LocalSearchIndex(SearchReads, SearchWrites, SearchLedger):
    """The SearchIndex port on tantivy, the ledger and the owner-sorted vectors; the reads, writes and ledger
    methods come from the mixins, which share the state opened here."""

    def __init__(
        self,
        directory: Path | str,
        *,
        dimensions: int = EMBEDDING_DIMENSIONS,
        min_similarity: float = MEANING_FLOOR,
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
        self._db.execute(SECURE_DELETE)  # a forgotten owner's rows are zeroed, not left in free space
        # 64 MB of page cache rather than 2: a bulk batch inserts at every owner's end of the (owner, photo_id)
        # index, and at 1M photos the ledger writes were ~0.3 s per 10k batch, mostly page reads
        self._db.execute("PRAGMA cache_size=-65536")
        # checkpoints every 64 MB of WAL rather than 4: a bulk batch rewrites the same index pages (each owner's
        # end) batch after batch, and checkpointing them each time was ~5 s of the ledger commits at 1M photos
        self._db.execute("PRAGMA wal_autocheckpoint=16384")
        self._db.execute("PRAGMA journal_size_limit=67108864")
        self._db.executescript(LEDGER_SQL)
        stored = self._db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        if stored is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(stored[0]) != SCHEMA_VERSION:
            raise StorageUnavailableError(f"search index schema {stored[0]} != {SCHEMA_VERSION}: rebuild the index")
        self._next_key = (self._db.execute("SELECT MAX(key) FROM docs").fetchone()[0] or 0) + 1
        self._schema = tantivy_schema()
        (self._dir / "tantivy").mkdir(exist_ok=True)
        self._index = tantivy.Index(self._schema, path=str(self._dir / "tantivy"), reuse=True)
        self._doc_analyzer = text_analyzer(stopwords=False)
        # a hit's explanation analyses each of its text values to name the query words they hold: ~0.2 ms a hit,
        # most of a 50-hit page (keyword p99 at 1M). Tag lists, places, people, captions and cameras repeat across
        # photos, so their analyses are kept (bounded: ~10 MB at most)
        self._tokens_of = functools.lru_cache(maxsize=16_384)(self._analysed)
        self._query_analyzer = text_analyzer(stopwords=True)
        self._index.register_tokenizer("po_text", self._doc_analyzer)
        self._index.config_reader("commit")
        self._writer: tantivy.IndexWriter | None = None  # taken on first write so readers in other processes work
        self._vector_file: VectorFile | None = None
        self._live_vrows = 0  # rows of the vectors file the ledger names; the rest are dead
        self._data_version = 0
        self._known: KnownPhotos | None = None  # built on the first write
        self._vectors = OwnerVectors(dimensions)
        self._load_vectors()

    def _analysed(self, value: str) -> frozenset[str]:
        return frozenset(self._doc_analyzer.analyze(value))

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.wait_merging_threads()
                self._writer = None
            self._db.close()
            self._vector_file.close()

    @property
    def vector_bytes(self) -> int:
        return self._vectors.nbytes
