"""Held-out metrics, the promotion rule and the review queue's ordering."""

from __future__ import annotations

import pytest

from photo_organizer.learning.metrics import macro_f1, pair_f1
from photo_organizer.learning.promotion import decide, should_promote
from photo_organizer.learning.uncertainty import interleave, margin, most_uncertain, uncertainty


def test_macro_f1_averages_the_tags_anyone_has_or_predicts():
    truth = [{"cat"}, {"cat", "school trip"}, set()]
    guess = [{"cat"}, {"cat"}, {"dog"}]
    result = macro_f1(truth, guess, tags={"cat", "school trip", "dog", "never"})
    assert result["per_tag"] == {"cat": 1.0, "dog": 0.0, "school trip": 0.0}
    assert result["macro_f1"] == pytest.approx(1 / 3) and result["tags"] == 3
    assert result["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))


def test_pair_f1_with_precision_and_recall():
    result = pair_f1([True, True, False, False], [True, False, True, False])
    assert result == {"pair_f1": 0.5, "precision": 0.5, "recall": 0.5, "pairs": 4}


@pytest.mark.parametrize(
    ("candidate", "approved", "examples", "owners", "promote", "reason"),
    [
        (0.80, 0.70, 50, 1, True, ">= approved"),
        (0.705, 0.70, 50, 1, False, "does not beat"),  # better, but within the margin
        (0.60, 0.70, 50, 1, False, "does not beat"),  # worse
        (0.90, 0.70, 9, 1, False, "too few held-out examples"),
        (None, 0.70, 50, 1, False, "no candidate score"),
        (0.90, 0.70, 50, 0, False, "no owner had enough feedback"),
        (0.50, None, 50, 1, True, ">= approved"),  # nothing to compare with: any trained score counts
    ],
)
def test_promotion_rule(candidate, approved, examples, owners, promote, reason):
    decision = should_promote(candidate, approved, examples=examples, trained_owners=owners)
    assert decision.promote is promote and reason in decision.reason


def test_decide_reads_an_evaluation_section():
    evaluation = {"faces": {"candidate": {"pair_f1": 0.95, "owners": 1}, "approved": {"pair_f1": 0.9}, "pairs": 40}}
    assert decide(evaluation, "faces").promote
    assert not decide(evaluation, "faces", margin=0.1).promote
    assert not decide(evaluation, "tagging").promote  # no section: no candidate score


def test_review_order_is_least_certain_first_and_stable():
    items = [("a", 0.97), ("b", 0.52), ("c", 0.30), ("d", 0.48), ("e", 0.02)]
    assert [k for k, _ in most_uncertain(items, lambda i: i[1])] == ["b", "d", "c", "a", "e"]
    assert [k for k, _ in most_uncertain(items, lambda i: i[1], limit=2)] == ["b", "d"]
    assert margin(0.5) == 0 and uncertainty(0.5) == 1 and uncertainty(1.0) == 0
    assert interleave(["f1", "f2", "f3"], ["t1"], limit=3) == ["f1", "t1", "f2"]
