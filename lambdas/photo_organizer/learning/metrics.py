"""The metrics the promotion gate compares: tag macro-F1 and face pair F1."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def f1(true_positives: int, false_positives: int, false_negatives: int) -> float:
    denominator = 2 * true_positives + false_positives + false_negatives
    return 1.0 if denominator == 0 else 2 * true_positives / denominator


def macro_f1(
    truth: Sequence[set[str]], predicted: Sequence[set[str]], tags: Iterable[str] | None = None
) -> dict:
    """F1 per tag over the examples, averaged over the tags with any true or predicted positive (a tag nobody has
    and nobody predicts says nothing). tags=None: every tag seen in truth or predictions. Returns
    {"macro_f1", "micro_f1", "per_tag": {tag: f1}, "tags": n}."""
    if len(truth) != len(predicted):
        raise ValueError("truth and predictions must have one tag set per example")
    scope = set(tags) if tags is not None else set().union(*truth, *predicted) if truth else set()
    counts = {tag: [0, 0, 0] for tag in scope}
    for real, guess in zip(truth, predicted):
        for tag in scope & (real | guess):
            c = counts[tag]
            if tag in real and tag in guess:
                c[0] += 1
            elif tag in guess:
                c[1] += 1
            else:
                c[2] += 1
    scored = {tag: f1(*c) for tag, c in counts.items() if any(c)}
    tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
    return {
        "macro_f1": sum(scored.values()) / len(scored) if scored else 0.0,
        "micro_f1": f1(tp, fp, fn) if (tp + fp + fn) else 0.0,
        "per_tag": dict(sorted(scored.items())),
        "tags": len(scored),
    }


def pair_f1(truth: Sequence[bool], predicted: Sequence[bool]) -> dict:
    """F1 of "same person" over face pairs, with precision and recall. {"pair_f1", "precision", "recall", "pairs"}."""
    if len(truth) != len(predicted):
        raise ValueError("truth and predictions must have one value per pair")
    tp = sum(1 for t, p in zip(truth, predicted) if t and p)
    fp = sum(1 for t, p in zip(truth, predicted) if p and not t)
    fn = sum(1 for t, p in zip(truth, predicted) if t and not p)
    return {
        "pair_f1": f1(tp, fp, fn) if (tp + fp + fn) else 0.0,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "pairs": len(truth),
    }


def mean_of(values: Mapping[str, float]) -> float:
    return sum(values.values()) / len(values) if values else 0.0
