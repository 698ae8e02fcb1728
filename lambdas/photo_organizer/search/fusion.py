"""Reciprocal rank fusion: merge ranked lists without comparing their scores (BM25 and cosine live on
different scales). Pure; both SearchIndex adapters rank hybrid results with `hybrid_ranking`, so that they
agree on the scores and on the order of ties: (fused score desc, sort_time desc, photo_id asc).

score(d) = sum over lists containing d of 1 / (k + rank), rank starting at 1 (Cormack et al., k = 60).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from itertools import groupby
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

RRF_K = 60
# Meaning-only hits (found by the vector side alone) come after every exact (keyword) hit, and only when the exact
# hits are fewer than FEW_EXACT_HITS: a query whose precise answer exists is not diluted by look-alikes. Fused
# scores of exact hits carry EXACT_TIER (RRF scores are < 1), so the tier survives paging by score.
FEW_EXACT_HITS = 5
# The vector list's weight in the fusion: exact hits keep the keyword order and meaning only breaks their ties
# (neighbouring RRF ranks differ by ~1/60^2, so any larger weight lets meaning reorder exact answers: on the
# relevance benchmark "coins" put the page that mentions coins above the photo of coins). Meaning-only hits,
# below the exact ones, are ordered by similarity.
MEANING_WEIGHT = 0.01
EXACT_TIER = 1.0
# Cosine similarity below which a photo is not a meaning match at all (all-MiniLM-L6-v2 on describe() texts):
# calibrated by benchmarks/relevance.py on real photos (it prints the similarities of relevant and irrelevant
# photos); the local index filters on it, OpenSearch asks knn for min_score = (1 + floor) / 2 (cosinesimil).
# On the benchmark's 23 photos: irrelevant photo/query pairs median 0.06, p90 0.20, p99 0.36; the relevant ones'
# median 0.14 (the local analyser describes many photos poorly). The best-F1 floor, 0.39, lost "pagoda" and
# "temple by the lake", whose answers sit at 0.30-0.39; meaning-only hits show only below exact ones and only when
# those are few, so recall weighs more than F1 here: 0.30 keeps them and lets in ~3% of irrelevant pairs.
# Re-measured with file names' words in the descriptions (search.describe, DESCRIPTION_VERSION 2): irrelevant
# median 0.085, p90 0.21, p99 0.36, max 0.38; relevant median 0.37, min 0.23; best-F1 floor 0.41, which would lose
# "space shuttle" (its astronaut at 0.34) for the same reason: 0.30 stays.
MEANING_FLOOR = 0.30
# The last tie-breaker of every search order of both indexes (NEWEST, RELEVANCE, hybrid): photo ids ascending. The
# local index and hybrid_ranking compare ids as strings, ascending; OpenSearch sorts the keyword field the same way
# (UTF-8 byte order = code point order) when asked for this order.
PHOTO_ID_TIE_ORDER = "asc"


def reciprocal_rank_fusion(
    rankings: Sequence[Iterable[K]], *, k: int = RRF_K, weights: Sequence[float] | None = None
) -> dict[K, float]:
    """Fused score per item. An item repeated within one list counts at its best rank only."""
    if k < 0:
        raise ValueError("k must be >= 0")
    scores: dict[K, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        seen: set[K] = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return scores


def hybrid_ranking(
    keyword: Sequence[K],
    semantic: Sequence[K],
    *,
    sort_time: Callable[[K], int],
    photo_id: Callable[[K], str],
    k: int = RRF_K,
    meaning_weight: float = MEANING_WEIGHT,
) -> list[tuple[K, float]]:
    """The hybrid order of both indexes: the keyword and the vector top lists fused by RRF, best first; equal
    scores newest first (sort_time), then by photo id ascending. Photo ids are asked for only where score and
    time tie (in the local index a photo id costs a document read). Exact hits first (EXACT_TIER); meaning-only
    hits follow only when the exact ones are few (meaning_only_allowed)."""
    scores = reciprocal_rank_fusion([keyword, semantic], k=k, weights=(1.0, meaning_weight))
    exact = set(keyword)
    allowed = meaning_only_allowed(len(exact))
    scores = {item: score + EXACT_TIER if item in exact else score
              for item, score in scores.items() if allowed or item in exact}
    by_score_and_time = sorted(scores.items(), key=lambda pair: (-pair[1], -sort_time(pair[0])))
    ranked: list[tuple[K, float]] = []
    for _, tied in groupby(by_score_and_time, key=lambda pair: (pair[1], sort_time(pair[0]))):
        group = list(tied)
        ranked += sorted(group, key=lambda pair: photo_id(pair[0])) if len(group) > 1 else group
    return ranked


def meaning_only_allowed(exact_hits: int) -> bool:
    return exact_hits < FEW_EXACT_HITS


def knn_min_score(floor: float = MEANING_FLOOR) -> float:
    """OpenSearch's cosinesimil score for a cosine similarity: (1 + cos) / 2."""
    return round((1.0 + floor) / 2.0, 6)
