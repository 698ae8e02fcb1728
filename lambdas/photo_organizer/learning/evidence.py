"""What a model's answers on the judged examples add up to: the weighted tag macro-F1 and the per-example counts
(rows of HeldOutEvidence) the promotion gate resamples. Pure: sagemaker/training_core.py's evaluation makes the
predictions (out of fold for the candidate, as-is for the approved model and the untrained baseline) and hands them
here."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from photo_organizer.learning.examples import TaggingExample

# A weak label's share in the gate's tag F1 (explicit answers count 1). Weak labels (a tag of the owner's vocabulary
# left as analysis had it on a reviewed photo) agree with the untrained behaviour by construction, so at full weight
# they favour the baseline over any model that learnt from corrections; at none, a model that suggests a tag on
# every photo would go unpunished.
WEAK_EVAL_WEIGHT = 0.25


def label_weight(row: TaggingExample, tag: str, weak_weight: float = WEAK_EVAL_WEIGHT) -> float:
    return 1.0 if row.weights.get(tag, 1.0) >= 1.0 else weak_weight


def tag_labels(rows: Sequence[TaggingExample]) -> list[str]:
    """The gate's labels for tags: one per (owner, tag) any example has a target for."""
    return sorted({f"{r.owner}/{tag}" for r in rows for tag in r.targets})


def positive_labels(rows: Sequence[TaggingExample], weak_weight: float = WEAK_EVAL_WEIGHT) -> int:
    return sum(1 for r in rows for tag, value in r.targets.items() if value and label_weight(r, tag, weak_weight))


def tag_count_rows(rows: Sequence[TaggingExample], predicted: Sequence[set[str]], labels: Sequence[str],
                   weak_weight: float = WEAK_EVAL_WEIGHT) -> list[list[float]]:
    """Per example and (owner/tag) label: the weighted [example, label, tp, fp, fn] it adds to weighted_macro_f1's
    counts (nothing for a true negative)."""
    index = {label: k for k, label in enumerate(labels)}
    out = []
    for i, (row, guess) in enumerate(zip(rows, predicted)):
        for tag, value in sorted(row.targets.items()):
            weight = label_weight(row, tag, weak_weight)
            if weight <= 0 or not (value or tag in guess):
                continue
            counts = [0.0, 0.0, 0.0]
            counts[0 if value and tag in guess else 1 if tag in guess else 2] = weight
            out.append([i, index[f"{row.owner}/{tag}"], *counts])
    return out


def weighted_macro_f1(rows: Sequence[TaggingExample], predicted: Sequence[set[str]],
                      weak_weight: float = WEAK_EVAL_WEIGHT) -> dict:
    """Per (owner, tag): weighted true/false positives and false negatives over the labelled targets, F1 each,
    averaged over the tags with any weight (learning.metrics.macro_f1 with label weights)."""
    counts: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for row, guess in zip(rows, predicted):
        for tag, value in row.targets.items():
            weight = label_weight(row, tag, weak_weight)
            if weight <= 0 or not (value or tag in guess):
                continue
            c = counts[f"{row.owner}/{tag}"]
            c[0 if value and tag in guess else 1 if tag in guess else 2] += weight
    per_tag = {tag: 2 * c[0] / (2 * c[0] + c[1] + c[2]) for tag, c in sorted(counts.items())}
    tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
    return {
        "macro_f1": sum(per_tag.values()) / len(per_tag) if per_tag else 0.0,
        "micro_f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "per_tag": per_tag,
        "tags": len(per_tag),
    }


def pair_count_rows(truth: Sequence[bool], said: Sequence[bool]) -> list[list[float]]:
    """Per pair, the [pair, 0, tp, fp, fn] it adds to the "same person" F1 (nothing for a true negative)."""
    return [[i, 0, float(t and s), float(s and not t), float(t and not s)]
            for i, (t, s) in enumerate(zip(truth, said)) if t or s]
