"""Per-owner rows (key, unit embedding, lat/lon) in one owner-sorted float32 matrix, for exact vector search and
exact geo distance over a single owner's contiguous slice.

Measured (docs TOOLCHAIN.md): exact numpy search over the owner's slice is p99 4 ms at 1M rows with recall 1.0,
while a global ANN index with an owner filter was slower or lossy. So there is no ANN here at all.

Writes go to a small per-owner delta and mark the superseded base rows dead; `compact()` merges the delta into a
new base (done automatically once the delta outgrows a share of the base, so bulk loads cost O(n) amortised).
Readers take `self._state` once per call: every write builds a new immutable state and swaps the reference, so
one writer and many readers need no lock between them.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Row:
    owner: str
    key: int
    vector: np.ndarray | None  # float32, L2-normalised
    lat: float | None
    lon: float | None


@dataclass(frozen=True)
class _Rows:
    keys: np.ndarray  # int64, ascending
    vectors: np.ndarray  # float32 (n, dim)
    has_vector: np.ndarray  # bool
    lat: np.ndarray  # float64, NaN when unknown
    lon: np.ndarray

    @staticmethod
    def empty(dim: int) -> _Rows:
        return _Rows(
            np.empty(0, np.int64), np.empty((0, dim), np.float32), np.empty(0, bool), np.empty(0), np.empty(0)
        )

    @staticmethod
    def of(rows: list[Row], dim: int) -> _Rows:
        rows = sorted(rows, key=lambda r: r.key)
        vectors = np.zeros((len(rows), dim), np.float32)
        for i, row in enumerate(rows):
            if row.vector is not None:
                vectors[i] = row.vector
        return _Rows(
            np.fromiter((r.key for r in rows), np.int64, len(rows)),
            vectors,
            np.fromiter((r.vector is not None for r in rows), bool, len(rows)),
            np.fromiter((math.nan if r.lat is None else r.lat for r in rows), np.float64, len(rows)),
            np.fromiter((math.nan if r.lon is None else r.lon for r in rows), np.float64, len(rows)),
        )

    def take(self, index: np.ndarray) -> _Rows:
        return _Rows(self.keys[index], self.vectors[index], self.has_vector[index], self.lat[index], self.lon[index])

    @staticmethod
    def concat(parts: list[_Rows], dim: int) -> _Rows:
        if not parts:
            return _Rows.empty(dim)
        return _Rows(
            np.concatenate([p.keys for p in parts]),
            np.concatenate([p.vectors for p in parts]),
            np.concatenate([p.has_vector for p in parts]),
            np.concatenate([p.lat for p in parts]),
            np.concatenate([p.lon for p in parts]),
        )


@dataclass(frozen=True)
class _State:
    base: _Rows
    alive: np.ndarray  # bool per base row; False once superseded or deleted
    ranges: dict[str, tuple[int, int]]  # owner -> [start, end) in base
    delta: dict[str, _Rows]  # owner -> rows written since the last compaction
    delta_rows: int


class OwnerVectors:
    def __init__(self, dim: int, *, min_delta: int = 50_000, delta_share: float = 0.25) -> None:
        self.dim = dim
        self._min_delta = min_delta
        self._delta_share = delta_share
        self._state = _State(_Rows.empty(dim), np.empty(0, bool), {}, {}, 0)
        self._write_lock = threading.Lock()

    # ---- writes (one writer at a time) ---------------------------------------------------------------------

    def load(self, owners: np.ndarray, keys: np.ndarray, vectors: np.ndarray, has_vector: np.ndarray,
             lat: np.ndarray, lon: np.ndarray) -> None:
        """Replaces everything with rows already sorted by (owner, key)."""
        with self._write_lock:
            ranges: dict[str, tuple[int, int]] = {}
            if len(owners):
                change = np.flatnonzero(owners[1:] != owners[:-1]) + 1
                starts = np.concatenate([[0], change])
                ends = np.concatenate([change, [len(owners)]])
                ranges = {str(owners[s]): (int(s), int(e)) for s, e in zip(starts, ends, strict=True)}
            base = _Rows(keys.astype(np.int64), vectors.astype(np.float32, copy=False), has_vector.astype(bool),
                         lat.astype(np.float64), lon.astype(np.float64))
            self._state = _State(base, np.ones(len(keys), bool), ranges, {}, 0)

    def apply(self, upserts: Iterable[Row], removals: Iterable[tuple[str, int]] = ()) -> None:
        with self._write_lock:
            state = self._state
            touched: dict[str, tuple[list[Row], set[int]]] = {}
            for row in upserts:
                rows, gone = touched.setdefault(row.owner, ([], set()))
                rows.append(row)
                gone.add(row.key)
            for owner, key in removals:
                touched.setdefault(owner, ([], set()))[1].add(key)
            if not touched:
                return
            alive = state.alive
            copied = False
            delta = dict(state.delta)
            delta_rows = state.delta_rows
            for owner, (rows, gone) in touched.items():
                gone_keys = np.fromiter(gone, np.int64, len(gone))
                if owner in state.ranges:
                    start, end = state.ranges[owner]
                    slice_keys = state.base.keys[start:end]
                    at = np.searchsorted(slice_keys, gone_keys)
                    found = at < len(slice_keys)
                    found[found] = slice_keys[at[found]] == gone_keys[found]
                    if found.any():
                        if not copied:
                            alive, copied = alive.copy(), True
                        alive[start + at[found]] = False
                old = delta.get(owner)
                kept = [old.take(~np.isin(old.keys, gone_keys))] if old is not None else []
                latest = {row.key: row for row in rows}  # the last write of a key in one batch wins
                merged = _Rows.concat([*kept, _Rows.of(list(latest.values()), self.dim)], self.dim)
                delta_rows += len(merged.keys) - (len(old.keys) if old is not None else 0)
                if len(merged.keys):
                    delta[owner] = merged.take(np.argsort(merged.keys, kind="stable"))
                else:
                    delta.pop(owner, None)
            self._state = replace(state, alive=alive, delta=delta, delta_rows=delta_rows)
            if delta_rows > max(self._min_delta, self._delta_share * len(state.base.keys)):
                self._compact_locked()

    def compact(self) -> None:
        with self._write_lock:
            self._compact_locked()

    def _compact_locked(self) -> None:
        state = self._state
        parts: list[_Rows] = []
        ranges: dict[str, tuple[int, int]] = {}
        position = 0
        for owner in sorted(set(state.ranges) | set(state.delta)):
            pieces = []
            if owner in state.ranges:
                start, end = state.ranges[owner]
                live = np.flatnonzero(state.alive[start:end]) + start
                pieces.append(state.base.take(live))
            if owner in state.delta:
                pieces.append(state.delta[owner])
            rows = _Rows.concat(pieces, self.dim)
            if len(pieces) > 1:
                rows = rows.take(np.argsort(rows.keys, kind="stable"))
            if len(rows.keys):
                parts.append(rows)
                ranges[owner] = (position, position + len(rows.keys))
                position += len(rows.keys)
        base = _Rows.concat(parts, self.dim)
        self._state = _State(base, np.ones(len(base.keys), bool), ranges, {}, 0)

    # ---- reads --------------------------------------------------------------------------------------------

    def _owner_parts(self, owner: str) -> list[tuple[_Rows, np.ndarray | None]]:
        """The owner's base slice (with its live mask) and delta rows, as views: no copy of the matrix."""
        state = self._state
        parts: list[tuple[_Rows, np.ndarray | None]] = []
        if owner in state.ranges:
            start, end = state.ranges[owner]
            view = _Rows(state.base.keys[start:end], state.base.vectors[start:end], state.base.has_vector[start:end],
                         state.base.lat[start:end], state.base.lon[start:end])
            parts.append((view, state.alive[start:end]))
        if owner in state.delta:
            parts.append((state.delta[owner], None))
        return parts

    def similarities(self, owner: str, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(keys, cosine) of every live row of the owner that has a vector; exact."""
        keys, sims = [], []
        query = np.asarray(query, np.float32)
        for rows, alive in self._owner_parts(owner):
            usable = rows.has_vector if alive is None else (rows.has_vector & alive)
            # einsum, not BLAS gemv: OpenBLAS threads spin against tantivy's on small hosts (18 ms vs 2 ms here)
            scores = np.einsum("ij,j->i", rows.vectors, query)
            if not usable.all():
                index = np.flatnonzero(usable)
                keys.append(rows.keys[index])
                sims.append(scores[index])
            else:
                keys.append(rows.keys)
                sims.append(scores)
        if not keys:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        return np.concatenate(keys), np.concatenate(sims)

    def within(self, owner: str, lat: float, lon: float, km: float) -> np.ndarray:
        """Keys of the owner's live rows at most `km` from (lat, lon): a bounding box first, then haversine."""
        dlat = math.degrees(km / EARTH_RADIUS_KM)
        cos_lat = math.cos(math.radians(lat))
        dlon = 180.0 if cos_lat < 1e-9 else min(180.0, math.degrees(km / (EARTH_RADIUS_KM * cos_lat)))
        found = []
        for rows, alive in self._owner_parts(owner):
            box = (np.abs(rows.lat - lat) <= dlat) & (np.abs(((rows.lon - lon + 180.0) % 360.0) - 180.0) <= dlon)
            if alive is not None:
                box &= alive
            index = np.flatnonzero(box)
            if not len(index):
                continue
            found.append(rows.keys[index[haversine_km(lat, lon, rows.lat[index], rows.lon[index]) <= km]])
        return np.concatenate(found) if found else np.empty(0, np.int64)

    def rows(self, owner: str) -> int:
        return sum(int(len(r.keys) if a is None else a.sum()) for r, a in self._owner_parts(owner))

    @property
    def nbytes(self) -> int:
        state = self._state
        return int(state.base.vectors.nbytes + sum(d.vectors.nbytes for d in state.delta.values()))


def haversine_km(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    phi1, phi2 = math.radians(lat), np.radians(lats)
    dphi = phi2 - phi1
    dlmb = np.radians(lons - lon)
    a = np.sin(dphi / 2) ** 2 + math.cos(phi1) * np.cos(phi2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
