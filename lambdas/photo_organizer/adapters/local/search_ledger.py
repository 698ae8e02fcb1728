"""The local search index's ledger: a SQLite table of every photo's newest version (live or tombstoned), its
key, its row in the embeddings file and the file's name, and what the process loads from it. See search_index."""

from __future__ import annotations

import ctypes
import math

import numpy as np

from photo_organizer.adapters.local.vector_slices import VectorFile
from photo_organizer.errors import StorageUnavailableError

SCHEMA_VERSION = 2


VECTORS_FILE = "vectors.f32"  # generation 0; a compaction writes vectors.<n>.f32 and the ledger names it


LEDGER_SQL = """
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


def generation_of(name: str) -> int:
    middle = name.removeprefix("vectors").removesuffix(".f32").strip(".")
    return int(middle) if middle.isdigit() else 0


class KnownPhotos:
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


class SearchLedger:
    """The ledger's reads and writes, for LocalSearchIndex (which holds the connection and the vector state)."""

    def _write_ledger(self, vectors: np.ndarray, quantised: tuple[np.ndarray, np.ndarray], first: int,
                      rows: list[tuple]) -> None:
        if self._vector_file.append(vectors, quantised) != first:
            raise OSError(f"{self._vector_file.path.name} changed under the writer")
        self._db.executemany(
            "INSERT INTO docs (key, owner, photo_id, version, deleted, t, flags, lat, lon, vrow)"
            " VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET version = excluded.version,"
            " deleted = 0, t = excluded.t, flags = excluded.flags, lat = excluded.lat, lon = excluded.lon,"
            " vrow = excluded.vrow",
            rows,
        )

    def _existing(self, idents: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, int, int, int]]:
        """(key, version, deleted, has a vector row) per (owner, photo_id) the ledger holds. In the write
        transaction: the pairs it does not hold are about to be written, so they count as known from now on."""
        if self._known is None:
            self._known = KnownPhotos(np.fromiter(
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
        vectors, scale = vector_file.read_quantised(vrow)
        has_vector = (vrow >= 0) & (vrow < vector_file.rows)
        self._live_vrows = int(has_vector.sum())
        cols = {
            "key": np.array(keys, np.int64).reshape(n),
            "t": np.array([0 if v is None else v for v in ts], np.int64).reshape(n),
            "flags": np.array([0 if v is None else v for v in flags], np.uint8).reshape(n),
            "has_vector": has_vector,
            "lat": np.array([math.nan if v is None else v for v in lats], np.float64).reshape(n),
            "lon": np.array([math.nan if v is None else v for v in lons], np.float64).reshape(n),
            "scale": scale,
            "vrow": np.where(has_vector, vrow, -1),
        }
        self._vectors.load(owners, cols, vectors, vector_file)
        del owners, columns, keys, ts, flags, lats, lons, vrows, cols
        self._db.execute("PRAGMA shrink_memory")  # the page cache the full scan filled (up to 64 MB)
        release_freed_memory()

    def _vectors_name(self) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE name = 'vectors'").fetchone()
        return VECTORS_FILE if row is None else row[0]


def release_freed_memory() -> None:
    """Hands freed heap pages back to the system. glibc keeps them: the Python objects of a load's ledger rows
    (~120 MB at 1M photos, all freed) stayed in the open index's resident memory otherwise. Elsewhere: nothing."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
