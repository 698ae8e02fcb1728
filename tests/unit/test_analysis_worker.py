"""The local server's background analysis worker: what it takes in a batch, how it retries and gives up, how it
resumes after a crash without counting anything twice, how it stops; and GET /analysis/progress's counts.

The store is an in-memory AnalysisStore with the SQLite adapter's semantics (pending = READY and older than the
version; a failure is recorded only while the photo is still unanalysed; saving clears it); the analysis stands in
for AnalysisService.run (the same hooks, in the same order), so these tests need no models.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from photo_organizer.analysis.planning import PhotoRecord
from photo_organizer.analysis.store import AnalysisFailure, PendingPage
from photo_organizer.errors import PermanentError
from photo_organizer.local_stack.analysis_worker import INTERRUPTED, AnalysisWorker
from photo_organizer.models import PhotoStatus
from photo_organizer.services.analysis_progress import AnalysisProgressService

VERSION = 1


class MemoryStore:
    def __init__(self) -> None:
        self.versions: dict[tuple[str, str], int] = {}
        self.failed: dict[tuple[str, str], AnalysisFailure] = {}
        self.saves: list[tuple[str, str]] = []

    def add(self, owner: str, *photo_ids: str) -> None:
        for photo_id in photo_ids:
            self.versions[(owner, photo_id)] = 0

    def pending(self, current_version, *, owner=None, limit=500, after=None) -> PendingPage:
        rows = [PhotoRecord(owner=o, photo_id=p, status=PhotoStatus.READY, analysis_version=v)
                for (o, p), v in sorted(self.versions.items()) if v < current_version and owner in (None, o)]
        return PendingPage(photos=rows, next_key=None)

    def analysed(self, owner, *, min_version):
        return [PhotoRecord(owner=o, photo_id=p, status=PhotoStatus.READY, analysis_version=v)
                for (o, p), v in sorted(self.versions.items()) if o == owner and v >= min_version]

    def save(self, owner: str, photo_id: str) -> bool:
        if self.versions.get((owner, photo_id), VERSION) >= VERSION:
            return False
        self.versions[(owner, photo_id)] = VERSION
        self.failed.pop((owner, photo_id), None)
        self.saves.append((owner, photo_id))
        return True

    def record_failure(self, owner, photo_id, *, analysis_version, reason) -> int:
        if self.versions.get((owner, photo_id), analysis_version) >= analysis_version:
            return 0
        before = self.failed.get((owner, photo_id))
        attempts = before.attempts + 1 if before else 1
        self.failed[(owner, photo_id)] = AnalysisFailure(owner, photo_id, analysis_version, reason, attempts,
                                                         datetime.now(UTC))
        return attempts

    def failures(self, owner=None):
        return [f for (o, _), f in sorted(self.failed.items()) if owner in (None, o)]


class Crash(BaseException):
    """The process dying mid-photo: nothing in the worker catches it (as nothing runs after a kill)."""


class FakeAnalysis:
    """AnalysisService.run's contract: photos in id order, on_photo_start before and on_photo_done after each;
    a photo's own failure is recorded and the run goes on."""

    def __init__(self, store: MemoryStore, *, fail: set[str] = frozenset(), crash: set[str] = frozenset(),
                 bug: set[str] = frozenset(), during: threading.Event | None = None) -> None:
        self.store, self.fail, self.crash, self.bug = store, set(fail), set(crash), set(bug)
        self.runs: list[list[str]] = []
        self.during = during

    def run(self, pending, *, run_id, on_photo_done=None, on_photo_start=None):
        self.runs.append([p.photo_id for p in pending])
        for record in sorted(pending, key=lambda p: p.photo_id):
            on_photo_start(record)
            if self.during is not None:
                self.during.set()
            if record.photo_id in self.crash:
                raise Crash
            if record.photo_id in self.bug:
                raise RuntimeError("model blew up")
            if record.photo_id in self.fail:
                self.store.record_failure(record.owner, record.photo_id, analysis_version=VERSION,
                                          reason=f"InvalidImageError: {PermanentError('unreadable')}")
            else:
                self.store.save(record.owner, record.photo_id)
            on_photo_done(record)


def worker(tmp_path, store, analysis, refreshed=None, **kwargs) -> AnalysisWorker:
    kwargs.setdefault("retry_seconds", 0.0)
    return AnalysisWorker(tmp_path / "journal.sqlite3", store=store, make_analysis=lambda: analysis,
                          refresh=(refreshed.append if refreshed is not None else lambda photos: None),
                          version=VERSION, **kwargs)


def ids(records) -> list[str]:
    return [r.photo_id for r in records]


def test_a_batch_is_one_owners_oldest_photos_up_to_the_batch_size(tmp_path):
    store = MemoryStore()
    store.add("ann", "p3", "p1", "p2")
    store.add("bob", "q1")
    w = worker(tmp_path, store, FakeAnalysis(store), batch_size=2)
    assert ids(w.next_batch()) == ["p1", "p2"]
    assert w.run_once() == 2
    assert ids(w.next_batch()) == ["p3"]  # the owner's rest before the next owner, never mixed
    assert w.run_once() == 1 and ids(w.next_batch()) == ["q1"]
    assert w.run_once() == 1 and w.run_once() == 0
    assert store.saves == [("ann", "p1"), ("ann", "p2"), ("ann", "p3"), ("bob", "q1")]


def test_each_batch_is_regrouped_and_reindexed_once(tmp_path):
    store, refreshed = MemoryStore(), []
    store.add("ann", "p1", "p2", "p3")
    w = worker(tmp_path, store, FakeAnalysis(store), refreshed)
    w.run_once()
    assert [ids(batch) for batch in refreshed] == [["p1", "p2", "p3"]]


def test_photos_that_arrive_together_are_analysed_in_one_run(tmp_path):
    store = MemoryStore()
    analysis = FakeAnalysis(store)
    w = worker(tmp_path, store, analysis, rescan_seconds=30, settle_seconds=0.05)
    w.start()
    try:
        store.add("ann", "p1", "p2", "p3")
        w.wake()  # the ingest hook: one wake for the photos uploaded together
        for _ in range(400):
            if len(store.saves) == 3:
                break
            threading.Event().wait(0.025)
    finally:
        w.stop()
    assert analysis.runs == [["p1", "p2", "p3"]]


def test_a_failing_photo_is_retried_then_left_failed_and_never_blocks_the_others(tmp_path):
    store = MemoryStore()
    store.add("ann", "bad", "good1")
    w = worker(tmp_path, store, FakeAnalysis(store, fail={"bad"}), max_attempts=3)
    assert w.run_once() == 2
    store.add("ann", "good2")
    assert w.run_once() == 2 and w.run_once() == 1  # bad again (attempt 2, 3) beside the new photo
    assert w.run_once() == 0 and w.next_batch() == []  # given up after 3
    assert store.failed[("ann", "bad")].attempts == 3 and store.failed[("ann", "bad")].reason.startswith("Invalid")
    assert sorted(store.saves) == [("ann", "good1"), ("ann", "good2")]
    progress = AnalysisProgressService(store, version=VERSION, max_attempts=3).of("ann")
    assert progress.model_dump() == {"waiting": 0, "analysing": 0, "done": 2, "failed": 1}


def test_a_failed_photo_waits_a_moment_before_its_next_attempt(tmp_path):
    store = MemoryStore()
    store.add("ann", "bad")
    w = worker(tmp_path, store, FakeAnalysis(store, fail={"bad"}), retry_seconds=3600)
    assert w.run_once() == 1
    assert w.next_batch() == []  # paused, not spun on


def test_an_unexpected_error_is_that_photos_failure_and_the_rest_follow(tmp_path):
    store = MemoryStore()
    store.add("ann", "p1", "p2", "p3")
    w = worker(tmp_path, store, FakeAnalysis(store, bug={"p2"}), retry_seconds=3600)
    w.run_once()
    assert store.failed[("ann", "p2")].reason == "RuntimeError: model blew up"
    assert store.saves == [("ann", "p1")]
    assert w.run_once() == 1  # p3 was not started: it comes next; p2 waits before its second attempt
    assert store.saves == [("ann", "p1"), ("ann", "p3")] and store.failed[("ann", "p2")].attempts == 1


def test_after_a_crash_mid_photo_the_next_start_resumes_without_counting_twice(tmp_path):
    store, refreshed = MemoryStore(), []
    store.add("ann", "p1", "p2", "p3")
    first = worker(tmp_path, store, FakeAnalysis(store, crash={"p2"}), refreshed)
    with pytest.raises(Crash):
        first.run_once()  # p1 saved but not yet re-indexed, p2 half-way, p3 not started
    assert store.saves == [("ann", "p1")] and refreshed == []

    second = worker(tmp_path, store, FakeAnalysis(store), refreshed)
    second.recover()
    assert store.failed[("ann", "p2")].attempts == 1 and store.failed[("ann", "p2")].reason == INTERRUPTED
    assert [sorted(ids(batch)) for batch in refreshed] == [["p1", "p2"]]  # p1 reaches search after all
    assert second.run_once() == 2 and second.run_once() == 0
    assert store.saves == [("ann", "p1"), ("ann", "p2"), ("ann", "p3")]  # each photo analysed once
    assert ("ann", "p2") not in store.failed  # a success clears the failure
    third = worker(tmp_path, store, FakeAnalysis(store), refreshed)
    third.recover()
    assert len(refreshed) == 2  # the journal was emptied: nothing is replayed a second time


def test_a_photo_that_keeps_killing_the_process_is_given_up(tmp_path):
    store = MemoryStore()
    store.add("ann", "deadly", "fine")
    for _ in range(3):
        w = worker(tmp_path, store, FakeAnalysis(store, crash={"deadly"}), max_attempts=3)
        w.recover()
        with pytest.raises(Crash):
            w.run_once()
    last = worker(tmp_path, store, FakeAnalysis(store, crash={"deadly"}), max_attempts=3)
    last.recover()
    assert store.failed[("ann", "deadly")].attempts == 3
    assert last.run_once() == 1 and store.saves == [("ann", "fine")]


def test_stopping_leaves_unstarted_photos_waiting_and_counts_no_attempt(tmp_path):
    store = MemoryStore()
    store.add("ann", "p1", "p2", "p3")
    w = worker(tmp_path, store, FakeAnalysis(store))
    w._stop.set()  # stop() was called while the batch was being listed
    assert w.run_once() == 3
    assert store.saves == [] and store.failed == {}
    assert ids(store.pending(VERSION).photos) == ["p1", "p2", "p3"]
    w2 = worker(tmp_path, store, FakeAnalysis(store))
    w2.recover()
    assert store.failed == {}  # a clean stop leaves no interrupted photo behind


def test_progress_counts_the_photo_in_hand_as_analysing(tmp_path):
    store = MemoryStore()
    store.add("ann", "p1", "p2")
    store.add("bob", "q1")
    in_hand = threading.Event()
    release = threading.Event()

    class Slow(FakeAnalysis):
        def run(self, pending, **kwargs):
            start = kwargs["on_photo_start"]

            def hold(record):
                start(record)
                in_hand.set()
                release.wait(10)

            return super().run(pending, **{**kwargs, "on_photo_start": hold})

    w = worker(tmp_path, store, Slow(store))
    progress = AnalysisProgressService(store, version=VERSION, max_attempts=3, analysing=w.analysing)
    runner = threading.Thread(target=w.run_once)
    runner.start()
    try:
        assert in_hand.wait(10)
        assert progress.of("ann").model_dump() == {"waiting": 1, "analysing": 1, "done": 0, "failed": 0}
        assert progress.of("bob").model_dump() == {"waiting": 1, "analysing": 0, "done": 0, "failed": 0}
    finally:
        release.set()
        runner.join(10)
    assert progress.of("ann").model_dump() == {"waiting": 0, "analysing": 0, "done": 2, "failed": 0}


def test_a_photo_is_done_only_once_it_is_reindexed(tmp_path):
    store = MemoryStore()
    store.add("ann", "p1", "p2")
    during_refresh = []
    w = AnalysisWorker(tmp_path / "journal.sqlite3", store=store, make_analysis=lambda: FakeAnalysis(store),
                       refresh=lambda photos: during_refresh.append(progress.of("ann").model_dump()), version=VERSION)
    progress = AnalysisProgressService(store, version=VERSION, max_attempts=3, analysing=w.analysing)
    w.run_once()
    assert store.saves == [("ann", "p1"), ("ann", "p2")]  # saved before the refresh ...
    assert during_refresh == [{"waiting": 0, "analysing": 2, "done": 0, "failed": 0}]  # ... but not searchable yet
    assert progress.of("ann").model_dump() == {"waiting": 0, "analysing": 0, "done": 2, "failed": 0}
