"""The local search index's writes: upserts and deletes under the writer lock (tantivy commit, then the ledger
commit), the embeddings file and its compaction, and catching up with another process's writes. See
search_index."""

from __future__ import annotations

import gc
import math
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import tantivy
from tantivy import FieldType, Query

from photo_organizer.adapters.local.vector_slices import (
    HIDDEN,
    SENSITIVE,
    VectorFile,
    quantise,
    sync_directory,
)
from photo_organizer.adapters.local.search_ledger import generation_of
from photo_organizer.adapters.local.search_schema import check_owner, document_fields, micros
from photo_organizer.errors import StorageUnavailableError, ValidationError
from photo_organizer.search.models import SearchDocument

class no_gc:
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


class Background:
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


class SearchWrites:
    """upsert, delete and compact of LocalSearchIndex."""

    def upsert(self, documents: list[SearchDocument], *, embeddings: np.ndarray | None = None) -> list[str]:
        """`embeddings` (optional, shape (len(documents), dims)) overrides each document's `embedding`, so bulk
        loads need not build tuples of Python floats."""
        return self.upsert_many([(documents, embeddings)])

    def upsert_many(self, batches: Iterable[tuple[list[SearchDocument], np.ndarray | None]]) -> list[str]:
        """Bulk load: the batches (documents, embeddings or None, as `upsert` takes them) written as one write,
        in order: one tantivy commit and one ledger commit at the end. Acknowledged when it returns (durable
        then, as one upsert's write); an error, or a crash before that, leaves none of the batches behind. A later
        batch sees the earlier ones as written (a photo again with a version not newer is skipped). The batches
        are read under the writer lock: producing them must not write to this index.

        Why: each upsert commits, and tantivy's commit makes a segment that its merge policy merges again and
        again (10k photos a batch, 1M photos: 9 segments left and 117 s of CPU for the build, 74 s as one write,
        which leaves 2 segments; benchmarks/search.py --build-only [--upserts]), and each commit waits for the
        indexing thread. Here tantivy makes segments only as its writer heap fills, and indexes while the next
        batch is built."""
        written: list[str] = []
        with self._lock:
            writer = self._take_writer()
            background = previous = None
            new_keys_from = self._next_key
            first = self._vector_file.rows
            wrote = committed = published = False
            superseded = 0  # vector rows of replaced documents: dead rows in the file from now on
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for documents, embeddings in batches:
                    previous, published = background, background is not None
                    with no_gc():
                        ids, background, replaced = self._write_batch(writer, documents, embeddings, previous)
                    written.extend(ids)
                    wrote |= bool(ids)
                    superseded += replaced
                if wrote:
                    writer.commit()
                    committed = True
                self._db.execute("COMMIT")
            except BaseException as e:
                for helper in (background, previous):
                    if helper is not None:
                        helper.wait()
                self._abort(writer)
                if committed:  # tantivy holds documents of new photos the ledger never recorded: they go
                    self._forget_keys_from(new_keys_from)
                if published:  # the in-memory vectors hold rows the ledger never recorded
                    self._load_vectors()
                if isinstance(e, (sqlite3.Error, ValueError, OSError)):
                    raise StorageUnavailableError(f"local search index write failed: {e}") from e
                raise
            if wrote:
                self._index.reload()
                self._live_vrows += self._vector_file.rows - first - superseded
                self._publish_vectors(background)
                self._compact_vector_file_if_due()
        return written

    def _write_batch(self, writer: tantivy.IndexWriter, documents: list[SearchDocument],
                     embeddings: np.ndarray | None, previous: Background | None) -> tuple[list[str], Background, int]:
        """One batch of a write, in its open ledger transaction: tantivy documents added (not committed), ledger
        rows and embeddings written on a helper thread (waited for), vectors staged there (not published), after
        publishing the `previous` batch's. Returns (photo ids written, the helper, vector rows superseded)."""
        if embeddings is not None and embeddings.shape != (len(documents), self._dims):
            raise ValidationError(f"embeddings must have shape ({len(documents)}, {self._dims})")
        idents = [(doc.owner, doc.photo_id) for doc in documents]
        for owner in {owner for owner, _ in idents}:
            check_owner(owner)
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
        existing = self._existing(list(newest))
        first = self._vector_file.rows
        next_vrow = first
        chosen: list[SearchDocument] = []
        picked: list[int] = []  # positions in `order` that are written
        rows: list[tuple] = []  # ledger rows; also the columns of the vectors and the tantivy documents
        replaced: list[int] = []  # keys whose tantivy document goes
        superseded = 0
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
            rows.append((key, doc.owner, doc.photo_id, doc.version, micros(doc.taken_at or doc.uploaded_at),
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
        stored = vectors if all_vectors else vectors[has_vector]
        keys, _, _, _, ts, flags, lats, lons, vrows = zip(*rows, strict=True) if rows else ((),) * 9
        cols = {"key": np.array(keys, np.int64), "t": np.array(ts, np.int64), "flags": np.array(flags, np.uint8),
                "has_vector": has_vector, "lat": np.array(lats, np.float64),  # None -> NaN
                "lon": np.array(lons, np.float64),
                "vrow": np.arange(first, first + len(stored), dtype=np.int64) if all_vectors
                else np.array([-1 if v is None else v for v in vrows], np.int64)}
        in_memory: list[np.ndarray] = []

        def write_ledger() -> None:
            quantised = quantise(stored)  # once, for the file and for memory (here, off the main thread)
            q, cols["scale"] = quantised
            if not all_vectors:
                q, cols["scale"] = np.zeros((n, self._dims), np.int8), np.zeros(n, np.float32)
                q[has_vector], cols["scale"][has_vector] = quantised
            in_memory.append(q)
            self._write_ledger(stored, quantised, first, rows)

        def stage() -> Any:
            if previous is not None:
                # A bulk write's earlier batch: its vectors are published first, so that this one stages after
                # them, here rather than on the thread building the documents (its staging and compactions made
                # that thread wait). Readers may see them before the commits: harmless, every vector candidate
                # is looked up in tantivy's snapshot.
                self._vectors.publish(previous.result(1))
            return self._vectors.stage([d.owner for d in chosen], cols, in_memory[0])

        # A helper thread appends the embeddings to their file and writes the ledger rows while this one
        # builds the tantivy documents (file writes and SQLite steps release the GIL: ~9 s of a ~70 s
        # build at 1M photos), then stages the vectors (copies, and the compaction when one is due) while
        # tantivy commits. Nothing is committed until the ledger rows are written, in the usual order, and
        # the staged vectors are published only after both commits (or, in a bulk write, before the next
        # batch stages).
        background = Background(write_ledger, stage)
        for key in replaced:
            writer.delete_documents_by_query(Query.term_query(self._schema, "key", key))
        # from_dict without the schema: every value of document_fields already has its field's Python type
        # (str, int for the i64 fields, float), and converting through the schema was ~30% of from_dict.
        # The unsigned fields go in typed; hidden and sensitive only when set, as queries only exclude 1s.
        fields, from_dict, add = document_fields, tantivy.Document.from_dict, writer.add_document
        # Added grouped by owner, so an owner's documents of one write sit next to each other in the
        # segment (one indexing thread keeps that order). Every query is owner AND words, and tantivy
        # walks a common word's postings window by window (4096 documents): interleaved owners put a big
        # owner in every window of the index, grouped ones let the other windows be skipped.
        owners = [doc.owner for doc in chosen]
        for j in sorted(range(len(chosen)), key=owners.__getitem__):
            doc, key, t, flag = chosen[j], keys[j], ts[j], flags[j]
            document = from_dict(fields(doc, t))
            document.add_unsigned("key", key)
            if flag:
                if flag & HIDDEN:
                    document.add_unsigned("hidden", 1)
                if flag & SENSITIVE:
                    document.add_unsigned("sensitive", 1)
            add(document)
        background.result(0)
        return [doc.photo_id for doc in chosen], background, superseded

    def _publish_vectors(self, background: Background) -> None:
        try:
            staged = background.result(1)
        except Exception:  # noqa: BLE001 - the write is committed: the ledger and the file hold the truth
            self._load_vectors()  # (also recounts the live vector rows)
            return
        self._vectors.publish(staged)

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
        check_owner(owner)
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
                        self._vectors.apply([], {}, np.empty((0, self._dims), np.int8), [(owner, key)])
                        self._live_vrows -= had_vector
                        self._compact_vector_file_if_due()
                        return
                self._db.execute("COMMIT")
            except (sqlite3.Error, ValueError, OSError) as e:
                self._abort(writer)
                raise StorageUnavailableError(f"local search index delete failed: {e}") from e

    def forget_owner(self, owner: str) -> int:
        """Account erasure: every document of the owner leaves the index (through delete, so the vectors go too),
        then the ledger's rows of the owner, tombstones included (locally nothing replays an older write: the
        services write in order). Returns how many documents were still live."""
        check_owner(owner)
        with self._lock:
            live = self._db.execute("SELECT photo_id, version FROM docs WHERE owner = ? AND deleted = 0",
                                    (owner,)).fetchall()
        for photo_id, version in live:
            self.delete(owner, photo_id, version=version)
        with self._lock:
            try:
                self._db.execute("DELETE FROM docs WHERE owner = ? AND deleted = 1", (owner,))
            except sqlite3.Error as e:
                raise StorageUnavailableError(f"local search index ledger cleanup failed: {e}") from e
        return len(live)

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
        for stray in [*self._dir.glob("vectors*.f32"), *self._dir.glob("vectors*.i8")]:  # orphans of crashes
            if stray.name not in (old.path.name, old.quantised_path.name):
                stray.unlink(missing_ok=True)
        path = self._dir / f"vectors.{generation_of(old.path.name) + 1}.f32"
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
            path.with_suffix(".i8").unlink(missing_ok=True)
            if isinstance(e, (sqlite3.Error, OSError)):
                raise StorageUnavailableError(f"local search index compaction failed: {e}") from e
            raise
        mapping = np.full(old.rows, -1, np.int64)
        mapping[live] = np.arange(len(live))
        self._vectors.renumber(mapping, new)  # before the old file closes: a reader still on it retries
        self._vector_file = new
        self._live_vrows = len(live)
        old.close()
        old.path.unlink(missing_ok=True)
        old.quantised_path.unlink(missing_ok=True)
        sync_directory(self._dir)

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

    def _take_writer(self) -> tantivy.IndexWriter:
        if self._writer is None:
            try:
                # One indexing thread: it keeps the order documents are added in (grouped by owner, above), and
                # two threads cost ~20% more CPU in tantivy at 100k (twice the segments per commit, so more
                # merging), while the documents are built on one Python thread anyway.
                writer = self._index.writer(heap_size=self._heap, num_threads=1)
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
