"""The bookkeeping of benchmarks/load.py (benchmarks/load_accounting.py and the scenario plans): what counts as
lost, doubled or leaked, percentiles and the memory slope. No server and no timing: the benchmark reports those."""

from __future__ import annotations

import pytest

from benchmarks import load, load_accounting
from benchmarks.load_accounting import UploadTally


def test_percentile_is_nearest_rank():
    samples = list(range(1, 101))
    assert load_accounting.percentile(samples, 95) == 95
    assert load_accounting.percentile(samples, 50) == 50
    assert load_accounting.percentile([7.0], 95) == 7.0
    assert load_accounting.percentile(samples[::-1], 100) == 100


def test_slope_of_a_straight_line_and_of_flat_noise():
    assert load_accounting.least_squares_slope([(0, 1), (1, 3), (2, 5)]) == pytest.approx(2.0)
    assert load_accounting.least_squares_slope([(0, 5), (1, 4), (2, 6), (3, 5)]) == pytest.approx(0.2)
    assert load_accounting.least_squares_slope([(1, 1)]) == 0.0
    assert load_accounting.least_squares_slope([(1, 1), (1, 9)]) == 0.0


def test_rss_slope_is_in_mb_per_minute_and_leaves_out_the_warm_up():
    growing = [(t, 100_000_000 + 2_000_000 * t / 60) for t in range(0, 600, 10)]  # 2 MB per minute
    assert load_accounting.rss_slope_mb_per_min(growing) == pytest.approx(2.0)
    # a jump while caches fill in the first quarter, flat after: no growth
    warming = [(t, 300_000_000 if t > 60 else 100_000_000 + t * 3_000_000) for t in range(0, 600, 10)]
    assert load_accounting.rss_slope_mb_per_min(warming) == pytest.approx(0.0)


def test_upload_audit_counts_lost_wrong_unlisted_and_extra():
    tally = UploadTally()
    for photo_id, status in [("a", "READY"), ("b", "READY"), ("c", "REJECTED"), ("d", "READY"), ("e", "DUPLICATE")]:
        tally.expect(photo_id, status)
    tally.failed_requests = 1
    statuses = {"a": "READY", "b": "PENDING_UPLOAD", "c": "READY", "e": "DUPLICATE"}  # d never came back
    audit = tally.audit(statuses, listed=["a", "c", "a", "zz"])
    assert audit["uploaded"] == 5
    assert audit["lost"] == 3  # b pending, d missing, one failed request
    assert audit["wrong_status"] == 1  # c should have been rejected
    assert audit["unlisted"] == 0
    assert audit["listed_twice"] == 1 and audit["extra"] == 1
    assert audit["status_ready"] == 2 and audit["status_missing"] == 1


def test_a_ready_photo_missing_from_the_listing_is_counted():
    tally = UploadTally()
    tally.expect("a", "READY")
    assert tally.audit({"a": "READY"}, listed=[])["unlisted"] == 1
    assert tally.audit({"a": "READY"}, listed=["a"]) == {
        "uploaded": 1, "lost": 0, "wrong_status": 0, "unlisted": 0, "listed_twice": 0, "extra": 0, "status_ready": 1,
    }


def test_cross_tenant_hits_count_other_owners_and_unknown_photos():
    owner_of = {"p1": "ana", "p2": "ana", "p3": "ben"}
    assert load_accounting.cross_tenant_hits("ana", ["p1", "p2"], owner_of) == 0
    assert load_accounting.cross_tenant_hits("ana", ["p1", "p3", "nobody's"], owner_of) == 2


def test_exactly_once_compares_each_count():
    result = load_accounting.exactly_once({"ready": 8, "dead letters": 0}, {"ready": 9})
    assert result == {"ready": (8, 9, False), "dead letters": (0, -1, False)}
    assert all(ok for *_, ok in load_accounting.exactly_once({"x": 1}, {"x": 1}).values())


def test_report_says_fail_when_any_check_fails():
    checks = [load_accounting.Check("lost", "0", "0", True), load_accounting.Check("p95 ms", 180.0, "< 150", False)]
    text = load_accounting.report("title", checks, {"wall": "1.0 s"})
    assert "180.0" in text and text.splitlines()[2].endswith("FAIL") and text.endswith("overall: FAIL")


def test_upload_plan_has_one_repeated_pair_per_user_and_a_truncated_photo_every_tenth_user():
    plan = load.plan_user_uploads(10, 6)
    expected = [e for _, _, e in plan]
    assert expected.count("PAIR") == 1 and expected.count("REJECTED") == 1
    assert plan[-1][1] == plan[0][1]  # the pair: same bytes as the first photo
    assert len({data for _, data, _ in plan}) == 5
    assert "REJECTED" not in [e for _, _, e in load.plan_user_uploads(3, 6)]


def test_generated_photos_are_deterministic_and_unique_per_seed():
    assert load.small_jpeg(1) == load.small_jpeg(1)
    assert load.small_jpeg(1) != load.small_jpeg(2)
    assert load.truncated(load.small_jpeg(1)) == load.small_jpeg(1)[: len(load.small_jpeg(1)) // 2]


def test_repeated_uploads_reuse_an_earlier_unique_photo_of_the_same_owner():
    for owners, unique, uploads in [(10, 800, 900), (10, 80, 90), (3, 50, 61)]:
        for k in range(unique, uploads):
            seed = load.repeated_seed(k, owners, unique)
            assert 0 <= seed < unique and seed % owners == k % owners
