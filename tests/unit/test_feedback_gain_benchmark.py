"""Smoke test of benchmarks/feedback_gain.py at a tiny size: it runs end to end on real photos (the local
analyzer) and prints one row per strategy and budget plus the checks. Shape only: the numbers are the
benchmark's to report, not this test's to judge."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from benchmarks import feedback_gain

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_library(tmp_path_factory):
    assert feedback_gain.LABEL_MODEL.is_file(), "run `make label-model` (make test does) to export the label model"
    photos = feedback_gain.source_photos(4)
    return feedback_gain.build_library(photos, 3, hard_copies=1, cache=tmp_path_factory.mktemp("analyses"),
                                       progress=False)


def test_the_library_is_real_photos_augmented_and_analysed_with_a_hidden_truth(tiny_library):
    with_people = [p for p in feedback_gain.source_photos(4) if feedback_gain.TRUTH[p.stem][1]]
    expected = 4 * 3 + len(with_people)  # three variants each, one degraded copy of each photo with a person
    assert len(tiny_library) == expected and len({e.photo_id for e in tiny_library}) == expected
    assert all(e.truth for e in tiny_library)
    assert any(e.faces for e in tiny_library) and any(e.analysis.result.labels for e in tiny_library)
    assert {e.base for e in tiny_library} == {p.stem for p in feedback_gain.source_photos(4)}


def test_tiny_run_prints_one_row_per_strategy_and_budget_and_every_check(tiny_library):
    report = feedback_gain.benchmark(tiny_library, budgets=(0, 4, 8), retrain_every=4, random_seeds=1,
                                     min_examples=1)
    assert [(r["strategy"], r["n"]) for r in report.rows] == [
        ("queue", 0), ("queue", 4), ("queue", 8), ("random", 0), ("random", 4), ("random", 8)]
    for row in report.rows:
        assert 0.0 <= row["tag_macro_f1"] <= 1.0 and 0.0 <= row["face_pair_f1"] <= 1.0
    # No answer yet: both strategies stand at the same untrained baseline.
    assert report.rows[0]["tag_macro_f1"] == report.rows[3]["tag_macro_f1"]
    assert {"monotone queue tag_macro_f1", "monotone random face_pair_f1", "regressions after a promotion",
            "queue N to reach random@4 tag_macro_f1", "queue N to reach random@4 face_pair_f1"} <= set(report.checks)
    out = io.StringIO()
    feedback_gain.print_report(report, out)
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"strategy\s+N\s+tag macro-F1\s+face pair F1", lines[0])
    table = [line.split() for line in lines[1:7]]
    assert [(cells[0], int(cells[1])) for cells in table] == [(r["strategy"], r["n"]) for r in report.rows]
    assert all(len(cells) == 4 for cells in table)
