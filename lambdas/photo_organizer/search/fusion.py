"""Reciprocal rank fusion: merge ranked lists without comparing their scores (BM25 and cosine live on
different scales). Pure; both SearchIndex adapters use it so hybrid results agree.

score(d) = sum over lists containing d of 1 / (k + rank), rank starting at 1 (Cormack et al., k = 60).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

RRF_K = 60


def reciprocal_rank_fusion(rankings: Sequence[Iterable[K]], *, k: int = RRF_K) -> dict[K, float]:
    """Fused score per item. An item repeated within one list counts at its best rank only."""
    if k < 0:
        raise ValueError("k must be >= 0")
    scores: dict[K, float] = {}
    for ranking in rankings:
        seen: set[K] = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return scores


def fuse(rankings: Sequence[Sequence[K]], *, k: int = RRF_K) -> list[tuple[K, float]]:
    """Items by fused score, best first; equal scores keep the order of first appearance (list by list), so the
    result is deterministic. Callers with a domain tie-break (recency) sort the scores themselves."""
    scores = reciprocal_rank_fusion(rankings, k=k)
    return sorted(scores.items(), key=lambda item_score: -item_score[1])
