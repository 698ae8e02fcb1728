"""Analysis while serving: one background thread of the serving process analyses what was uploaded, regroups
people and re-indexes the photos, so a new photo gets its tags, faces and caption within seconds, with no restart.

What to analyse is not a queue of its own: it is the library's own state (READY photos whose analysis is older
than the current version, AnalysisStore.pending), so nothing is lost when the process dies and `photo-organizer
analyze` on the stopped library sees the same work. The ingest hook only wakes the thread; a rescan every few
seconds finds anything else (photos left from before a restart). Photos that arrive together are taken together:
after a wake the thread waits a moment, then analyses up to `batch_size` photos of one owner in one run (near
duplicates among them are copied, not analysed twice) and regroups that owner's people once.

Crash-safe: the photo being analysed and the photos analysed but not yet re-indexed are written to a small SQLite
file first. On the next start a photo left "analysing" counts one failed attempt ("interrupted"), so a photo that
kills the process cannot do it forever, and photos left "analysed" are re-indexed. Saving an analysis is
conditional on the stored version, so nothing is counted or written twice. A photo whose analysis failed
`max_attempts` times is left failed, with its reason in the analysis store, and never blocks the others; earlier
failures are retried after a short pause.

The single search-index writer: this thread writes through the serving process's one index object (bootstrap keeps
one per folder and process) and holds it only for the short re-index of a batch, never during analysis. It never
calls the API handler. The serving process holds bootstrap.library_writer_lock, so a batch `photo-organizer
analyze` refuses to run meanwhile.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from photo_organizer.analysis.costs import RunSummary
from photo_organizer.analysis.planning import PhotoRecord
from photo_organizer.models import PhotoStatus
from photo_organizer.ports.analysis import AnalysisStore
from photo_organizer.local_stack.queue import SECURE_DELETE
from photo_organizer.services.analysis_progress import LOCAL_MAX_ATTEMPTS

logger = logging.getLogger(__name__)

ANALYSING, ANALYSED = "analysing", "analysed"
INTERRUPTED = "interrupted: the server stopped while analysing this photo"


class Analysis(Protocol):
    """What the worker runs: AnalysisService.run."""

    def run(self, pending: list[PhotoRecord], *, run_id: str,
            on_photo_done: Callable[[PhotoRecord], None] | None = None,
            on_photo_start: Callable[[PhotoRecord], None] | None = None) -> RunSummary: ...


class _Stopping(Exception):
    """Raised before a photo when the worker is stopping: the photo stays waiting, no attempt is counted."""


class AnalysisWorker:
    def __init__(
        self,
        journal: Path,
        *,
        store: AnalysisStore,
        make_analysis: Callable[[], Analysis],
        refresh: Callable[[list[PhotoRecord]], None],
        version: int,
        max_attempts: int = LOCAL_MAX_ATTEMPTS,
        batch_size: int = 8,
        settle_seconds: float = 0.2,
        rescan_seconds: float = 5.0,
        retry_seconds: float = 2.0,
    ) -> None:
        self._journal = journal
        self._store = store
        self._make_analysis = make_analysis
        self._refresh = refresh
        self.version = version
        self.max_attempts = max_attempts
        self.batch_size = batch_size
        self._settle = settle_seconds
        self._rescan = rescan_seconds
        self._retry = retry_seconds
        self._analysis: Analysis | None = None
        self._busy: dict[str, set[str]] = {}
        self._not_before: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        journal.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS in_progress (owner TEXT NOT NULL, photo_id TEXT NOT NULL,"
                " state TEXT NOT NULL, since REAL NOT NULL, PRIMARY KEY (owner, photo_id))"
            )

    # ---- life cycle -----------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="local-analysis", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Finishes the photo in hand (about a second), leaves the rest waiting, and returns."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def wake(self, *_: object) -> None:
        """A photo became READY (the ingest hook): analyse soon."""
        self._wake.set()

    def analysing(self, owner: str) -> set[str]:
        with self._lock:
            return set(self._busy.get(owner, ()))

    # ---- one round ------------------------------------------------------------------------------------------------

    def recover(self) -> None:
        """What a previous process left in the journal: photos it was analysing count one failed attempt, photos
        it analysed but did not re-index are re-indexed now."""
        with self._connect() as db:
            rows = db.execute("SELECT owner, photo_id, state FROM in_progress ORDER BY since").fetchall()
        interrupted = [PhotoRecord(owner=o, photo_id=p, status=PhotoStatus.READY) for o, p, s in rows if s == ANALYSING]
        analysed = [PhotoRecord(owner=o, photo_id=p, status=PhotoStatus.READY) for o, p, s in rows if s == ANALYSED]
        for record in interrupted:
            attempts = self._store.record_failure(record.owner, record.photo_id, analysis_version=self.version,
                                                  reason=INTERRUPTED)
            logger.warning("photo analysis was interrupted", extra={"photo_id": record.photo_id, "attempts": attempts})
        if interrupted or analysed:
            self._refresh([*analysed, *interrupted])
        self._forget([*interrupted, *analysed])

    def run_once(self) -> int:
        """Analyses, regroups and re-indexes one batch; returns how many photos it took (0: nothing to do)."""
        batch = self.next_batch()
        if not batch:
            return 0
        if self._analysis is None:
            self._analysis = self._make_analysis()  # loads the models (about a second), once
        handled: list[PhotoRecord] = []
        current: list[PhotoRecord] = []

        def started(record: PhotoRecord) -> None:
            if self._stop.is_set():
                raise _Stopping
            self._mark(record, ANALYSING)
            current[:] = [record]

        def finished(record: PhotoRecord) -> None:
            self._mark(record, ANALYSED)
            handled.append(record)
            current.clear()

        started_at = time.monotonic()
        try:
            self._analysis.run(batch, run_id=uuid.uuid4().hex[:12], on_photo_start=started, on_photo_done=finished)
        except _Stopping:
            pass
        except Exception as exc:  # not a photo's own failure (those are recorded by the run): this photo's anyway
            logger.exception("photo analysis crashed")
            for record in list(current):
                self._store.record_failure(record.owner, record.photo_id, analysis_version=self.version,
                                           reason=f"{type(exc).__name__}: {exc}"[:500])
                finished(record)
        analysed_at = time.monotonic()
        if handled:
            self._refresh(handled)
        self._forget(handled)
        logger.info("analysed %d photos in %.2f s, regrouped and re-indexed in %.2f s", len(handled),
                    analysed_at - started_at, time.monotonic() - analysed_at)
        self._pause_failed(batch)
        return len(batch)

    def next_batch(self) -> list[PhotoRecord]:
        """Up to batch_size waiting photos of one owner, oldest first; skips photos that failed max_attempts
        times and, for a short while, those that failed just now."""
        given_up = {
            (f.owner, f.photo_id)
            for f in self._store.failures()
            if f.analysis_version == self.version and f.attempts >= self.max_attempts
        }
        now = time.monotonic()
        batch: list[PhotoRecord] = []
        after = None
        while True:
            page = self._store.pending(self.version, limit=500, after=after)
            for record in page.photos:
                key = (record.owner, record.photo_id)
                if key in given_up or self._not_before.get(key, 0.0) > now:
                    continue
                if batch and record.owner != batch[0].owner:
                    return batch
                batch.append(record)
                if len(batch) >= self.batch_size:
                    return batch
            after = page.next_key
            if after is None:
                return batch

    # ---- the thread -----------------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self.recover()
        except Exception:
            logger.exception("could not recover the analysis journal")
        try:  # the models load now, not when the first photo arrives (about a second on an idle machine)
            if self._analysis is None and not self._stop.is_set():
                self._analysis = self._make_analysis()
        except Exception:
            logger.exception("the analysis models could not be loaded; retrying when photos wait")
        while not self._stop.is_set():
            try:
                if self.run_once():
                    continue
            except Exception:  # models missing, library unreadable: say so, keep serving, look again later
                logger.exception("background analysis failed; retrying in %.0f s", self._rescan)
            self._wake.wait(self._rescan)
            if self._wake.is_set() and not self._stop.is_set():
                self._stop.wait(self._settle)  # photos uploaded together become ready together: one batch
            self._wake.clear()

    # ---- journal --------------------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._journal, timeout=30)
        db.execute(SECURE_DELETE)  # finished photos' rows (owner ids) are zeroed, not left in free space
        return db

    def _mark(self, record: PhotoRecord, state: str) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO in_progress VALUES (?, ?, ?, ?)",
                       (record.owner, record.photo_id, state, time.time()))
        with self._lock:  # "analysing" until re-indexed: done means searchable
            self._busy.setdefault(record.owner, set()).add(record.photo_id)

    def _forget(self, records: list[PhotoRecord]) -> None:
        with self._connect() as db:
            db.executemany("DELETE FROM in_progress WHERE owner = ? AND photo_id = ?",
                           [(r.owner, r.photo_id) for r in records])
        with self._lock:
            for record in records:
                self._busy.get(record.owner, set()).discard(record.photo_id)

    def _pause_failed(self, batch: list[PhotoRecord]) -> None:
        ids = {(r.owner, r.photo_id) for r in batch}
        now = time.monotonic()
        for owner in {r.owner for r in batch}:
            for failure in self._store.failures(owner):
                key = (failure.owner, failure.photo_id)
                if key in ids and failure.analysis_version == self.version:
                    self._not_before[key] = now + self._retry * failure.attempts


def serving_worker(data_dir: Path, settings, *, label_model: Path | None = None) -> AnalysisWorker:
    """The worker of a LocalStack on data_dir: the CPU models of `photo-organizer analyze`, its own services (the
    people hook is swapped while regrouping) sharing the process's one search index."""
    from photo_organizer import bootstrap
    from photo_organizer.local_stack.analysis_runner import LABEL_MODEL, LOCAL_ANALYSIS, refresh_with

    model = label_model or _label_model(bootstrap.repository_root() / LABEL_MODEL)
    own = bootstrap.build_services(settings)

    def make_analysis():
        service = bootstrap.local_analysis(data_dir, model, LOCAL_ANALYSIS)
        warm_up(service, own)
        return service

    return AnalysisWorker(
        data_dir / "analysis-worker.sqlite3",
        store=own.analysis,
        make_analysis=make_analysis,
        refresh=lambda photos: refresh_with(own, photos),
        version=LOCAL_ANALYSIS.analysis_version,
    )


def _label_model(in_checkout: Path) -> Path:
    from photo_organizer.local_stack.analysis_runner import LABEL_MODEL

    return in_checkout if in_checkout.is_file() else LABEL_MODEL


def warm_up(service, services) -> None:
    """Loads what the first photo would otherwise wait for (the models load lazily: labels, faces, OCR, moderation,
    and MiniLM for the index) by analysing a blank picture; nothing is stored."""
    import io

    from PIL import Image

    from photo_organizer.analysis.models import AnalysisPlan, ApiCall

    blank = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(blank, format="JPEG")
    plan = AnalysisPlan(owner="warm-up", photo_id="warm-up", analysis_version=1, calls=frozenset(ApiCall))
    try:
        service.analyzer.analyze(blank.getvalue(), plan)
        if services.embed is not None:
            services.embed(["warm up"])
    except Exception:  # a model that cannot load fails the first photo instead, with its reason recorded
        logger.warning("warming up the analysis models failed", exc_info=True)
