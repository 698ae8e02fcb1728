"""Exact nearest-neighbour similarity edges between local face descriptors (dlib's 128-d vectors), per owner.

Blocked matrix products keep memory at `block x n` floats: a few thousand faces per owner take well under a
second. Faces are put in id order before any arithmetic so that the edges (down to the last bit of a
similarity) do not depend on the order the caller passes them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import numpy as np

from photo_organizer.people.models import (
    DEFAULT_THRESHOLD,
    FaceRef,
    SimilarityEdge,
    distance_from_similarity,
    similarities_from_distances,
)

DEFAULT_NEIGHBOURS: int | None = None
"""Edges kept per face; None keeps every pair above the threshold, which clustering needs to be exact.

A cap k makes the graph a k-nearest-neighbour graph: a person with many more than k faces then has most of its
own pairs missing, and average linkage splits it into fragments (measured: 150 faces at k=20 -> ~25 pieces).
Use a cap only as large as the biggest person, and tell clustering the same number (`neighbour_cap`)."""

Metric = Literal["euclidean", "cosine"]


def _similarities(rows: np.ndarray, all_: np.ndarray, sq_rows: np.ndarray, sq_all: np.ndarray, metric: Metric):
    dots = rows @ all_.T
    if metric == "cosine":
        return np.clip(dots, 0.0, 1.0)  # inputs are unit-normalised; opposite directions carry no evidence
    distance = np.sqrt(np.maximum(sq_rows[:, None] + sq_all[None, :] - 2.0 * dots, 0.0))
    return similarities_from_distances(distance)


def nearest_edges(
    face_ids: Sequence[str],
    descriptors: np.ndarray,
    *,
    k: int | None = DEFAULT_NEIGHBOURS,
    threshold: float = DEFAULT_THRESHOLD,
    metric: Metric = "euclidean",
    block: int = 1024,
) -> list[SimilarityEdge]:
    """The `k` most similar other faces of each face, kept when at least `threshold`; one edge per pair (the union
    of both ends' lists), sorted by (a, b). `k=None` keeps every pair above the threshold."""
    vectors = np.asarray(descriptors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != len(face_ids):
        raise ValueError(f"descriptors must be (n_faces, dims); got {vectors.shape} for {len(face_ids)} faces")
    if k is not None and k < 1:
        raise ValueError("k must be at least 1")
    if len(set(face_ids)) != len(face_ids):
        raise ValueError("face ids must be unique")
    if not np.isfinite(vectors).all():
        raise ValueError("descriptors contain NaN or infinity")
    order = sorted(range(len(face_ids)), key=face_ids.__getitem__)
    ids = [face_ids[i] for i in order]
    vectors = vectors[order]
    n = len(ids)
    if n < 2:
        return []
    if metric == "cosine":
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.where(norms == 0, 1.0, norms)
    elif metric == "euclidean":
        distance_from_similarity(threshold)  # validates the threshold early
    else:
        raise ValueError(f"unknown metric {metric!r}")
    squares = np.einsum("ij,ij->i", vectors, vectors)
    keep = n - 1 if k is None else min(k, n - 1)
    found_i, found_j, found_s = [], [], []
    for start in range(0, n, block):
        stop = min(start + block, n)
        sims = _similarities(vectors[start:stop], vectors, squares[start:stop], squares, metric)
        sims[np.arange(stop - start), np.arange(start, stop)] = -1.0  # never your own neighbour
        if keep < n - 1:
            cols = np.argpartition(-sims, keep - 1, axis=1)[:, :keep]
            values = np.take_along_axis(sims, cols, axis=1)
        else:
            cols, values = np.broadcast_to(np.arange(n), sims.shape), sims
        rows = np.broadcast_to(np.arange(start, stop)[:, None], cols.shape)
        hit = values >= threshold
        found_i.append(rows[hit]), found_j.append(cols[hit]), found_s.append(values[hit])
    i, j, s = np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_s)
    a, b = np.minimum(i, j), np.maximum(i, j)
    # one edge per pair: the larger of the two ends' values, pairs in (a, b) order
    order = np.lexsort((-s, b, a))
    a, b, s = a[order], b[order], s[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return [
        SimilarityEdge(ids[x], ids[y], min(1.0, v))
        for x, y, v in zip(a[first].tolist(), b[first].tolist(), s[first].tolist(), strict=True)
    ]


def edges_per_owner(
    faces: Iterable[FaceRef],
    descriptors: Mapping[str, np.ndarray],
    **options,
) -> dict[str, list[SimilarityEdge]]:
    """Edges computed separately for each owner: no edge ever joins two owners' faces."""
    by_owner: dict[str, list[str]] = {}
    for face in faces:
        if face.face_id in descriptors:
            by_owner.setdefault(face.owner, []).append(face.face_id)
    out: dict[str, list[SimilarityEdge]] = {}
    for owner in sorted(by_owner):
        ids = sorted(by_owner[owner])
        out[owner] = nearest_edges(ids, np.stack([descriptors[f] for f in ids]), **options) if ids else []
    return out
