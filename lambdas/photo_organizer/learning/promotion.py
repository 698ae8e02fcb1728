"""The promotion rule, one copy for every backend: the local RetrainService calls it, evaluate.py writes its
decision into evaluation.json (the pipeline's ConditionStep reads that decision), the benchmark replays it.

A candidate replaces the approved model only when it is better on the SAME held-out data by more than that data's
noise: the point gain must reach the margin AND the candidate must be better in all but LOWER_QUANTILE of the
resamples of a paired bootstrap of the gain, a tie counting half (mid_p_not_better: the gain is discrete, and two
models that differ on a few photos tie in every resample that misses them). The bootstrap resamples the held-out
examples (the same resample for both models) and recomputes each metric on each resample (macro-F1 is not a sum
over examples), so the required gain grows as the held-out set shrinks: a 0.011 gain on 43 photos was noise (it
fell on the hidden truth), a 0.14 gain on 43 photos is not. It also needs enough of each answer the metric
depends on: same-person AND different-person pairs for faces (a matcher judged on 3 same-person pairs once passed
and then fell from 0.98 to 0.35), positive labels for tags.
Anything else (worse, equal, within noise, too little to judge, nothing trained) keeps the approved model, and
says what was measured.

The evidence is per held-out example: for each example and label (an owner's tag; "same person" for faces), the
(weighted) true positive, false positive and false negative it adds for each model. evaluation.json carries it
(section["held_out"]), so decide() re-judges exactly what evaluate.py judged.

"Held out" is from the candidate's side: evaluate.py judges it cross-fitted (learning.cross_fitting), so EVERY
labelled example is held out from the fold model that predicts it, and the evidence pools all of them (a held-out
quarter of one library's feedback, <= ~50 photos, was too few for this bootstrap to see any gain). The approved
model is judged as it is on the same examples, in sample for those it was fitted on: that flatters it, so the rule
errs towards keeping it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

DEFAULT_MARGIN = 0.01
DEFAULT_MIN_EXAMPLES = 10
DEFAULT_MIN_EACH_ANSWER = 10  # of each answer kind the metric depends on (REQUIRED_ANSWERS)
RESAMPLES = 1000
LOWER_QUANTILE = 0.05
_CELLS = 2_000_000
SEED = 0  # the gate is deterministic: the same evaluation always gets the same decision
METRIC = {"tagging": "macro_f1", "faces": "pair_f1"}
EXAMPLES = {"tagging": "examples", "faces": "pairs"}
SAME_PERSON, DIFFERENT_PERSON, POSITIVE_TAGS = "same-person pairs", "different-person pairs", "positive tag labels"
REQUIRED_ANSWERS = {"tagging": (POSITIVE_TAGS,), "faces": (SAME_PERSON, DIFFERENT_PERSON)}


@dataclass(frozen=True)
class HeldOutEvidence:
    """Both models' per-example counts on the same held-out examples: rows of (example, label, tp, fp, fn)."""

    examples: int
    labels: tuple[str, ...]
    candidate: np.ndarray  # (rows, 5): example index, label index, tp, fp, fn (weights)
    approved: np.ndarray
    answers: Mapping[str, int] = field(default_factory=dict)  # e.g. {"same-person pairs": 12, ...}

    @classmethod
    def build(cls, examples: int, labels: Sequence[str], candidate: Sequence[Sequence[float]],
              approved: Sequence[Sequence[float]], answers: Mapping[str, int]) -> HeldOutEvidence:
        return cls(examples, tuple(labels), _rows(candidate), _rows(approved), dict(answers))

    def to_json(self) -> dict:
        return {
            "examples": self.examples,
            "labels": list(self.labels),
            "answers": dict(self.answers),
            "candidate": [_row_json(r) for r in self.candidate],
            "approved": [_row_json(r) for r in self.approved],
        }

    @classmethod
    def from_json(cls, body: Mapping) -> HeldOutEvidence:
        return cls.build(int(body["examples"]), body["labels"], body["candidate"], body["approved"],
                         {str(k): int(v) for k, v in (body.get("answers") or {}).items()})


def _rows(rows: Sequence[Sequence[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64).reshape(-1, 5)


def _row_json(row: np.ndarray) -> list:
    return [int(row[0]), int(row[1]), *(float(v) for v in row[2:])]


def macro_f1_of_counts(rows: np.ndarray, labels: int, multiplicity: np.ndarray) -> np.ndarray:
    """Macro-F1 (over the labels with any count) for each row of `multiplicity` (resamples x examples: how many
    times each example is drawn). With one label it is that label's F1 (face pair F1). Returns (resamples,)."""
    if rows.size == 0 or labels == 0:
        return np.zeros(multiplicity.shape[0])
    order = np.argsort(rows[:, 1], kind="stable")
    rows = rows[order]
    label = rows[:, 1].astype(int)
    starts = np.flatnonzero(np.r_[True, label[1:] != label[:-1]])
    drawn = multiplicity[:, rows[:, 0].astype(int)]  # (resamples, rows)
    tp, fp, fn = (np.add.reduceat(drawn * rows[:, c], starts, axis=1) for c in (2, 3, 4))
    denominator = 2 * tp + fp + fn
    scored = denominator > 0
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(denominator), where=scored)
    counted = scored.sum(axis=1)
    return np.divide(f1.sum(axis=1), counted, out=np.zeros(len(counted)), where=counted > 0)


def bootstrap_gain(evidence: HeldOutEvidence, *, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """The candidate's gain over the approved model on each paired resample of the held-out examples."""
    n = evidence.examples
    if n == 0:
        return np.zeros(resamples)
    rng = np.random.default_rng(seed)
    k = len(evidence.labels)
    # a few million cells at a time: a large held-out set must not need gigabytes
    width = max(n, len(evidence.candidate), len(evidence.approved), 1)
    chunk = max(1, min(resamples, _CELLS // width))
    gains = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        draws = rng.integers(0, n, size=(size, n))
        offsets = (draws + np.arange(size)[:, None] * n).ravel()
        multiplicity = np.bincount(offsets, minlength=size * n).reshape(size, n).astype(np.float64)
        gains.append(macro_f1_of_counts(evidence.candidate, k, multiplicity)
                     - macro_f1_of_counts(evidence.approved, k, multiplicity))
    return np.concatenate(gains)


def mid_p_not_better(gains: np.ndarray) -> float:
    """The share of resamples in which the candidate is not better, a tie counting half (Lancaster's mid-p).

    The gain is discrete: two models that differ on a few examples tie exactly in every resample that misses those
    examples. Counting each tie as "not better" made the test stricter than its level: a candidate never worse in
    any resample but tied in 8.5 % of them (it differed from the approved model on a handful of photos) was refused
    at 5 % (benchmarks/feedback_gain.py, the queue at N=60: +0.056 on the hidden truth). For a continuous gain the
    mid-p is the plain share below zero, and the rule is the lower bound's."""
    ties = np.isclose(gains, 0.0, rtol=0.0, atol=1e-12)
    return float(np.mean((gains < 0) & ~ties) + 0.5 * np.mean(ties))


def point_scores(evidence: HeldOutEvidence) -> tuple[float, float]:
    """(candidate, approved) on the held-out set as it is (every example once)."""
    once = np.ones((1, evidence.examples))
    k = len(evidence.labels)
    return (float(macro_f1_of_counts(evidence.candidate, k, once)[0]),
            float(macro_f1_of_counts(evidence.approved, k, once)[0]))


@dataclass(frozen=True)
class Promotion:
    promote: bool
    reason: str
    candidate: float | None
    approved: float | None
    examples: int
    lower_bound: float | None = None  # LOWER_QUANTILE of the bootstrapped gain (None: not measured)
    answers: Mapping[str, int] = field(default_factory=dict)
    resamples: int = 0

    def to_json(self) -> dict:
        return {
            "promote": self.promote,
            "reason": self.reason,
            "candidate": self.candidate,
            "approved": self.approved,
            "examples": self.examples,
            "gain_lower_bound": self.lower_bound,
            "lower_quantile": LOWER_QUANTILE,
            "resamples": self.resamples,
            "answers": dict(self.answers),
        }


def should_promote(
    candidate: float | None,
    approved: float | None,
    margin: float = DEFAULT_MARGIN,
    min_examples: int = DEFAULT_MIN_EXAMPLES,
    *,
    examples: int,
    trained_owners: int | None = None,
    evidence: HeldOutEvidence | None = None,
    required_answers: Sequence[str] = (),
    min_each_answer: int = DEFAULT_MIN_EACH_ANSWER,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Promotion:
    """Promote iff something was trained, the held-out set has min_examples examples and min_each_answer of each
    required answer, candidate >= approved + margin, and the candidate is not better in fewer than LOWER_QUANTILE
    of the paired bootstrap's resamples, a tie counting half (mid_p_not_better; the LOWER_QUANTILE of the gain, the
    lower bound reported, is then >= 0).

    candidate None: the candidate failed or was not evaluated. approved: the approved model's score on the same
    held-out data (the untrained baseline's before the first promotion). evidence None: the per-example results
    are missing, so the gain's noise cannot be measured: refused."""
    answers = dict(evidence.answers) if evidence is not None else {}

    def refuse(reason: str, lower: float | None = None, drawn: int = 0) -> Promotion:
        return Promotion(False, reason, candidate, approved, examples, lower, answers, drawn)

    if candidate is None:
        return refuse("no candidate score: the training or evaluation did not produce one")
    if trained_owners == 0:
        return refuse("the candidate holds no trained model: no owner had enough feedback")
    if examples < min_examples:
        return refuse(f"too few held-out examples to judge: {examples} < {min_examples}")
    if evidence is None:
        return refuse("no per-example held-out results: the gain's noise cannot be measured")
    counts = ", ".join(f"{answers.get(name, 0)} {name}" for name in required_answers)
    for name in required_answers:
        if answers.get(name, 0) < min_each_answer:
            others = f" ({counts})" if len(required_answers) > 1 else ""
            return refuse(f"too few {name} held out to judge: {answers.get(name, 0)} < {min_each_answer}{others}")
    reference = 0.0 if approved is None else approved
    if candidate < reference + margin:
        return refuse(f"candidate {candidate:.4f} does not beat the approved {reference:.4f} by {margin:.4f}")
    gains = bootstrap_gain(evidence, resamples=resamples, seed=seed)
    lower = float(np.quantile(gains, LOWER_QUANTILE))
    worse = mid_p_not_better(gains)
    measured = (f"the {LOWER_QUANTILE:.0%} bootstrap lower bound of the gain {candidate - reference:+.4f} is "
                f"{lower:+.4f}, not better in {worse:.1%} of {resamples} paired resamples (ties half) of {examples} "
                f"held-out examples{'; ' + counts if counts else ''}")
    if worse >= LOWER_QUANTILE:
        return refuse(f"gain within the held-out noise: {measured}", lower, resamples)
    return Promotion(True, f"candidate {candidate:.4f} >= approved {reference:.4f} + {margin:.4f}; {measured}",
                     candidate, approved, examples, lower, answers, resamples)


def decide(
    evaluation: Mapping,
    kind: str,
    margin: float = DEFAULT_MARGIN,
    min_examples: int = DEFAULT_MIN_EXAMPLES,
    *,
    min_each_answer: int | None = None,
) -> Promotion:
    """should_promote on one kind's section of evaluation.json ({"candidate": {...}, "approved": {...},
    "held_out": HeldOutEvidence JSON, ...}). min_each_answer None: what evaluate.py was given (evaluation["gate"]),
    else DEFAULT_MIN_EACH_ANSWER."""
    if min_each_answer is None:
        min_each_answer = int((evaluation.get("gate") or {}).get("min_each_answer", DEFAULT_MIN_EACH_ANSWER))
    section = evaluation.get(kind) or {}
    metric = METRIC[kind]
    candidate = (section.get("candidate") or {}).get(metric)
    approved = (section.get("approved") or {}).get(metric)
    held_out = section.get("held_out")
    return should_promote(
        candidate,
        approved,
        margin,
        min_examples,
        examples=int(section.get(EXAMPLES[kind], 0)),
        trained_owners=(section.get("candidate") or {}).get("owners"),
        evidence=HeldOutEvidence.from_json(held_out) if held_out else None,
        required_answers=REQUIRED_ANSWERS[kind],
        min_each_answer=min_each_answer,
    )
