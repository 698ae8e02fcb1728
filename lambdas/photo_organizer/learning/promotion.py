"""The promotion rule, one copy for every backend: the local RetrainService calls it, evaluate.py writes its
decision into evaluation.json (the pipeline's ConditionStep reads that decision), the benchmark replays it.

A candidate replaces the approved model only when it is better by a margin on the SAME held-out data, judged on
enough held-out examples; anything else (worse, equal, too little to judge, nothing trained) keeps the approved
one, and says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_MARGIN = 0.01
DEFAULT_MIN_EXAMPLES = 10
METRIC = {"tagging": "macro_f1", "faces": "pair_f1"}
EXAMPLES = {"tagging": "examples", "faces": "pairs"}


@dataclass(frozen=True)
class Promotion:
    promote: bool
    reason: str
    candidate: float | None
    approved: float | None
    examples: int

    def to_json(self) -> dict:
        return {
            "promote": self.promote,
            "reason": self.reason,
            "candidate": self.candidate,
            "approved": self.approved,
            "examples": self.examples,
        }


def should_promote(
    candidate: float | None,
    approved: float | None,
    margin: float = DEFAULT_MARGIN,
    min_examples: int = DEFAULT_MIN_EXAMPLES,
    *,
    examples: int,
    trained_owners: int | None = None,
) -> Promotion:
    """Promote iff candidate >= approved + margin and examples >= min_examples (and something was trained).

    candidate None: the candidate failed or was not evaluated. approved: the approved model's score on the same
    held-out data (the untrained baseline's before the first promotion)."""

    def refuse(reason: str) -> Promotion:
        return Promotion(False, reason, candidate, approved, examples)

    if candidate is None:
        return refuse("no candidate score: the training or evaluation did not produce one")
    if trained_owners == 0:
        return refuse("the candidate holds no trained model: no owner had enough feedback")
    if examples < min_examples:
        return refuse(f"too few held-out examples to judge: {examples} < {min_examples}")
    reference = 0.0 if approved is None else approved
    if candidate < reference + margin:
        return refuse(f"candidate {candidate:.4f} does not beat the approved {reference:.4f} by {margin:.4f}")
    return Promotion(True, f"candidate {candidate:.4f} >= approved {reference:.4f} + {margin:.4f}",
                     candidate, approved, examples)


def decide(
    evaluation: Mapping, kind: str, margin: float = DEFAULT_MARGIN, min_examples: int = DEFAULT_MIN_EXAMPLES
) -> Promotion:
    """should_promote on one kind's section of evaluation.json ({"candidate": {...}, "approved": {...}, ...})."""
    section = evaluation.get(kind) or {}
    metric = METRIC[kind]
    candidate = (section.get("candidate") or {}).get(metric)
    approved = (section.get("approved") or {}).get(metric)
    return should_promote(
        candidate,
        approved,
        margin,
        min_examples,
        examples=int(section.get(EXAMPLES[kind], 0)),
        trained_owners=(section.get("candidate") or {}).get("owners"),
    )
