"""Faces -> people on one owner's 5,000 synthetic faces of 300 people, against naive connected components.

Run: .venv/bin/python benchmarks/clustering.py            (about ten seconds on 2 cores)

Descriptors are 128-d and dlib-like (same person ~0.35 apart, different ~0.85; person sizes follow a Zipf-like
curve, 1..~400 faces). To make it a test of chaining, 2% of the faces are "look-alikes" placed between two
people and 3% are noisy (blurred/profile) faces. Both methods get the same edges (every pair above the
threshold) and the same rule that groups smaller than the minimum size are not people; the baseline is
connected components of that graph, measured in the same run. Prints pairwise precision/recall/F1 and times.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import networkx as nx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lambdas"))

from photo_organizer.people import FaceRef, attach_new_faces, cluster_people, nearest_edges  # noqa: E402

OWNER = "bench-owner"
N_FACES, N_PEOPLE, DIMS = 5000, 300, 128
LOOKALIKE_SHARE, NOISY_SHARE = 0.02, 0.03
MIN_CLUSTER_SIZE = 3
NOISE = 0.35 / 16


def make_library(seed: int = 1):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(N_PEOPLE, DIMS))
    centres *= np.sqrt(0.3) / np.linalg.norm(centres, axis=1, keepdims=True)
    weights = 1.0 / np.arange(1, N_PEOPLE + 1) ** 0.8
    sizes = np.maximum(1, np.round(weights / weights.sum() * N_FACES)).astype(int)
    truth = np.repeat(np.arange(N_PEOPLE), sizes)[:N_FACES]
    spread = rng.uniform(0.8, 1.2, size=N_PEOPLE)[truth]
    vectors = centres[truth] + rng.normal(size=(len(truth), DIMS)) * (NOISE * spread)[:, None]
    n = len(truth)
    noisy = rng.choice(n, int(NOISY_SHARE * n), replace=False)
    vectors[noisy] += rng.normal(scale=NOISE * 0.8, size=(len(noisy), DIMS))
    lookalikes = rng.choice(np.setdiff1d(np.arange(n), noisy), int(LOOKALIKE_SHARE * n), replace=False)
    other = rng.integers(0, N_PEOPLE, size=len(lookalikes))
    vectors[lookalikes] = (centres[truth[lookalikes]] + centres[other]) / 2 + rng.normal(
        scale=NOISE, size=(len(lookalikes), DIMS)
    )
    ids = [f"face-{i:05d}" for i in rng.permutation(n)]  # ids unrelated to identity
    created = datetime(2024, 1, 1, tzinfo=timezone.utc)
    refs = [
        FaceRef(face_id=f, photo_id=f"p-{f}", owner=OWNER, quality=float(q), created_at=created)
        for f, q in zip(ids, rng.uniform(0, 1, n), strict=True)
    ]
    return ids, vectors.astype(np.float32), dict(zip(ids, truth.tolist(), strict=True)), refs


def pairwise_scores(groups: list[set[str]], truth: dict[str, int]) -> tuple[float, float, float]:
    def same_pairs(counts):
        return sum(c * (c - 1) // 2 for c in counts)

    true_pairs = same_pairs(np.bincount(list(truth.values())))
    predicted = sum(len(g) * (len(g) - 1) // 2 for g in groups)
    correct = 0
    for g in groups:
        correct += same_pairs(np.bincount([truth[f] for f in g]))
    precision = correct / predicted if predicted else 1.0
    recall = correct / true_pairs
    return precision, recall, 2 * precision * recall / (precision + recall)


def main() -> None:
    ids, vectors, truth, refs = make_library()
    print(f"{len(ids)} faces of {len(set(truth.values()))} people, one owner")

    t = time.perf_counter()
    edges = nearest_edges(ids, vectors)
    t_edges = time.perf_counter() - t

    t = time.perf_counter()
    result = cluster_people(OWNER, refs, edges, [], [], min_cluster_size=MIN_CLUSTER_SIZE)
    t_cluster = time.perf_counter() - t
    ours = [set(p.face_ids) for p in result.people]

    t = time.perf_counter()
    graph = nx.Graph()
    graph.add_nodes_from(ids)
    graph.add_edges_from((e.a, e.b) for e in edges)
    naive = [c for c in nx.connected_components(graph) if len(c) >= MIN_CLUSTER_SIZE]
    t_naive = time.perf_counter() - t

    t = time.perf_counter()
    again = cluster_people(OWNER, reversed(refs), list(reversed(edges)), result.people, [],
                           min_cluster_size=MIN_CLUSTER_SIZE)
    t_rerun = time.perf_counter() - t
    assert again.people == result.people, "a re-run on the same faces must change nothing"

    held_out = set(ids[: len(ids) // 20])
    base = cluster_people(OWNER, [r for r in refs if r.face_id not in held_out], edges, [], [],
                          min_cluster_size=MIN_CLUSTER_SIZE)
    t = time.perf_counter()
    attached = attach_new_faces(base.people, [r for r in refs if r.face_id in held_out], edges, [])
    t_attach = time.perf_counter() - t
    placed = held_out - attached.unassigned_face_ids
    right = sum(
        1 for f in placed
        if np.bincount([truth[g] for g in attached.person_of(f).face_ids - held_out]).argmax() == truth[f]
    )

    p, r, f1 = pairwise_scores(ours, truth)
    pn, rn, f1n = pairwise_scores(naive, truth)
    print(f"edges: {len(edges)} pairs above threshold in {t_edges:.2f} s")
    print(f"ours : {len(ours):4d} people, {len(result.unassigned_face_ids):4d} unassigned, "
          f"precision {p:.3f} recall {r:.3f} F1 {f1:.3f}, {t_cluster:.2f} s (re-run with ids: {t_rerun:.2f} s)")
    print(f"naive: {len(naive):4d} people (connected components), "
          f"precision {pn:.3f} recall {rn:.3f} F1 {f1n:.3f}, {t_naive:.2f} s")
    print(f"ratio ours/naive: precision {p / pn:.2f}x, recall {r / rn:.2f}x, F1 {f1 / f1n:.2f}x, "
          f"time {t_cluster / t_naive:.1f}x")
    print(f"incremental: {len(held_out)} new faces, {len(placed)} attached ({right} to the right person) "
          f"in {t_attach:.2f} s")


if __name__ == "__main__":
    main()
