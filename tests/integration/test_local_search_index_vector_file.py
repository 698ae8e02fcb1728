"""The local index's embeddings file: compaction of dead rows, crash safety around it, and writers that hand over.

Updates and deletes leave dead rows in the append-only vectors file; compaction rewrites the live ones into the
next generation and switches to it in one ledger commit. A bulk write (upsert_many) appends many batches under one
commit: all of it or nothing. Every test compares search results (keyword, by meaning, hybrid, near) before and
after, in this process and after a reopen, because the rows move while the vectors must not.
"""

from __future__ import annotations

import math
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from photo_organizer.adapters.local.search_ledger import KnownPhotos, generation_of
from photo_organizer.adapters.local.search_schema import tantivy_schema, text_analyzer
from photo_organizer.adapters.local.search_index import LocalSearchIndex
from photo_organizer.adapters.local.vector_slices import QUANTISED_HEADER, VectorFile
from photo_organizer.errors import StorageUnavailableError
from photo_organizer.search.models import (
    EMBEDDING_DIMENSIONS,
    GeoFilter,
    IndexedPlace,
    SearchDocument,
    SearchQuery,
)

A, B = "alice", "bob"
T0 = datetime(2023, 6, 1, 12, 0, tzinfo=timezone.utc)
PORTO = IndexedPlace(city="Porto", country="Portugal", country_code="PT", lat=41.15, lon=-8.61)
RNG_SEED = 5


def embedding(rng: np.random.Generator) -> tuple[float, ...]:
    v = rng.standard_normal(EMBEDDING_DIMENSIONS)
    return tuple((v / np.linalg.norm(v)).tolist())


def doc(owner: str, photo_id: str, rng: np.random.Generator, *, version: int = 1, days: float = 0,
        **fields) -> SearchDocument:
    fields.setdefault("embedding", embedding(rng))
    return SearchDocument(owner=owner, photo_id=photo_id, version=version, uploaded_at=T0 + timedelta(days=days),
                          taken_at=T0 + timedelta(days=days), **fields)


def library(index: LocalSearchIndex) -> np.random.Generator:
    """60 photos of two owners, then 25 re-embedded, 10 deleted and 5 updated without an embedding: 40 dead rows
    of 85."""
    rng = np.random.default_rng(RNG_SEED)
    tags = ("beach", "dog", "city")
    index.upsert([doc(owner, f"{owner}-{i:02d}", rng, days=i, tags=(tags[i % 3],),
                      place=PORTO if i % 4 == 0 else None)
                  for owner in (A, B) for i in range(30)])
    index.upsert([doc(owner, f"{owner}-{i:02d}", rng, version=2, days=i + 0.5, tags=(tags[(i + 1) % 3],),
                      place=PORTO if i % 4 == 1 else None)
                  for owner in (A, B) for i in range(0, 25, 2)][:25])
    for i in range(1, 20, 4):
        index.delete(A, f"{A}-{i:02d}", version=5)
        index.delete(B, f"{B}-{i:02d}", version=5)
    index.upsert([doc(A, f"{A}-{i:02d}", rng, version=3, days=i, embedding=None, tags=("plain",))
                  for i in range(22, 27)])
    return rng


def snapshot(index: LocalSearchIndex) -> list:
    """Every kind of result that depends on the vectors or on where their rows are."""
    rng = np.random.default_rng(99)
    out = []
    for owner in (A, B):
        for _ in range(3):
            q = embedding(rng)
            out.append([(h.photo_id, round(h.score, 9)) for h in index.search(
                SearchQuery(owner=owner, embedding=q, limit=100), facets=False).hits])
            out.append([h.photo_id for h in index.search(
                SearchQuery(owner=owner, text="beach", embedding=q, limit=100), facets=False).hits])
        for text in ("beach", "dog", "plain", ""):
            out.append([h.photo_id for h in index.search(SearchQuery(owner=owner, text=text, limit=100)).hits])
        out.append(sorted(h.photo_id for h in index.search(
            SearchQuery(owner=owner, near=GeoFilter(lat=41.1, lon=-8.6, km=20), limit=100)).hits))
        out.append(index.count(owner))
    return out


def vector_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("vectors*.f32"))


def named_file(directory: Path) -> str:
    with sqlite3.connect(directory / "ledger.sqlite3") as db:
        row = db.execute("SELECT value FROM meta WHERE name = 'vectors'").fetchone()
    return "vectors.f32" if row is None else row[0]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "search"


def open_index(folder: Path, **kwargs) -> LocalSearchIndex:
    kwargs.setdefault("vector_file_min_dead", 10**9)  # only explicit compactions, unless a test asks
    return LocalSearchIndex(folder, min_similarity=-1.0, **kwargs)


def test_compaction_after_updates_and_deletes_keeps_every_result_and_shrinks_the_file(folder):
    index = open_index(folder)
    rng = library(index)
    before = snapshot(index)
    rows, live = index.vector_file_rows
    assert (rows, live) == (85, 45)
    size = (folder / "vectors.f32").stat().st_size

    index.compact()

    assert index.vector_file_rows == (45, 45)
    assert vector_files(folder) == ["vectors.1.f32"] == [named_file(folder)]
    assert (folder / "vectors.1.f32").stat().st_size == size * 45 // 85
    assert snapshot(index) == before
    index.close()
    index = open_index(folder)
    assert snapshot(index) == before
    # writes go on in the new file; a compaction waits until the dead rows are worth it
    index.upsert([doc(A, "after", rng, days=100, tags=("beach",))])
    index.upsert([doc(A, "after", rng, version=2, days=100, tags=("beach",))])
    index.compact()
    assert vector_files(folder) == ["vectors.1.f32"] and index.vector_file_rows == (47, 46)
    live_b = [i for i in range(30) if i % 4 != 1 or i > 20][:20]
    index.upsert([doc(B, f"{B}-{i:02d}", rng, version=7, days=i, tags=("dog",)) for i in live_b])
    assert index.vector_file_rows == (67, 46)
    after = snapshot(index)
    index.compact()
    assert vector_files(folder) == ["vectors.2.f32"] and index.vector_file_rows == (46, 46)
    assert snapshot(index) == after
    index.close()
    assert snapshot(open_index(folder)) == after


def test_rows_are_owner_by_owner_in_the_compacted_file(folder):
    index = open_index(folder)
    library(index)
    index.compact()
    index.close()
    with sqlite3.connect(folder / "ledger.sqlite3") as db:
        rows = db.execute("SELECT owner, vrow FROM docs WHERE vrow IS NOT NULL ORDER BY vrow").fetchall()
    assert [vrow for _, vrow in rows] == list(range(45))
    assert [owner for owner, _ in rows] == sorted(owner for owner, _ in rows)


def test_a_failure_before_the_switch_leaves_the_old_file_named_and_working(folder, monkeypatch):
    index = open_index(folder)
    rng = library(index)
    before = snapshot(index)
    rewrite = VectorFile.rewrite

    def rewrite_then_fail(self, rows, path):
        rewrite(self, rows, path).close()  # the new file is complete: the process dies before the ledger names it
        raise OSError("power cut")

    monkeypatch.setattr(VectorFile, "rewrite", rewrite_then_fail)
    with pytest.raises(StorageUnavailableError):
        index.compact()
    monkeypatch.undo()

    assert vector_files(folder) == ["vectors.f32"] == [named_file(folder)]
    assert index.vector_file_rows == (85, 45)
    assert snapshot(index) == before
    index.upsert([doc(B, "b-new", rng, days=3, tags=("dog",))])
    expected = snapshot(index)
    index.close()
    index = open_index(folder)
    assert snapshot(index) == expected


def test_a_crash_that_leaves_a_half_written_new_file_loses_nothing(folder):
    index = open_index(folder)
    library(index)
    before = snapshot(index)
    index.close()
    (folder / "vectors.1.f32").write_bytes(b"\x00" * 1000)  # what a crash during the copy leaves

    index = open_index(folder)
    assert snapshot(index) == before
    index.compact()  # the orphan is replaced, not trusted
    assert vector_files(folder) == ["vectors.1.f32"] and index.vector_file_rows == (45, 45)
    assert snapshot(index) == before
    index.close()
    assert snapshot(open_index(folder)) == before


def test_a_crash_after_the_switch_keeps_the_new_file_and_drops_the_old_one_later(folder):
    index = open_index(folder)
    rng = library(index)
    old = (folder / "vectors.f32").read_bytes()
    index.compact()
    before = snapshot(index)
    index.close()
    (folder / "vectors.f32").write_bytes(old)  # the old file outlived a crash right after the ledger commit

    index = open_index(folder, vector_file_dead_share=0.0)
    assert snapshot(index) == before
    index.upsert([doc(A, f"{A}-00", rng, version=9, tags=("beach",))])
    index.compact()
    assert vector_files(folder) == ["vectors.2.f32"] and index.vector_file_rows == (45, 45)


def test_writes_compact_the_file_on_their_own_once_dead_rows_pass_the_share(folder):
    index = open_index(folder, vector_file_min_dead=1, vector_file_dead_share=0.25)
    rng = np.random.default_rng(1)
    index.upsert([doc(A, f"p{i}", rng, days=i) for i in range(8)])
    index.upsert([doc(A, f"p{i}", rng, version=2, days=i) for i in range(2)])
    assert index.vector_file_rows == (10, 8)  # 20% dead: not yet
    index.upsert([doc(A, "p2", rng, version=2, days=2)])
    assert index.vector_file_rows == (8, 8)  # 3 of 11 dead passed 25%: rewritten by the write itself
    assert vector_files(folder) == ["vectors.1.f32"]
    index.delete(A, "p3", version=2)
    index.delete(A, "p4", version=2)
    assert index.vector_file_rows == (8, 6)
    index.delete(A, "p5", version=2)
    assert index.vector_file_rows == (5, 5)
    assert "p3" not in [h.photo_id for h in index.search(SearchQuery(owner=A, embedding=embedding(rng))).hits]
    index.close()
    index = open_index(folder)
    assert index.vector_file_rows == (5, 5)
    assert sorted(h.photo_id for h in index.search(SearchQuery(owner=A, limit=50)).hits) == [
        "p0", "p1", "p2", "p6", "p7"]


def test_a_writer_that_takes_over_from_another_sees_its_photos_and_never_reuses_their_keys(folder):
    rng = np.random.default_rng(3)
    first = open_index(folder)
    second = open_index(folder)  # opened before the first one writes: stale until it writes itself
    first.upsert([doc(A, f"first-{i}", rng, days=i, tags=("beach",)) for i in range(5)])
    first.upsert([doc(A, f"first-{i}", rng, version=2, days=i, tags=("beach",)) for i in range(3)])
    first.compact()  # the file generation changes under the second one
    assert vector_files(folder) == ["vectors.1.f32"]
    first.close()

    second.upsert([doc(A, f"second-{i}", rng, days=10 + i, tags=("beach",)) for i in range(3)])
    found = second.search(SearchQuery(owner=A, text="beach", limit=50)).hits
    assert sorted(h.photo_id for h in found) == sorted([f"first-{i}" for i in range(5)] +
                                                       [f"second-{i}" for i in range(3)])
    by_meaning = second.search(SearchQuery(owner=A, embedding=embedding(rng), limit=50), facets=False).hits
    assert len(by_meaning) == 8 and all(math.isfinite(h.score) for h in by_meaning)
    expected = snapshot(second)
    second.close()
    assert snapshot(open_index(folder)) == expected


def test_documents_left_by_a_crash_between_the_two_commits_do_not_come_back_twice(folder, monkeypatch):
    rng = np.random.default_rng(4)
    index = open_index(folder)
    index.upsert([doc(A, "kept", rng, tags=("beach",))])

    class LedgerCommitFails:
        def __init__(self, db):
            self._db = db

        def execute(self, sql, *args):
            if sql == "COMMIT":
                raise sqlite3.OperationalError("disk I/O error")
            return self._db.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self._db, name)

    db = index._db
    monkeypatch.setattr(index, "_db", LedgerCommitFails(db))
    crashing = [doc(A, f"new-{i}", rng, tags=("beach",)) for i in range(3)]
    with pytest.raises(StorageUnavailableError):
        index.upsert(crashing)  # tantivy committed, the ledger did not
    monkeypatch.undo()
    index._index.reload()  # what tantivy committed, now rather than on its reload timer
    assert [h.photo_id for h in index.search(SearchQuery(owner=A, text="beach")).hits] == ["kept"]
    index.close()
    _leave_orphans(folder, [4, 5])  # what a crash right after the tantivy commit leaves: no one cleaned up

    index = open_index(folder)  # the restart; the stream delivers the same photos again
    assert index.upsert(crashing) == ["new-0", "new-1", "new-2"]
    index.upsert([doc(A, "newer", rng, tags=("beach",))])
    found = [h.photo_id for h in index.search(SearchQuery(owner=A, text="beach", limit=50)).hits]
    assert sorted(found) == ["kept", "new-0", "new-1", "new-2", "newer"]
    assert index.count(A) == 5


def _leave_orphans(folder: Path, keys: list[int]) -> None:
    """tantivy documents under keys the ledger never handed out, as a crash between the two commits leaves them."""
    import tantivy

    index = tantivy.Index(tantivy_schema(), path=str(folder / "tantivy"), reuse=True)
    index.register_tokenizer("po_text", text_analyzer(stopwords=False))
    writer = index.writer(heap_size=15_000_000, num_threads=1)
    for key in keys:
        document = tantivy.Document.from_dict({"owner": [A], "photo_id": [f"orphan-{key}"], "tags": ["beach"],
                                               "t": [0], "year": [2023], "recency": [0.0]})
        document.add_unsigned("key", key)
        writer.add_document(document)
    writer.commit()
    writer.wait_merging_threads()


def test_generation_names(folder):
    assert generation_of("vectors.f32") == 0
    assert generation_of("vectors.12.f32") == 12


def test_a_write_whose_vector_staging_fails_is_kept_and_its_vectors_are_read_back(folder, monkeypatch):
    from photo_organizer.adapters.local.vector_slices import OwnerVectors

    rng = np.random.default_rng(6)
    index = open_index(folder)
    index.upsert([doc(A, "before", rng, tags=("beach",))])
    target = doc(A, "after", rng, tags=("beach",))

    def stage_fails(self, *args, **kwargs):
        raise MemoryError("no room for the delta")

    monkeypatch.setattr(OwnerVectors, "stage", stage_fails)
    assert index.upsert([target]) == ["after"]  # both commits happened: the write stands
    monkeypatch.undo()
    hits = index.search(SearchQuery(owner=A, embedding=target.embedding, limit=5), facets=False).hits
    assert [h.photo_id for h in hits][:1] == ["after"] and index.vector_file_rows == (2, 2)


def test_a_write_whose_ledger_rows_fail_leaves_nothing_behind(folder, monkeypatch):
    rng = np.random.default_rng(7)
    index = open_index(folder)
    index.upsert([doc(A, "kept", rng, tags=("beach",))])
    before = snapshot(index)

    def ledger_fails(self, vectors, quantised, first, rows):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(LocalSearchIndex, "_write_ledger", ledger_fails)
    with pytest.raises(StorageUnavailableError):
        index.upsert([doc(A, "lost", rng, tags=("beach",)), doc(A, "kept", rng, version=2, tags=("dog",))])
    monkeypatch.undo()
    assert snapshot(index) == before
    assert index.upsert([doc(A, "lost", rng, tags=("beach",))]) == ["lost"]
    index.close()
    index = open_index(folder)
    assert sorted(h.photo_id for h in index.search(SearchQuery(owner=A, text="beach")).hits) == ["kept", "lost"]


def test_photos_written_in_earlier_batches_are_always_found_again(folder, monkeypatch):
    """The in-memory filter in front of the ledger lookups never hides a photo the ledger holds: stale versions
    stay out, newer ones replace, across merges of the filter and a reopen."""
    monkeypatch.setattr(KnownPhotos, "MERGE_FROM", 7)
    rng = np.random.default_rng(8)
    index = open_index(folder)
    for batch in range(4):
        index.upsert([doc(A, f"p{batch}-{i}", rng, version=5, tags=("beach",)) for i in range(5)])
    index.delete(A, "never-seen", version=3)
    for reopen in (False, True):
        if reopen:
            index.close()
            index = open_index(folder)
        assert index.upsert([doc(A, f"p{b}-{i}", rng, version=4, tags=("dog",)) for b in range(4) for i in (0, 3)]) == []
        assert index.upsert([doc(A, "never-seen", rng, version=2)]) == []
        assert index.count(A) == 20
    assert index.upsert([doc(A, "p2-1", rng, version=6, tags=("dog",))]) == ["p2-1"]
    assert [h.photo_id for h in index.search(SearchQuery(owner=A, text="dog")).hits] == ["p2-1"]
    assert index.count(A) == 20


def test_an_index_from_before_int8_copies_answers_the_same_and_stores_them_on_its_next_write(folder, caplog):
    index = open_index(folder)
    rng = library(index)
    before = snapshot(index)
    index.close()
    (folder / "vectors.i8").unlink()  # what an index written before the int8 copies has on disk

    index = open_index(folder)
    assert "have no int8 copy in vectors.i8" in caplog.text
    assert snapshot(index) == before
    index.upsert([doc(A, "after", rng, days=100, tags=("beach",))])
    rows, _ = index.vector_file_rows
    assert (folder / "vectors.i8").stat().st_size == QUANTISED_HEADER.size + rows * (EMBEDDING_DIMENSIONS + 4)
    after = snapshot(index)
    index.compact()
    assert sorted(p.name for p in folder.glob("vectors*")) == ["vectors.1.f32", "vectors.1.i8"]
    assert snapshot(index) == after
    index.close()
    assert snapshot(open_index(folder)) == after


# ---- bulk writes (upsert_many): one write of many batches, committed once -------------------------------------


def bulk_batches(rng: np.random.Generator) -> list[tuple[list[SearchDocument], np.ndarray | None]]:
    """New photos, then updates of some (newer, stale, without an embedding, now hidden), the same photo twice in
    one batch, and a batch whose embeddings come as a matrix."""
    tags = ("beach", "dog", "city")
    first = [doc(owner, f"{owner}-{i:02d}", rng, days=i, tags=(tags[i % 3],), place=PORTO if i % 4 == 0 else None)
             for owner in (A, B) for i in range(20)]
    updates = [doc(A, f"{A}-{i:02d}", rng, version=2, days=i + 0.5, tags=(tags[(i + 1) % 3],)) for i in range(0, 10, 2)]
    updates += [doc(B, f"{B}-{i:02d}", rng, version=1, tags=("stale",)) for i in range(3)]  # not newer: skipped
    updates += [doc(A, f"{A}-{i:02d}", rng, version=3, days=i, embedding=None, tags=("plain",)) for i in (1, 3)]
    updates += [doc(B, f"{B}-05", rng, version=2, hidden=True, tags=("beach",)),
                doc(B, "twice", rng, version=1, tags=("dog",)), doc(B, "twice", rng, version=4, tags=("city",))]
    matrix_docs = [doc(owner, f"{owner}-m{i}", rng, days=30 + i, tags=("beach",), embedding=None)
                   for owner in (A, B) for i in range(6)]
    matrix = np.array([embedding(rng) for _ in matrix_docs], np.float32)
    again = [doc(A, f"{A}-00", rng, version=5, days=50, tags=("dog",)), doc(B, f"{B}-m2", rng, version=2, tags=("dog",))]
    return [(first, None), (updates, None), (matrix_docs, matrix), (again, None)]


def test_a_bulk_write_answers_exactly_as_its_batches_upserted_one_by_one(tmp_path):
    batches = bulk_batches(np.random.default_rng(10))
    one_by_one = open_index(tmp_path / "one")
    expected = [pid for documents, matrix in batches for pid in one_by_one.upsert(documents, embeddings=matrix)]
    bulk = open_index(tmp_path / "bulk")
    assert bulk.upsert_many(iter(batches)) == expected
    assert snapshot(bulk) == snapshot(one_by_one)
    assert bulk.vector_file_rows == one_by_one.vector_file_rows
    assert [bulk.live_versions(o) for o in (A, B)] == [one_by_one.live_versions(o) for o in (A, B)]
    expected_snapshot = snapshot(one_by_one)
    bulk.close()
    assert snapshot(open_index(tmp_path / "bulk")) == expected_snapshot


def test_nothing_of_a_bulk_write_shows_before_it_returns_and_all_of_it_after(folder):
    """Readers in this process (keyword and by meaning, whose vectors of earlier batches are in memory already)
    and a process opening the index meanwhile see none of it; once upsert_many returns, a new process sees all."""
    rng = np.random.default_rng(11)
    index = open_index(folder)
    index.upsert([doc(A, "old", rng, tags=("beach",))])
    batches = [[doc(A, f"new-{b}-{i}", rng, days=b, tags=("beach",)) for i in range(4)] for b in range(3)]
    seen = []

    def produce():
        for documents in batches:
            yield documents, None
            other = LocalSearchIndex(folder, min_similarity=-1.0)
            by_meaning = index.search(SearchQuery(owner=A, embedding=batches[0][0].embedding, limit=50), facets=False)
            seen.append((index.count(A), other.count(A), [h.photo_id for h in by_meaning.hits]))
            other.close()

    assert len(index.upsert_many(produce())) == 12
    assert seen == [(1, 1, ["old"])] * 3
    index.close()  # after the write: what a crash would leave is already on disk (close adds nothing to it)
    reopened = open_index(folder)
    assert reopened.count(A) == 13
    assert reopened.search(SearchQuery(owner=A, embedding=batches[0][0].embedding, limit=1),
                           facets=False).hits[0].photo_id == "new-0-0"


@pytest.mark.parametrize("failure", ["the source of the batches", "the ledger rows of the second batch"])
def test_a_bulk_write_that_fails_midway_leaves_the_index_as_it_was(folder, monkeypatch, failure):
    index = open_index(folder)
    rng = library(index)
    before = snapshot(index)
    batches = [[doc(A, "bulk-new", rng, tags=("beach",)), doc(A, f"{A}-02", rng, version=9, tags=("dog",))],
               [doc(B, "bulk-other", rng, tags=("beach",))]]

    def produce():
        yield batches[0], None
        yield batches[1], None
        raise RuntimeError("the source went away")

    if failure == "the source of the batches":
        with pytest.raises(RuntimeError):
            index.upsert_many(produce())
    else:
        write_ledger, calls = LocalSearchIndex._write_ledger, []

        def second_fails(self, *args):
            calls.append(1)
            if len(calls) == 2:
                raise sqlite3.OperationalError("database or disk is full")
            return write_ledger(self, *args)

        monkeypatch.setattr(LocalSearchIndex, "_write_ledger", second_fails)
        with pytest.raises(StorageUnavailableError):
            index.upsert_many(produce())
        monkeypatch.undo()
    assert snapshot(index) == before
    index.close()
    index = open_index(folder)
    assert snapshot(index) == before
    assert index.upsert_many((documents, None) for documents in batches) == ["bulk-new", f"{A}-02", "bulk-other"]
    assert index.live_versions(A)[f"{A}-02"] == 9
