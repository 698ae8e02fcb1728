"""The analysis job's pure transforms: planning, dedupe, rate limiting, back-off, captions, cost, run summary."""

import json
import random
import sys
import threading
import time
from datetime import date, datetime, timezone

import botocore.session
import pytest
from analyze_photos.transforms import (
    DEFAULT_TPS_PER_API,
    REKOGNITION_TIER1_PRICES,
    AnalysisSettings,
    BackoffStats,
    PhotoRecord,
    RunSummary,
    TokenBucket,
    call_with_backoff,
    compose_caption,
    dedupe,
    estimate_cost,
    hamming,
    needs_analysis,
    plan_calls,
    split_tps,
)
from botocore.validate import ParamValidator

from photo_organizer.analysis.models import ApiCall, Label
from photo_organizer.errors import ConfigurationError
from photo_organizer.models import PhotoStatus

READY = PhotoStatus.READY
SETTINGS = AnalysisSettings()


def photo(photo_id="p1", *, owner="o1", status=READY, sha="a" * 64, phash="0" * 16, version=0):
    return PhotoRecord(owner=owner, photo_id=photo_id, status=status, sha256=sha, phash=phash, analysis_version=version)


def label(name, confidence=95.0, parents=(), categories=()):
    return Label(name=name, confidence=confidence, parents=tuple(parents), categories=tuple(categories))


def flip(phash: str, bits: int, start: int = 0) -> str:
    """phash with `bits` bits flipped, spread over the word so they hit different dedupe blocks."""
    value = int(phash, 16)
    for i in range(bits):
        value ^= 1 << ((start + i * 13) % 64)
    return f"{value:016x}"


# ---- which photos, which calls --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "version", "current", "expected"),
    [
        (READY, 0, 1, True),
        (READY, 1, 2, True),
        (READY, 2, 2, False),
        (READY, 3, 2, False),
        (PhotoStatus.PENDING_UPLOAD, 0, 1, False),
        (PhotoStatus.REJECTED, 0, 1, False),
        (PhotoStatus.DUPLICATE, 0, 1, False),
    ],
)
def test_only_ready_photos_analysed_at_an_older_version_need_analysis(status, version, current, expected):
    assert needs_analysis(photo(status=status, version=version), current) is expected


def test_first_phase_pays_for_labels_only_whatever_the_consent():
    for consent in (True, False):
        assert plan_calls(photo(), None, SETTINGS, face_consent=consent) == [ApiCall.DETECT_LABELS]


def test_without_moderation_gating_every_photo_pays_for_moderation_in_the_first_phase():
    everywhere = AnalysisSettings(moderation_trigger_labels=None)
    assert plan_calls(photo(), None, everywhere, face_consent=False) == [
        ApiCall.DETECT_LABELS,
        ApiCall.DETECT_MODERATION_LABELS,
    ]
    assert plan_calls(photo(), [label("Mountain")], everywhere, face_consent=False) == []


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ([label("Person")], True),
        ([label("Bikini", parents=["Swimwear", "Clothing"])], True),  # an ancestor is enough
        ([label("Body Part")], True),
        ([label("Handgun", parents=["Gun", "Weapon"])], True),
        ([label("Wine Glass", parents=["Glass"]), label("Alcohol", parents=["Beverage"])], True),
        ([label("Person", confidence=30)], False),  # too unsure to pay for
        ([label("Mountain"), label("Lake")], False),
        ([label("Dog", parents=["Animal", "Pet"])], False),
        ([label("Dress", parents=["Clothing"])], False),  # clothing on its own holds no body
        ([], False),
    ],
    ids=["person", "swimwear", "body-part", "weapon", "alcohol", "unsure", "landscape", "pet", "dress", "none"],
)
def test_moderation_is_paid_for_only_when_labels_say_a_body_or_moderated_content_may_be_there(labels, expected):
    planned = plan_calls(photo(), labels, SETTINGS, face_consent=False)
    assert (ApiCall.DETECT_MODERATION_LABELS in planned) is expected


def test_without_face_gating_a_consenting_owner_gets_index_faces_in_the_first_phase():
    ungated = AnalysisSettings(face_trigger_labels=None)
    assert ApiCall.INDEX_FACES in plan_calls(photo(), None, ungated, face_consent=True)
    assert ApiCall.INDEX_FACES not in plan_calls(photo(), None, ungated, face_consent=False)
    assert ApiCall.INDEX_FACES not in plan_calls(photo(), [label("Person")], ungated, face_consent=True)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ([label("Document")], True),
        ([label("Receipt")], True),
        ([label("Street Sign", parents=["Sign", "Symbol"])], True),  # an ancestor is enough
        ([label("Brochure", categories=["Text and Documents"])], True),  # so is the category
        ([label("document", confidence=90)], True),  # case does not matter
        ([label("Document", confidence=40)], False),  # too unsure to pay for
        ([label("Beach"), label("Sea")], False),
        ([], False),
    ],
    ids=["document", "receipt", "ancestor", "category", "lowercase", "low-confidence", "beach", "no-labels"],
)
def test_text_is_detected_only_when_labels_say_the_photo_holds_text(labels, expected):
    planned = plan_calls(photo(), labels, SETTINGS, face_consent=False)
    assert (ApiCall.DETECT_TEXT in planned) is expected


def test_text_trigger_labels_are_configurable():
    whiteboards_only = AnalysisSettings(
        text_trigger_labels=frozenset({"Whiteboard"}), text_trigger_categories=frozenset()
    )
    assert plan_calls(photo(), [label("Whiteboard")], whiteboards_only, face_consent=False) == [ApiCall.DETECT_TEXT]
    assert plan_calls(photo(), [label("Document")], whiteboards_only, face_consent=False) == []


@pytest.mark.parametrize(
    ("labels", "consent", "expected"),
    [
        ([label("Person")], True, True),
        ([label("Selfie", parents=["Face", "Head", "Person"])], True, True),
        ([label("Person", confidence=55)], True, True),  # a missed face costs more than a wasted call
        ([label("Person")], False, False),  # no consent: never, whatever the labels
        ([label("Mountain")], True, False),
    ],
)
def test_faces_are_indexed_only_for_consenting_owners_when_a_person_may_be_there(labels, consent, expected):
    assert (ApiCall.INDEX_FACES in plan_calls(photo(), labels, SETTINGS, face_consent=consent)) is expected


def test_a_resumed_run_never_plans_a_call_already_made():
    done = {ApiCall.DETECT_LABELS, ApiCall.INDEX_FACES}
    assert plan_calls(photo(), None, SETTINGS, face_consent=True, already_done=done) == []
    both = [label("Person"), label("Poster")]
    assert plan_calls(photo(), both, SETTINGS, face_consent=True, already_done=done) == [
        ApiCall.DETECT_MODERATION_LABELS,
        ApiCall.DETECT_TEXT,
    ]


def test_a_photo_that_is_not_ready_gets_no_calls():
    assert plan_calls(photo(status=PhotoStatus.REJECTED), None, SETTINGS, face_consent=True) == []


def test_settings_that_make_no_sense_are_refused():
    with pytest.raises(ConfigurationError):
        AnalysisSettings(workers=0)
    with pytest.raises(ConfigurationError):
        AnalysisSettings(near_duplicate_max_distance=65)


# ---- dedupe --------------------------------------------------------------------------------------------------

BASE = "8f3c0a5e9b1d2c47"


def test_exact_copy_of_an_analysed_photo_copies_its_results():
    analysed = photo("p1", sha="a" * 64, phash=BASE, version=1)
    copy = photo("p2", sha="a" * 64, phash=flip(BASE, 30))  # same bytes: the hash alone decides
    assert dedupe([analysed, copy], current_version=1) == {"p2": "p1"}


@pytest.mark.parametrize(
    ("bits", "max_distance", "is_copy"), [(4, 4, True), (5, 4, False), (1, 0, False), (8, 8, True)]
)
def test_near_duplicates_are_copies_up_to_the_configured_distance(bits, max_distance, is_copy):
    analysed = photo("p1", sha="a" * 64, phash=BASE, version=1)
    near = photo("p2", sha="b" * 64, phash=flip(BASE, bits))
    assert hamming(BASE, near.phash) == bits
    expected = {"p2": "p1"} if is_copy else {}
    assert dedupe([analysed, near], current_version=1, max_distance=max_distance) == expected


def test_photos_of_another_owner_are_never_a_source_even_when_identical():
    mine = photo("p1", owner="ana", sha="a" * 64, phash=BASE, version=1)
    theirs = photo("p2", owner="ben", sha="a" * 64, phash=BASE)
    assert dedupe([mine, theirs], current_version=1) == {}


def test_copies_within_one_run_point_at_the_earliest_upload_which_is_analysed_itself():
    first = photo("p1", sha="a" * 64, phash=BASE)
    second = photo("p2", sha="a" * 64, phash=BASE)
    third = photo("p3", sha="c" * 64, phash=flip(BASE, 2))
    mapping = dedupe([third, second, first], current_version=1)
    assert mapping == {"p2": "p1", "p3": "p1"}


def test_exact_match_beats_a_nearer_looking_one_and_the_closest_near_match_wins():
    exact_source = photo("p1", sha="a" * 64, phash=flip(BASE, 3), version=1)
    near_source = photo("p2", sha="b" * 64, phash=BASE, version=1)
    far_source = photo("p3", sha="c" * 64, phash=flip(BASE, 3, start=5), version=1)
    exact_copy = photo("p4", sha="a" * 64, phash=BASE)
    near_copy = photo("p5", sha="d" * 64, phash=flip(BASE, 1))
    mapping = dedupe([exact_source, near_source, far_source, exact_copy, near_copy], current_version=1)
    assert mapping == {"p4": "p1", "p5": "p2"}


def test_near_duplicates_do_not_chain_into_unlike_photos():
    a = photo("p1", sha="a" * 64, phash=BASE, version=1)
    b = photo("p2", sha="b" * 64, phash=flip(BASE, 3))
    c = photo("p3", sha="c" * 64, phash=flip(flip(BASE, 3), 3, start=7))
    assert hamming(a.phash, c.phash) > 4
    assert dedupe([a, b, c], current_version=1) == {"p2": "p1"}


def test_photos_that_are_not_ready_are_neither_sources_nor_copies():
    rejected = photo("p1", sha="a" * 64, phash=BASE, status=PhotoStatus.REJECTED, version=1)
    ready = photo("p2", sha="a" * 64, phash=BASE)
    assert dedupe([rejected, ready], current_version=1) == {}


def test_photos_analysed_at_an_old_version_are_re_analysed_not_used_as_sources():
    stale = photo("p1", sha="a" * 64, phash=BASE, version=1)
    copy = photo("p2", sha="a" * 64, phash=BASE, version=0)
    assert dedupe([stale, copy], current_version=2) == {"p2": "p1"}  # both pending: the earlier one is the source


def test_indexed_near_duplicate_search_agrees_with_comparing_all_pairs():
    rng = random.Random(7)
    originals = [f"{rng.getrandbits(64):016x}" for _ in range(150)]
    photos = [photo(f"a{i:04d}", sha=f"{i:064x}", phash=h, version=1) for i, h in enumerate(originals)]
    for i in range(300):
        source = rng.choice(originals)
        value = int(source, 16)
        for bit in rng.sample(range(64), rng.randint(0, 6)):
            value ^= 1 << bit
        photos.append(photo(f"b{i:04d}", sha=f"{10_000 + i:064x}", phash=f"{value:016x}"))
    mapping = dedupe(photos, current_version=1)

    # Reference: the same rules, by brute force over every earlier source.
    expected, sources = {}, [p for p in photos if p.analysis_version >= 1]
    for p in sorted((p for p in photos if p.analysis_version < 1), key=lambda p: p.photo_id):
        best = min(((hamming(p.phash, s.phash), s.photo_id) for s in sources), default=(99, ""))
        if best[0] <= 4:
            expected[p.photo_id] = best[1]
        else:
            sources.append(p)
    assert mapping == expected
    assert 0 < len(mapping) < 300


# ---- token bucket and TPS split -------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_n_calls_take_n_over_rate_after_the_burst():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=10, burst=1, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(100):
        bucket.acquire()
    assert clock.now - start == pytest.approx(99 / 10)


def test_burst_is_served_at_once_after_idle_and_never_grows_past_burst():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=5, burst=5, clock=clock, sleep=clock.sleep)
    clock.now += 3600  # a long idle period still leaves only `burst` tokens
    waits = [bucket.acquire() for _ in range(7)]
    assert waits[:5] == [0.0] * 5
    assert waits[5] == pytest.approx(1 / 5)
    assert waits[6] == pytest.approx(1 / 5)  # each caller waits for its own token, not for the others


def test_threads_each_reserve_a_distinct_slot():
    clock = FakeClock()  # frozen: every thread asks at the same instant
    bucket = TokenBucket(rate_per_s=10, burst=1, clock=clock, sleep=lambda s: None)
    waits: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(25):
            wait = bucket.reserve()
            with lock:
                waits.append(wait)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to provoke lost updates
    try:
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert sorted(round(w, 6) for w in waits) == [round(i / 10, 6) for i in range(200)]


def test_threads_on_the_real_clock_do_not_exceed_the_rate():
    bucket = TokenBucket(rate_per_s=400, burst=1)
    start = time.monotonic()
    threads = [threading.Thread(target=lambda: [bucket.acquire() for _ in range(40)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start >= 159 / 400 * 0.95


def test_account_tps_is_split_evenly_across_workers():
    assert split_tps(50, 4) == 12.5
    assert split_tps(DEFAULT_TPS_PER_API[ApiCall.INDEX_FACES], 1) == 50
    with pytest.raises(ConfigurationError):
        split_tps(50, 0)
    with pytest.raises(ConfigurationError):
        TokenBucket(rate_per_s=0, burst=1)


def test_default_tps_table_names_every_paid_api():
    assert set(DEFAULT_TPS_PER_API) == set(ApiCall)


# ---- back-off -------------------------------------------------------------------------------------------------


class Throttled(Exception):
    pass


class Refused(Exception):
    pass


def flaky(failures: int, error=Throttled):
    calls = {"n": 0}

    def fn():
        calls["n"] += 1
        if calls["n"] <= failures:
            raise error("slow down")
        return "ok"

    return fn, calls


def is_throttle(exc: Exception) -> bool:
    return isinstance(exc, Throttled)


def test_throttled_twice_then_succeeds_after_two_jittered_waits():
    sleeps: list[float] = []
    fn, calls = flaky(2)
    stats = BackoffStats()
    result = call_with_backoff(
        fn, retryable=is_throttle, base=0.5, cap=10, rng=lambda: 0.5, sleep=sleeps.append, stats=stats
    )
    assert result.value == "ok" and result.attempts == 3 and result.throttles == 2
    assert sleeps == [0.25, 0.5]  # 0.5 * base * 2**attempt
    assert (stats.calls, stats.attempts, stats.throttles, stats.gave_up) == (1, 3, 2, 0)


def test_gives_up_after_max_attempts_and_raises_the_last_error():
    fn, calls = flaky(100)
    stats = BackoffStats()
    with pytest.raises(Throttled):
        call_with_backoff(fn, retryable=is_throttle, max_attempts=4, rng=lambda: 0.0, sleep=lambda s: None, stats=stats)
    assert calls["n"] == 4
    assert (stats.throttles, stats.gave_up) == (4, 1)


def test_an_error_that_is_not_retryable_is_raised_at_once_without_waiting():
    sleeps: list[float] = []
    fn, calls = flaky(1, error=Refused)
    with pytest.raises(Refused):
        call_with_backoff(fn, retryable=is_throttle, sleep=sleeps.append)
    assert calls["n"] == 1 and sleeps == []


def test_jitter_stays_within_the_exponential_envelope_and_the_cap():
    sleeps: list[float] = []
    rng = random.Random(3)
    fn, _ = flaky(11)
    call_with_backoff(
        fn, retryable=is_throttle, max_attempts=12, base=0.1, cap=2.0, rng=rng.random, sleep=sleeps.append
    )
    assert len(sleeps) == 11
    for attempt, slept in enumerate(sleeps):
        assert 0 <= slept < min(2.0, 0.1 * 2**attempt)
    assert len({round(s, 9) for s in sleeps}) == 11  # jittered, not a fixed schedule
    worst: list[float] = []
    fn, _ = flaky(11)
    call_with_backoff(fn, retryable=is_throttle, max_attempts=12, base=0.1, cap=2.0, rng=lambda: 0.999999,
                      sleep=worst.append)
    assert max(worst) <= 2.0


# ---- captions -------------------------------------------------------------------------------------------------

JULY = datetime(2024, 7, 14, 18, 30, tzinfo=timezone.utc)
BEACH = [label("Beach", 96), label("Sea", 96), label("Person", 99)]


@pytest.mark.parametrize(
    ("people", "labels", "place", "taken_at", "expected"),
    [
        (
            ["Ana", None, None], BEACH, "Lagos, Portugal", JULY,
            "Ana and 2 others on a beach in Lagos, Portugal · July 2024",
        ),
        (["Ana"], BEACH, None, None, "Ana on a beach"),
        (["Ana", "Ben"], [], None, JULY, "Ana and Ben · July 2024"),
        (["Ana", "Ben", "Cy"], [], None, None, "Ana, Ben and Cy"),
        (["Ana", "Ben", "Cy", "Di"], [], None, None, "Ana, Ben and 2 others"),
        (["Ana", "Ben", None], [], None, None, "Ana, Ben and 1 other"),
        (["Ana", "Ana"], [], None, None, "Ana"),
        ([None], BEACH, None, None, "A person on a beach"),
        ([None, None, None], [], "Porto, Portugal", None, "3 people in Porto, Portugal"),
        ([], BEACH, "Lagos, Portugal", JULY, "A beach in Lagos, Portugal · July 2024"),
        ([], [label("Dog", 97), label("Park", 90)], None, date(2023, 3, 1), "A dog in a park · March 2023"),
        ([], [label("Beach", 60)], "Lagos, Portugal", None, "Lagos, Portugal"),  # unsure scene is left out
        # no subject or scene phrase: the tags found stand for the subject (issue 12: every analysed photo gets one)
        ([], [label("Gun", 99), label("Tree", 99)], None, JULY, "Gun and tree · July 2024"),
        ([], [label("Cup", 95, ("Tableware",)), label("Tableware", 97), label("Coffee", 90)], None, None,
         "Cup, coffee and tableware"),  # parents last: "Tableware" says less than "Cup"
        ([], [label("Chalkboard", 85), label("Text", 60)], None, None, "Chalkboard"),  # unsure tags left out
        ([], [], None, None, ""),
        (["  "], [], None, None, "A person"),  # a blank name is an unnamed face
    ],
)
def test_caption_is_composed_only_from_what_was_detected(people, labels, place, taken_at, expected):
    assert compose_caption(people, labels, place, taken_at) == expected


def test_caption_prefers_the_most_confident_known_scene():
    labels = [label("Park", 85), label("Beach", 97)]
    assert compose_caption(["Ana"], labels, None, None) == "Ana on a beach"


# ---- cost and run summary -------------------------------------------------------------------------------------


def test_cost_is_calls_times_tier1_price_plus_face_storage():
    calls = {ApiCall.DETECT_LABELS: 1000, ApiCall.DETECT_MODERATION_LABELS: 1000, ApiCall.DETECT_TEXT: 300,
             ApiCall.INDEX_FACES: 600}
    assert estimate_cost(calls) == pytest.approx(2.9)
    assert estimate_cost(calls, face_months=1_000_000) == pytest.approx(2.9 + 10.0)
    assert estimate_cost({}) == 0.0


def test_price_table_is_dated_names_its_source_and_prices_every_api():
    assert set(REKOGNITION_TIER1_PRICES.per_image_usd) == set(ApiCall)
    assert REKOGNITION_TIER1_PRICES.noted_on.year >= 2024
    assert "rekognition/pricing" in REKOGNITION_TIER1_PRICES.source


def test_a_call_without_a_price_is_a_configuration_error():
    partial = REKOGNITION_TIER1_PRICES.__class__(
        per_image_usd={ApiCall.DETECT_LABELS: 0.001}, face_storage_usd_per_face_month=0, noted_on=date.today(),
        source="test",
    )
    with pytest.raises(ConfigurationError):
        estimate_cost({ApiCall.DETECT_TEXT: 1}, partial)


def summary() -> RunSummary:
    s = RunSummary("run-1", photos=10, copied=2, throttles=3)
    s.record_call(ApiCall.DETECT_LABELS, 8)
    s.record_call(ApiCall.DETECT_TEXT)
    s.record_failure("InvalidImageFormat")
    s.estimated_cost_usd = estimate_cost(s.calls)
    return s


def test_run_summary_json_has_every_count():
    data = json.loads(summary().to_json())
    assert data == {
        "run_id": "run-1",
        "photos": 10,
        "copied": 2,
        "calls": {"DetectLabels": 8, "DetectText": 1},
        "throttles": 3,
        "failures": {"InvalidImageFormat": 1},
        "failed_photos": 1,
        "estimated_cost_usd": 0.009,
    }


def test_run_summary_metric_data_is_a_valid_put_metric_data_request():
    stamp = datetime(2024, 7, 14, tzinfo=timezone.utc)
    data = summary().metric_data(timestamp=stamp)
    shape = botocore.session.get_session().get_service_model("cloudwatch").operation_model("PutMetricData").input_shape
    report = ParamValidator().validate({"Namespace": "PhotoOrganizer/Analysis", "MetricData": data}, shape)
    assert not report.has_errors(), report.generate_report()
    calls = {d["Dimensions"][0]["Value"]: d["Value"] for d in data if d["MetricName"] == "ApiCalls"}
    assert calls == {"DetectLabels": 8.0, "DetectText": 1.0}


def test_partition_summaries_add_up():
    merged = summary().merge(summary())
    assert merged.photos == 20 and merged.copied == 4 and merged.throttles == 6
    assert merged.calls == {ApiCall.DETECT_LABELS: 16, ApiCall.DETECT_TEXT: 2}
    assert merged.failures == {"InvalidImageFormat": 2}
    assert merged.estimated_cost_usd == pytest.approx(0.018)


def test_record_built_from_a_photo_carries_its_hashes_and_a_never_analysed_version():
    from photo_organizer.models import ImageFormat, ImageMetadata, Photo

    now = datetime(2024, 7, 14, tzinfo=timezone.utc)
    meta = ImageMetadata(format=ImageFormat.JPEG, width=4, height=3, byte_size=10, sha256="b" * 64, phash=BASE)
    source = Photo(owner="ana", photo_id="p9", status=READY, filename="x.jpg", declared_content_type="image/jpeg",
                   declared_size=10, created_at=now, updated_at=now, metadata=meta)
    record = PhotoRecord.from_photo(source)
    assert (record.owner, record.sha256, record.phash, record.analysis_version) == ("ana", "b" * 64, BASE, 0)
    assert needs_analysis(record, 1)
