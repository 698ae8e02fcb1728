"""Per-owner rows (key, unit embedding as int8 with a per-row scale, sort time, visibility flags, lat/lon, row in
the float32 file) in one owner-sorted matrix, for vector search, exact geo distance and the date/visibility filters
over a single owner's contiguous slice.

Measured (docs TOOLCHAIN.md): exact numpy search over the owner's slice is p99 4 ms at 1M rows with recall 1.0,
while a global ANN index with an owner filter was slower or lossy. So there is no ANN here at all. The float32
matrix was 1.46 GB of the open index's 1.7 GB at 1M, so memory holds int8 copies (a quarter of it) and a search
scans them (int8 x int8 in int32, as fast as float32 was), then re-scores its best RESCORE candidates exactly from
the float32 rows, read from the file row by row for that query (rank_by_similarity): recall@50 against exact float32
search stays >= 0.99 (1.0 in the tests), and the resident memory holds only the pages a query is reading.

Writes append to one global delta (columns in append-only buffers, tagged with an owner code) and mark the
superseded rows dead; `compact()` merges the delta into a new owner-sorted base (done automatically once the
delta outgrows the base, so bulk loads cost O(n) amortised: ~2.5n rows copied in all at 1M; copying costs
~1-3 us per row on these VMs, so compacting more often was seconds of the build; a larger share would save ~1 s
per 1M rows but let base + delta reach 3x the matrix in memory). The delta is global rather than per owner
because a bulk batch touches most owners: per-owner arrays cost ~100 us of numpy calls per owner per batch and
re-copied every owner's delta on each batch (~170 ms per 10k batch at 100k photos, growing with the delta). Readers take `self._state` once per call: a write appends past the
end any published state can see and swaps in a new state, so one writer and many readers need no lock.

Writes are staged, then published: `stage()` does the copying (and a compaction when one is due) without changing
anything a reader or the next write sees, so the index runs it on a helper thread while tantivy builds and commits
the same batch, and publishes it only once both commits are done; a failed write just drops the staged one.

Embeddings persist in `VectorFile`, an append-only float32 file addressed by row number (the ledger keeps each
photo's row) with its int8 copies in a versioned companion file, not in SQLite: at 1M photos the ledger held 2 GB of 1.5 KB blobs, written once into the WAL and
again into the database, and read back row by row on every open. Updates and deletes leave dead rows in it;
`VectorFile.rewrite()` copies the live ones into a new file, which the index switches to in one ledger commit.
"""

from __future__ import annotations

import logging
import math
import mmap
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from photo_organizer.errors import StorageUnavailableError

logger = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0088
HIDDEN, SENSITIVE = 1, 2  # bits of `flags`
_MAP_FROM = 32 << 20
_COPY_ROWS = 16_384  # rows per chunk when copying between files: bounded temporaries (24 MB at 384-d)
QUANTISED_MAGIC = b"POVQ"
QUANTISED_FORMAT = 1  # of the .i8 file; another one is refused with what to do
QUANTISED_HEADER = struct.Struct("<4sIII")  # magic, format, dimensions, reserved
# candidates re-scored from the float32 rows. The int8 error (~3e-4 typical, under 2e-3) only swaps rows of nearly
# equal similarity: on 20k and 40k random unit rows (random and near-photo queries), int8 alone has recall@50 0.985,
# re-scoring 64 to 200 gives 1.0 (recall@200 0.988; 400 gives 1.0 there too). Each re-scored row is a page fault on
# the float32 file (~2-6 us here), so 400 were ~2.3 ms of a vector query's CPU at 100k
RESCORE = 128
_WILL_NEED = getattr(os, "POSIX_FADV_WILLNEED", None)  # not on every platform (macOS)


def quantised_row(dim: int) -> np.dtype:
    return np.dtype([("q", "i1", (dim,)), ("scale", "<f4")])


def quantise(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row symmetric int8: row ~= q * scale, with the row's largest magnitude at 127 (a zero row: q = 0)."""
    matrix = np.asarray(matrix, np.float32)
    peak = np.abs(matrix).max(axis=1) if len(matrix) else np.empty(0, np.float32)
    scale = np.where(peak > 0, peak / 127, 1).astype(np.float32)
    q = np.clip(np.rint(matrix / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def _matrix(rows: int, dim: int, dtype=np.int8, *, filled: bool = False) -> np.ndarray:
    """An uninitialised (rows, dim) matrix (int8: the in-memory vectors); `filled` when every row will be written at once. Large ones are
    private anonymous maps without huge-page advice: with defrag=madvise, numpy's own MADV_HUGEPAGE made page
    faults stall in direct compaction once memory was fragmented (first touch of 1.5 GB 1.4-3.5 s against 0.8 s),
    and a shared map (shmem) faulted about as slowly. A filled one is populated by the kernel up front (0.6 s).
    Untouched pages of the others cost nothing, so capacity is cheap."""
    nbytes = rows * dim * np.dtype(dtype).itemsize
    if nbytes < _MAP_FROM:
        return np.zeros((rows, dim), dtype) if filled else np.empty((rows, dim), dtype)
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | (getattr(mmap, "MAP_POPULATE", 0) if filled else 0)
    return np.frombuffer(mmap.mmap(-1, nbytes, flags=flags), dtype).reshape(rows, dim)  # anonymous pages are 0


class VectorFile:
    """Append-only float32 rows (`vectors[.<n>].f32`, headerless) and their int8 copies (`.i8`, same row numbers:
    a versioned header, then per row int8[dim] and a float32 scale). Searches hold only the int8 copies in memory
    and read the float32 rows of their best candidates (exact re-scoring); opening reads only the int8 file.

    A crash may leave unreferenced or partial rows at the end: the ledger commits after both appends, so rows it
    names are complete in both; a partial float32 tail row is cut on open. The int8 file may be shorter (an index
    written before it existed, or a crash between the appends): readers quantise the missing rows from the float32
    ones in memory, and the writer stores them before its next append. `create=False` refuses a missing float32
    file instead of making an empty one (a reader that found a name a compaction has just retired)."""

    def __init__(self, path: Path, dim: int, *, create: bool = True) -> None:
        self.path = path
        self.quantised_path = path.with_suffix(".i8")
        self.dim = dim
        self._row_bytes = 4 * dim
        self._qrow = quantised_row(dim)
        if not create and not path.exists():
            raise FileNotFoundError(path)
        self._file = open(path, "ab+")  # noqa: SIM115 - held for the index's lifetime
        size = self._file.seek(0, os.SEEK_END)
        if size % self._row_bytes:
            self._file.truncate(size - size % self._row_bytes)
        self.rows = self._file.seek(0, os.SEEK_END) // self._row_bytes
        self._qfile = open(self.quantised_path, "ab+")  # noqa: SIM115 - held for the index's lifetime
        try:
            self._qrows = self._quantised_rows_on_disk()
        except StorageUnavailableError:
            self.close()
            raise
        if self._qrows < self.rows:
            logger.warning("%s: %d of %d rows have no int8 copy in %s (written before format %d, or a crash): "
                           "quantised in memory now, stored by the next write", path.name, self.rows - self._qrows,
                           self.rows, self.quantised_path.name, QUANTISED_FORMAT)

    def _quantised_rows_on_disk(self) -> int:
        """Complete int8 rows after a valid header; 0 for an empty file or a header still being written. A header
        of another format or dimension is refused: this code cannot tell what its rows mean."""
        size = self._qfile.seek(0, os.SEEK_END)
        if size < QUANTISED_HEADER.size:
            return 0
        self._qfile.seek(0)
        magic, version, dim, _ = QUANTISED_HEADER.unpack(self._qfile.read(QUANTISED_HEADER.size))
        if magic != QUANTISED_MAGIC or version != QUANTISED_FORMAT or dim != self.dim:
            raise StorageUnavailableError(
                f"{self.quantised_path.name}: int8 vectors of format {version!r} ({magic!r}, {dim} dimensions), "
                f"this version reads format {QUANTISED_FORMAT} with {self.dim}: delete that file to rebuild it from "
                f"{self.path.name}, or rebuild the index")
        return min(self.rows, (size - QUANTISED_HEADER.size) // self._qrow.itemsize)

    def append(self, matrix: np.ndarray, quantised: tuple[np.ndarray, np.ndarray] | None = None) -> int:
        """Writes the rows (and their int8 copies: `quantised`, or computed here) durably and returns the row
        number of the first. Writer only: it first makes the int8 file exactly as long as the float32 one."""
        start = self.rows
        self._align_quantised()
        if len(matrix):
            data = np.ascontiguousarray(matrix, dtype="<f4")  # written from its own buffer: no bytes copy
            q, scale = quantise(data) if quantised is None else quantised
            self._file.seek(0, os.SEEK_END)
            self._file.write(data.reshape(-1).view(np.uint8))
            self._file.flush()
            self._write_quantised(q, scale)
            os.fsync(self._file.fileno())
            os.fsync(self._qfile.fileno())
            self.rows += len(matrix)
            self._qrows = self.rows
        return start

    def _align_quantised(self) -> None:
        if self._qfile.seek(0, os.SEEK_END) < QUANTISED_HEADER.size:
            self._qfile.truncate(0)
            self._qfile.write(QUANTISED_HEADER.pack(QUANTISED_MAGIC, QUANTISED_FORMAT, self.dim, 0))
            self._qrows = 0
        end = QUANTISED_HEADER.size + self._qrows * self._qrow.itemsize
        if self._qfile.seek(0, os.SEEK_END) != end:  # rows past the float32 file, or a partial one
            self._qfile.truncate(end)
        if self._qrows < self.rows:
            mapped = self._mapped()
            for start in range(self._qrows, self.rows, _COPY_ROWS):
                self._write_quantised(*quantise(mapped[start : min(self.rows, start + _COPY_ROWS)]))
            del mapped
            self._qfile.flush()
            os.fsync(self._qfile.fileno())
            self._qrows = self.rows

    def _write_quantised(self, q: np.ndarray, scale: np.ndarray) -> None:
        packed = np.empty(len(q), self._qrow)
        packed["q"] = q
        packed["scale"] = scale
        self._qfile.seek(0, os.SEEK_END)
        self._qfile.write(packed.view(np.uint8))
        self._qfile.flush()

    def read_quantised(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The int8 copies and scales of the given rows; rows past the end (a lost tail) come back as zeros."""
        q = _matrix(len(rows), self.dim, np.int8, filled=True)
        scale = np.zeros(len(rows), np.float32)
        ok = (rows >= 0) & (rows < self.rows)
        if not ok.any():
            return q, scale
        stored = ok & (rows < self._qrows)
        if stored.any():
            view = mmap.mmap(self._qfile.fileno(), QUANTISED_HEADER.size + self._qrows * self._qrow.itemsize,
                             access=mmap.ACCESS_READ)
            packed = np.frombuffer(view, self._qrow, count=self._qrows, offset=QUANTISED_HEADER.size)
            for start in range(0, len(rows), 65_536):  # bounded temporaries
                sel = np.flatnonzero(stored[start : start + 65_536]) + start
                part = packed[rows[sel]]
                q[sel] = part["q"]
                scale[sel] = part["scale"]
            del packed, part
        missing = np.flatnonzero(ok & ~stored)
        if len(missing):
            mapped = self._mapped()
            for start in range(0, len(missing), _COPY_ROWS):
                sel = missing[start : start + _COPY_ROWS]
                q[sel], scale[sel] = quantise(mapped[rows[sel]])
            del mapped
        return q, scale

    def exact(self, rows: np.ndarray) -> np.ndarray:
        """The float32 rows given (all inside the file), one positional read each: the page cache they come from
        is not the process's resident memory. A map made per call did the same at ~4x the cost (a page fault per
        row, then the unmap): 0.9 against 0.25 ms for 128 rows. ValueError once this file is closed (a
        compaction retired it) or for rows past its end."""
        if not len(rows):
            return np.empty((0, self.dim), np.float32)
        size = self._row_bytes
        try:
            fd = self._file.fileno()
            offsets = [row * size for row in rows.tolist()]
            if _WILL_NEED is not None:
                # Rows missing from the page cache (most, once the file outgrows what the host keeps cached) were
                # read by one blocking read after another: 128 cold rows 10 ms of wall and 4.8 ms of CPU here.
                # Announced first, the kernel reads them together: 1.5 ms and 1.1 ms; cached rows cost the same.
                for offset in offsets:
                    os.posix_fadvise(fd, offset, size, _WILL_NEED)
            data = b"".join([os.pread(fd, size, offset) for offset in offsets])
        except OSError as e:
            raise ValueError(f"{self.path.name} is closed") from e
        if len(data) != len(rows) * size:
            raise ValueError("rows outside the vectors file")
        return np.frombuffer(data, "<f4").reshape(len(rows), self.dim)

    def rewrite(self, rows: np.ndarray, path: Path) -> VectorFile:
        """A new file at `path` (and its int8 copies) holding this file's `rows` in the given order (row i of the
        new file is rows[i]), durable (files and directory synced) before it is returned. This file is left as it
        was."""
        if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= self.rows):
            raise ValueError("rows outside the vectors file")
        quantised_path = path.with_suffix(".i8")
        with open(path, "wb") as out, open(quantised_path, "wb") as qout:
            qout.write(QUANTISED_HEADER.pack(QUANTISED_MAGIC, QUANTISED_FORMAT, self.dim, 0))
            if len(rows):
                mapped = self._mapped()
                for start in range(0, len(rows), _COPY_ROWS):
                    chunk = rows[start : start + _COPY_ROWS]
                    data = np.ascontiguousarray(mapped[chunk], dtype="<f4")
                    out.write(data.reshape(-1).view(np.uint8))
                    q, scale = self.read_quantised(chunk)
                    packed = np.empty(len(chunk), self._qrow)
                    packed["q"] = q
                    packed["scale"] = scale
                    qout.write(packed.view(np.uint8))
                del mapped
            for f in (out, qout):
                f.flush()
                os.fsync(f.fileno())
        sync_directory(path.parent)
        return VectorFile(path, self.dim, create=False)

    def _mapped(self) -> np.ndarray:
        """The rows, read-only, through the file this object opened (its name may already be retired)."""
        view = mmap.mmap(self._file.fileno(), self.rows * self._row_bytes, access=mmap.ACCESS_READ)
        return np.frombuffer(view, "<f4").reshape(self.rows, self.dim)

    def close(self) -> None:
        self._file.close()
        self._qfile.close()


def sync_directory(path: Path) -> None:
    """Makes a file's creation, rename or removal in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Columns:
    """Row metadata + vectors as parallel arrays. Rows written past `n` are invisible to readers, which hold views
    up to their own `n`; growth allocates new buffers, leaving old views intact. `n` moves only on publish."""

    NAMES = ("code", "key", "t", "flags", "has_vector", "lat", "lon", "scale", "vrow")
    DTYPES = (np.int32, np.int64, np.int64, np.uint8, bool, np.float64, np.float64, np.float32, np.int64)

    def __init__(self, dim: int, capacity: int = 0) -> None:
        self.dim = dim
        self.n = 0
        self.cols = {name: np.empty(capacity, dtype) for name, dtype in zip(self.NAMES, self.DTYPES, strict=True)}
        self.vectors = _matrix(capacity, dim)

    def write(self, start: int, cols: dict[str, np.ndarray], vectors: np.ndarray, order: np.ndarray) -> None:
        """Rows start.. get cols[..][order] and vectors[order]: gathered straight into place, no temporary."""
        m = len(order)
        if start + m > len(self.vectors):
            capacity = max(1024, 2 * (start + m))
            for name, arr in self.cols.items():
                grown = np.empty(capacity, arr.dtype)
                grown[:start] = arr[:start]
                self.cols[name] = grown
            grown_v = _matrix(capacity, self.dim)
            grown_v[:start] = self.vectors[:start]
            self.vectors = grown_v
        for name, arr in self.cols.items():
            np.take(np.asarray(cols[name], arr.dtype), order, out=arr[start : start + m])
        np.take(np.asarray(vectors, np.int8), order, axis=0, out=self.vectors[start : start + m])

    def renumbered(self, mapping: np.ndarray) -> None:
        """A new `vrow` buffer (readers keep the old one) with the published rows mapped (-1 stays -1)."""
        vrow = np.empty_like(self.cols["vrow"])
        vrow[: self.n] = renumber(self.cols["vrow"][: self.n], mapping)
        self.cols["vrow"] = vrow


class ExactRows(Protocol):
    """Where the float32 rows named by `vrow` are read for re-scoring (VectorFile)."""

    def exact(self, rows: np.ndarray) -> np.ndarray: ...


def renumber(vrow: np.ndarray, mapping: np.ndarray) -> np.ndarray:
    """vrow through mapping (old row -> new row, -1 when gone); -1 and rows past the mapping become -1."""
    inside = (vrow >= 0) & (vrow < len(mapping))
    return np.where(inside, mapping[np.where(inside, vrow, 0)] if len(mapping) else -1, -1)


@dataclass(frozen=True)
class _State:
    base: dict[str, np.ndarray]  # columns grouped by owner code (rows of one owner in no particular order)
    base_vectors: np.ndarray  # int8 copies; times the `scale` column
    base_alive: np.ndarray  # False once superseded or deleted
    ranges: dict[int, tuple[int, int]]  # owner code -> [start, end) in base
    delta: dict[str, np.ndarray]  # columns, views up to the published length
    delta_vectors: np.ndarray
    delta_alive: np.ndarray
    source: ExactRows | None  # the float32 rows the `vrow` columns name


@dataclass(frozen=True)
class OwnerSlice:
    """One owner's live rows (copies), in no particular order."""

    keys: np.ndarray
    t: np.ndarray
    flags: np.ndarray
    has_vector: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    scale: np.ndarray
    vrow: np.ndarray
    vectors: np.ndarray | None  # int8 (times `scale`), only when asked for
    source: ExactRows | None = None


def _empty_cols() -> dict[str, np.ndarray]:
    return {name: np.empty(0, dtype) for name, dtype in zip(_Columns.NAMES, _Columns.DTYPES, strict=True)}


@dataclass
class _Reset:
    """A new owner-sorted base with an empty delta, and the writer's maps for it."""

    state: _State
    base_pos: np.ndarray | None  # key -> base row, -1 when absent; None: built by the first write that needs it
    delta: _Columns


@dataclass
class _Staged:
    """A write computed to the side; nothing changes until OwnerVectors.publish(). Dropping it undoes nothing."""

    state: _State
    delta_n: int
    delta_pos: dict[int, int]  # new delta rows of keys written now
    dead_keys: list[int]  # keys whose earlier delta row died
    reset: _Reset | None = None  # the compaction, when one came due


def positions(keys: np.ndarray) -> np.ndarray:
    """key -> its index in `keys`, -1 for keys not there."""
    out = np.full(int(keys.max()) + 1 if len(keys) else 0, -1, np.int64)
    out[keys] = np.arange(len(keys))
    return out


class OwnerVectors:
    def __init__(self, dim: int, *, min_delta: int = 50_000, delta_share: float = 1.0) -> None:
        self.dim = dim
        self._min_delta = min_delta
        self._delta_share = delta_share
        self._write_lock = threading.Lock()
        self._codes: dict[str, int] = {}
        self._pending: _Staged | None = None
        self._install(self._reset(_empty_cols(), np.empty((0, dim), np.int8), None))

    def _code(self, owner: str) -> int:
        code = self._codes.get(owner)
        if code is None:
            code = self._codes[owner] = len(self._codes)
        return code

    def _reset(self, base: dict[str, np.ndarray], vectors: np.ndarray, source: ExactRows | None) -> _Reset:
        """`base` (grouped by code) with an empty delta."""
        ranges: dict[int, tuple[int, int]] = {}
        codes = base["code"]
        if len(codes):
            change = np.flatnonzero(codes[1:] != codes[:-1]) + 1
            starts = np.concatenate([[0], change])
            ends = np.concatenate([change, [len(codes)]])
            ranges = {int(codes[s]): (int(s), int(e)) for s, e in zip(starts, ends, strict=True)}
        keys = base["key"]
        # room for the whole delta until the next compaction: no growth copies during a bulk load
        room = int(max(self._min_delta, self._delta_share * len(keys)))
        delta = _Columns(self.dim, min(room, 1 << 20) + 16_384)
        state = _State(base, vectors, np.ones(len(keys), bool), ranges, _empty_cols(),
                       np.empty((0, self.dim), np.int8), np.empty(0, bool), source)
        return _Reset(state, None, delta)

    def _install(self, reset: _Reset) -> None:
        self._base_pos = reset.base_pos  # writer only: see _positions
        self._delta = reset.delta
        self._delta_pos: dict[int, int] = {}  # key -> delta row, writer only
        self._state = reset.state

    def _positions(self) -> np.ndarray:
        """key -> row of the base, built on the first write after an install: a process that only reads (the
        open index of the API) never holds it (8 MB at 1M photos)."""
        if self._base_pos is None:
            self._base_pos = positions(self._state.base["key"])
        return self._base_pos

    # ---- writes (one writer at a time) ---------------------------------------------------------------------

    def load(self, owners: list[str], cols: dict[str, np.ndarray], vectors: np.ndarray,
             source: ExactRows | None = None) -> None:
        """Replaces everything. `cols` holds key, t, flags, has_vector, lat, lon, scale, vrow (a row of `source`,
        -1 for none); `vectors` the int8 copies; rows in any order."""
        with self._write_lock:
            self._codes = {}
            self._pending = None
            code = np.fromiter((self._code(o) for o in owners), np.int32, len(owners))
            order = np.argsort(code, kind="stable")
            base = {"code": code[order], **{name: np.asarray(cols[name])[order] for name in _Columns.NAMES[1:]}}
            self._install(self._reset(base, vectors[order] if len(order) else vectors, source))

    def renumber(self, mapping: np.ndarray, source: ExactRows) -> None:
        """The float32 rows moved to `source` (old row -> new row in `mapping`): a new state names them there.
        In-memory vectors stay as they are."""
        with self._write_lock:
            self._pending = None
            state = self._state
            self._delta.renumbered(mapping)
            base = {**state.base, "vrow": renumber(state.base["vrow"], mapping)}
            delta = {**state.delta, "vrow": self._delta.cols["vrow"][: len(state.delta["vrow"])]}
            self._state = _State(base, state.base_vectors, state.base_alive, state.ranges, delta,
                                 state.delta_vectors, state.delta_alive, source)

    def apply(self, owners: list[str], cols: dict[str, np.ndarray], vectors: np.ndarray,
              removals: list[tuple[str, int]] = ()) -> None:
        """Upserts rows (owners[i] with cols[..][i] and the int8 vectors[i]) and removes (owner, key) pairs."""
        self.publish(self.stage(owners, cols, vectors, removals))

    def stage(self, owners: list[str], cols: dict[str, np.ndarray], vectors: np.ndarray,
              removals: list[tuple[str, int]] = ()) -> _Staged | None:
        """apply() without publishing: the result goes to publish(), or is dropped. The next stage() replaces it."""
        with self._write_lock:
            self._pending = None
            state = self._state
            gone = np.concatenate([np.asarray(cols.get("key", ()), np.int64),
                                   np.fromiter((k for _, k in removals), np.int64, len(removals))])
            if not len(gone):
                return None
            base_alive = state.base_alive
            base_pos = self._positions()
            in_range = gone[gone < len(base_pos)]
            at = base_pos[in_range]
            at = at[at >= 0]
            if len(at):
                base_alive = base_alive.copy()
                base_alive[at] = False
            start = self._delta.n
            delta_alive = np.ones(start + len(vectors), bool)
            delta_alive[:start] = state.delta_alive
            positions = self._delta_pos
            dead_keys = [k for k in gone.tolist() if k in positions]
            if dead_keys:
                delta_alive[[positions[k] for k in dead_keys]] = False
            delta_pos: dict[int, int] = {}
            if len(vectors):
                code = np.fromiter((self._code(o) for o in owners), np.int32, len(owners))
                # grouped by owner, so gathering an owner's delta rows (queries, compaction) reads runs of rows:
                # random 1.5 KB row reads ran at ~2.4 us each here, most of a compaction
                by_owner = np.argsort(code, kind="stable")
                self._delta.write(start, {"code": code, **cols}, vectors, by_owner)
                # the last write of a key in one batch wins
                for i, k in enumerate(np.asarray(cols["key"], np.int64)[by_owner].tolist()):
                    previous = delta_pos.get(k)
                    if previous is not None:
                        delta_alive[previous] = False
                    delta_pos[k] = start + i
            n = start + len(vectors)
            delta = {name: arr[:n] for name, arr in self._delta.cols.items()}
            staged = _Staged(_State(state.base, state.base_vectors, base_alive, state.ranges, delta,
                                    self._delta.vectors[:n], delta_alive, state.source), n, delta_pos, dead_keys)
            if n > max(self._min_delta, self._delta_share * len(state.base["key"])):
                staged.reset = self._compacted(staged.state)
            self._pending = staged
            return staged

    def publish(self, staged: _Staged | None) -> None:
        """Makes a staged write visible. It must be the latest stage(): anything else is a writer bug."""
        if staged is None:
            return
        with self._write_lock:
            if staged is not self._pending:
                raise RuntimeError("publishing a vector write that is not the latest staged one")
            self._pending = None
            if staged.reset is not None:
                self._install(staged.reset)
                return
            for k in staged.dead_keys:
                self._delta_pos.pop(k, None)
            self._delta_pos.update(staged.delta_pos)
            self._delta.n = staged.delta_n
            self._state = staged.state

    def compact(self) -> None:
        with self._write_lock:
            self._pending = None
            reset = self._compacted(self._state)
            if reset is not None:
                self._install(reset)

    def _compacted(self, state: _State) -> _Reset | None:
        """Per owner: its live base rows (one contiguous copy when none died) then its live delta rows. None when
        there is nothing to merge."""
        live_d = np.flatnonzero(state.delta_alive)
        if not len(live_d) and state.base_alive.all():
            return None
        delta_codes = state.delta["code"][live_d]
        by_code = np.argsort(delta_codes, kind="stable")
        codes, starts = np.unique(delta_codes[by_code], return_index=True)
        delta_groups = dict(zip(codes.tolist(), np.split(live_d[by_code], starts[1:]), strict=True))
        total = int(state.base_alive.sum()) + len(live_d)
        vectors = _matrix(total, self.dim, filled=True)
        base_parts: list[slice | np.ndarray] = []
        delta_parts: list[np.ndarray] = []
        position = 0
        for code in sorted(set(state.ranges) | set(delta_groups)):
            if code in state.ranges:
                start, end = state.ranges[code]
                alive = state.base_alive[start:end]
                rows: slice | np.ndarray = slice(start, end) if alive.all() else np.flatnonzero(alive) + start
                count = end - start if isinstance(rows, slice) else len(rows)
                if isinstance(rows, slice):
                    vectors[position : position + count] = state.base_vectors[rows]
                else:
                    np.take(state.base_vectors, rows, axis=0, out=vectors[position : position + count])
                base_parts.append(rows)
                position += count
            if code in delta_groups:
                rows = delta_groups[code]
                np.take(state.delta_vectors, rows, axis=0, out=vectors[position : position + len(rows)])
                delta_parts.append(rows)
                position += len(rows)
        # the columns in the same order as the vectors: owner by owner, base rows then delta rows
        pieces: dict[str, list[np.ndarray]] = {name: [] for name in _Columns.NAMES}
        base_iter, delta_iter = iter(base_parts), iter(delta_parts)
        for code in sorted(set(state.ranges) | set(delta_groups)):
            if code in state.ranges:
                rows = next(base_iter)
                for name in _Columns.NAMES:
                    pieces[name].append(state.base[name][rows])
            if code in delta_groups:
                rows = next(delta_iter)
                for name in _Columns.NAMES:
                    pieces[name].append(state.delta[name][rows])
        base = {name: np.concatenate(parts) if parts else _empty_cols()[name] for name, parts in pieces.items()}
        return self._reset(base, vectors, state.source)

    # ---- reads --------------------------------------------------------------------------------------------

    def owner_slice(self, owner: str, *, with_vectors: bool = False) -> OwnerSlice:
        state = self._state
        code = self._codes.get(owner)
        parts: list[tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]] = []
        if code is not None and code in state.ranges:
            start, end = state.ranges[code]
            alive = state.base_alive[start:end]
            if alive.all():
                sel: slice | np.ndarray = slice(start, end)
            else:
                sel = np.flatnonzero(alive) + start
            parts.append((state.base, state.base_vectors, sel))
        if code is not None and len(state.delta["code"]):
            sel = np.flatnonzero((state.delta["code"] == code) & state.delta_alive)
            if len(sel):
                parts.append((state.delta, state.delta_vectors, sel))
        names = ("key", "t", "flags", "has_vector", "lat", "lon", "scale", "vrow")
        if not parts:
            empty = _empty_cols()
            return OwnerSlice(*(empty[n] for n in names),
                              np.empty((0, self.dim), np.int8) if with_vectors else None, state.source)
        if len(parts) == 1:
            cols, vecs, sel = parts[0]
            return OwnerSlice(*(cols[n][sel] for n in names), vecs[sel] if with_vectors else None, state.source)
        return OwnerSlice(
            *(np.concatenate([cols[n][sel] for cols, _, sel in parts]) for n in names),
            np.concatenate([vecs[sel] for _, vecs, sel in parts]) if with_vectors else None,
            state.source,
        )

    def within(self, owner: str, lat: float, lon: float, km: float) -> np.ndarray:
        """Keys of the owner's live rows at most `km` from (lat, lon): a bounding box first, then haversine."""
        rows = self.owner_slice(owner)
        return rows.keys[within_km(rows.lat, rows.lon, lat, lon, km)]

    def rows(self, owner: str) -> int:
        return len(self.owner_slice(owner).keys)

    @property
    def nbytes(self) -> int:
        state = self._state
        return int(state.base_vectors.nbytes + state.delta_vectors.nbytes + state.base["scale"].nbytes
                   + state.delta["scale"].nbytes)


@dataclass(frozen=True)
class Ranked:
    """Keys best first in two tiers: the re-scored candidates by exact similarity, then the rest by their int8
    estimate (reached only when later filters drop most of the first tier)."""

    keys: tuple[np.ndarray, np.ndarray]
    sims: tuple[np.ndarray, np.ndarray]

    def __len__(self) -> int:
        return len(self.keys[0]) + len(self.keys[1])

    def take(self, start: int, stop: int) -> np.ndarray:
        """Keys ranked [start, stop)."""
        first = len(self.keys[0])
        out = [np.empty(0, np.int64)]
        if start < first:
            out.append(best_keys(self.keys[0], self.sims[0], start, min(stop, first)))
        if stop > first:
            out.append(best_keys(self.keys[1], self.sims[1], max(0, start - first), stop - first))
        return np.concatenate(out)


def rank_by_similarity(part: OwnerSlice, vector: np.ndarray, mask: np.ndarray, floor: float, *,
                       rescore: int = RESCORE) -> Ranked:
    """The rows of `part` (with vectors) under `mask` whose cosine to the unit `vector` is >= floor, best first:
    int8 estimates over the whole slice pick the best `rescore`, whose float32 rows are read from `part.source`
    and scored exactly. The floor is applied exactly to those, and to the estimates with the quantisation error
    bound as a margin before that (a row a margin below cannot reach it)."""
    dim = len(vector)
    query_q, query_scale = quantise(vector[None, :])
    index = np.flatnonzero(mask)
    # int8 x int8 summed in int32: as fast here as float32 over a quarter of the memory. einsum, not BLAS gemv:
    # OpenBLAS threads spin against tantivy's on small hosts (18 ms vs 2 ms here). Only the rows under the mask
    # when they are a minority (a date range, a distance): the largest owner's 40k rows at 1M are ~6-9 ms of dot
    # products, and gathering a quarter of them costs far less than scoring the other three quarters.
    if 2 * len(index) < len(mask):
        dots = np.einsum("ij,j->i", part.vectors[index], query_q[0], dtype=np.int32)
    else:
        dots = np.einsum("ij,j->i", part.vectors, query_q[0], dtype=np.int32)[index]
    scale = part.scale[index]
    sims = np.multiply(dots, scale, dtype=np.float32)  # aligned with index from here on
    sims *= query_scale[0]
    if floor > -1.0:
        # |row.v - estimate| <= (row scale / 2) |v|_1 + (query scale / 2) |row|_1 + both scales / 4 * dim
        bound = (0.5 * float(np.abs(vector).sum()) + 0.25 * float(query_scale[0]) * dim) * scale \
            + 0.5 * float(query_scale[0]) * math.sqrt(dim)
        reachable = sims + bound >= floor
        index, sims = index[reachable], sims[reachable]
    empty_keys, empty_sims = np.empty(0, np.int64), np.empty(0, np.float32)
    if part.source is None or not len(index):  # nothing to re-score from (an index without a vectors file)
        kept = sims >= floor
        return Ranked((part.keys[index[kept]], empty_keys), (sims[kept], empty_sims))
    if len(index) > rescore:
        split = np.argpartition(-sims, rescore - 1)
        top, rest = split[:rescore], split[rescore:]
        rest = rest[sims[rest] >= floor]
        rest_keys, rest_sims = part.keys[index[rest]], sims[rest]
        top = index[top]
    else:
        top, rest_keys, rest_sims = index, empty_keys, empty_sims
    top = np.sort(top)  # the float32 rows in file order (owner-sorted after a compaction): fewer pages
    exact = np.einsum("ij,j->i", part.source.exact(part.vrow[top]), vector)
    good = exact >= floor
    return Ranked((part.keys[top[good]], rest_keys), (exact[good], rest_sims))


def best_keys(keys: np.ndarray, sims: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Keys ranked [start, stop) by (similarity desc, key asc), without sorting all of them. Deterministic
    because it selects by value: everything strictly better than rank `stop`'s value, plus ties by key."""
    if stop >= len(keys):
        order = np.lexsort((keys, -sims))
        return keys[order[start:stop]]
    kth = np.partition(-sims, stop - 1)[stop - 1]  # -(similarity at rank stop)
    pick = np.flatnonzero(-sims <= kth)
    order = pick[np.lexsort((keys[pick], -sims[pick]))]
    return keys[order[start:stop]]


def within_km(lats: np.ndarray, lons: np.ndarray, lat: float, lon: float, km: float) -> np.ndarray:
    """Bool mask of the rows at most `km` from (lat, lon); NaN positions never match."""
    dlat = math.degrees(km / EARTH_RADIUS_KM)
    cos_lat = math.cos(math.radians(lat))
    dlon = 180.0 if cos_lat < 1e-9 else min(180.0, math.degrees(km / (EARTH_RADIUS_KM * cos_lat)))
    box = (np.abs(lats - lat) <= dlat) & (np.abs(((lons - lon + 180.0) % 360.0) - 180.0) <= dlon)
    index = np.flatnonzero(box)
    box[index] = haversine_km(lat, lon, lats[index], lons[index]) <= km
    return box


def haversine_km(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    phi1, phi2 = math.radians(lat), np.radians(lats)
    dphi = phi2 - phi1
    dlmb = np.radians(lons - lon)
    a = np.sin(dphi / 2) ** 2 + math.cos(phi1) * np.cos(phi2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
