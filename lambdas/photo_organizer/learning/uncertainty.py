"""Uncertainty sampling for the review queue: ask first about what the current models are least sure of.

The certainty of a calibrated probability is its distance from 0.5: an answer about a 0.5 item halves the
model's doubt, one about a 0.98 item teaches almost nothing. Ties go to the item given first (callers pass
items in a stable order), so the queue does not reshuffle between requests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")


def margin(probability: float) -> float:
    """|p - 0.5|: 0 for the most uncertain, 0.5 for a certain answer."""
    return abs(float(probability) - 0.5)


def uncertainty(probability: float) -> float:
    """1 - 2 |p - 0.5|: 1 for p = 0.5, 0 for p in {0, 1} (what the review queue shows as a score)."""
    return 1.0 - 2.0 * margin(probability)


def entropy(probability: float) -> float:
    """Binary entropy in bits (same order as `uncertainty`, for whoever wants information)."""
    p = min(1.0, max(0.0, float(probability)))
    if p in (0.0, 1.0):
        return 0.0
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def most_uncertain(items: Iterable[T], probability: Callable[[T], float], limit: int | None = None) -> list[T]:
    """The items ordered by margin from 0.5, smallest first (stable), at most `limit`."""
    ranked = sorted(enumerate(items), key=lambda pair: (margin(probability(pair[1])), pair[0]))
    chosen = [item for _, item in ranked]
    return chosen if limit is None else chosen[: max(0, limit)]


def interleave(*queues: Sequence[T], limit: int | None = None) -> list[T]:
    """Round-robin over already-ordered queues (faces, tags), so one kind never crowds out the other."""
    out: list[T] = []
    for round_items in _rounds(queues):
        out.extend(round_items)
    return out if limit is None else out[: max(0, limit)]


def _rounds(queues: Sequence[Sequence[T]]):
    longest = max((len(q) for q in queues), default=0)
    for i in range(longest):
        yield [q[i] for q in queues if i < len(q)]
