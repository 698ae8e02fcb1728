"""What a model's answers on the judged examples add up to: the weighted tag macro-F1 and the per-example counts
(rows of HeldOutEvidence) the promotion gate resamples. Pure: sagemaker/training_core.py's evaluation makes the
predictions (out of fold for the candidate, as-is for the approved model and the untrained baseline) and hands them
here."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from photo_organizer.learning.examples import TaggingExample, added_tags, weak_trust

# A weak label's share in the gate's tag F1 (explicit answers count 1). Weak labels (a tag of the owner's vocabulary
# left as analysis had it on a reviewed photo) agree with the untrained behaviour by construction, so at full weight
# they favour the baseline over any model that learnt from corrections; at none, a model that suggests a tag on
# every photo would go unpunished.
# A weak positive also counts only as far as the owner's own answers about its tag back it (judged_trust).
WEAK_EVAL_WEIGHT = 0.25
Trust = Mapping[tuple, float]  # (owner, tag) for weak positives, (owner, tag, 0) for weak negatives


def label_weight(row: TaggingExample, tag: str, weak_weight: float = WEAK_EVAL_WEIGHT,
                 trust: Trust | None = None) -> float:
    """1 for what the owner said; a weak label's share: WEAK_EVAL_WEIGHT times, for a weak positive, its tag's trust
    ((owner, tag) in `trust`, judged_trust) and, for a weak negative, its trust under the key (owner, tag, 0)
    (judged_trust puts 0 there for a tag the owner adds themselves)."""
    if not row.is_weak(tag):
        return 1.0
    key = (row.owner, tag) if row.targets.get(tag) else (row.owner, tag, 0)
    return weak_weight * (trust or {}).get(key, 1.0)


def judged_trust(rows: Sequence[TaggingExample]) -> Trust:
    """(owner, tag) -> the share of a weak positive the gate counts, for the tags the owner rejected where
    analysis put them: the share they kept where they were asked, confirmed / (confirmed + rejected), over every
    judged example (learning.examples.weak_trust without the training's prior; 1 for a tag not listed).
    (owner, tag, 0) -> 0, the share of a weak negative, for the tags the owner added where analysis had not put
    them (judged_negative_trust).

    Without the prior: the training needs the weak positives of a tag the owner only ever rejected to rank the
    photos it may still fit (a "mammal" rejected on blurred faces, never asked about on cats), but the gate scores
    what is known, and nothing says the owner keeps such a tag anywhere. Counted even at a small share, those
    weak "kept" labels gave the analysis that keeps the tag everywhere a small F1 and the model that dropped it an
    F1 of 0: the gate preferred the tag the owner refused every time they were asked."""
    return {**weak_trust(rows, prior=0.0), **judged_negative_trust(rows)}


def judged_negative_trust(rows: Sequence[TaggingExample]) -> dict[tuple[str, str, int], float]:
    """(owner, tag, 0) -> 0 for the tags the owner added themselves somewhere analysis had not put them: the gate
    counts no weak "no" of such a tag.

    A reviewed photo without the owner's own tag is no answer about it: the owner answered one question about
    another tag. In the benchmark's library "white house" fits 47 of 88 photos and the owner added it to a few;
    counted, its weak "no"s on the reviewed photos it fits rewarded a candidate that suggested it less: the gate
    scored it 0.52 -> 0.64 and promoted it, and on the hidden truth it fell 0.84 -> 0.45. Its precision is judged
    by what the owner said of it: the suggestions they rejected."""
    return {(owner, tag, 0): 0.0 for owner, tag in added_tags(rows)}


def tag_labels(rows: Sequence[TaggingExample]) -> list[str]:
    """The gate's labels for tags: one per (owner, tag) any example has a target for."""
    return sorted({f"{r.owner}/{tag}" for r in rows for tag in r.targets})


def positive_labels(rows: Sequence[TaggingExample], weak_weight: float = WEAK_EVAL_WEIGHT,
                    trust: Trust | None = None) -> int:
    return sum(1 for r in rows for tag, value in r.targets.items()
               if value and label_weight(r, tag, weak_weight, trust))


def tag_count_rows(rows: Sequence[TaggingExample], predicted: Sequence[set[str]], labels: Sequence[str],
                   weak_weight: float = WEAK_EVAL_WEIGHT, trust: Trust | None = None) -> list[list[float]]:
    """Per example and (owner/tag) label: the weighted [example, label, tp, fp, fn] it adds to weighted_macro_f1's
    counts (nothing for a true negative)."""
    index = {label: k for k, label in enumerate(labels)}
    out = []
    for i, (row, guess) in enumerate(zip(rows, predicted)):
        for tag, value in sorted(row.targets.items()):
            weight = label_weight(row, tag, weak_weight, trust)
            if weight <= 0 or not (value or tag in guess):
                continue
            counts = [0.0, 0.0, 0.0]
            counts[0 if value and tag in guess else 1 if tag in guess else 2] = weight
            out.append([i, index[f"{row.owner}/{tag}"], *counts])
    return out


def weighted_macro_f1(rows: Sequence[TaggingExample], predicted: Sequence[set[str]],
                      weak_weight: float = WEAK_EVAL_WEIGHT, trust: Trust | None = None) -> dict:
    """Per (owner, tag): weighted true/false positives and false negatives over the labelled targets, F1 each,
    averaged over the tags with any weight (learning.metrics.macro_f1 with label weights)."""
    counts: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for row, guess in zip(rows, predicted):
        for tag, value in row.targets.items():
            weight = label_weight(row, tag, weak_weight, trust)
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
