"""`photo-organizer analyze`: the analysis pipeline over a local library, in a pool of worker processes.

Each worker process loads the CPU models once (labels ~0.25 s, faces ~0.4 s, OCR ~0.6 s) and runs the same
AnalysisService as the Glue job on chunks of one owner's photos; the parent merges the run summaries, then
regroups faces into people for every owner who consented. Re-running is cheap: analysed photos are skipped,
and a run stopped half-way (Ctrl-C, crash) resumes with what is left.
"""

from __future__ import annotations

import multiprocessing
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from photo_organizer.analysis.costs import RunSummary
from photo_organizer.analysis.planning import AnalysisSettings, PhotoRecord
from photo_organizer.services.analysis import AnalysisService

LABEL_MODEL = Path("build/models/efficientnet_lite0.onnx")
CHUNK_SIZE = 8
# ImageNet has no person class and local models cost nothing per call: every photo of a consenting owner gets
# the face detector (dlib, ~0.15 s) and every photo the nudity screen (when installed) without waiting for a
# label; a re-analysis detects faces again (local face ids derive from the photo, so they come back the same).
LOCAL_ANALYSIS = AnalysisSettings(
    analysis_version=1, face_trigger_labels=None, moderation_trigger_labels=None, reuse_indexed_faces=False
)

_worker: AnalysisService | None = None


def build_local_analysis(data_dir: Path, label_model: Path, settings: AnalysisSettings = LOCAL_ANALYSIS) -> AnalysisService:
    from photo_organizer.bootstrap import local_analysis

    return local_analysis(data_dir, label_model, settings)


def _init_worker(data_dir: Path, label_model: Path) -> None:
    global _worker
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _worker = build_local_analysis(data_dir, label_model)


def _analyse_chunk(records: list[PhotoRecord], run_id: str) -> RunSummary:
    assert _worker is not None, "worker not initialised"
    return _worker.run(records, run_id=run_id)


def pending_photos(data_dir: Path, version: int = LOCAL_ANALYSIS.analysis_version) -> list[PhotoRecord]:
    from photo_organizer.bootstrap import build_services, local_settings

    store = build_services(local_settings(data_dir)).analysis
    photos, after = [], None
    while True:
        page = store.pending(version, limit=500, after=after)
        photos += page.photos
        after = page.next_key
        if after is None:
            return photos


def chunks(photos: list[PhotoRecord], size: int = CHUNK_SIZE) -> Iterator[list[PhotoRecord]]:
    """One owner per chunk (duplicates are found within an owner), photos in id (upload) order."""
    by_owner: dict[str, list[PhotoRecord]] = {}
    for photo in sorted(photos, key=lambda p: (p.owner, p.photo_id)):
        by_owner.setdefault(photo.owner, []).append(photo)
    for owned in by_owner.values():
        for start in range(0, len(owned), size):
            yield owned[start : start + size]


def analyse_library(
    data_dir: Path,
    *,
    workers: int = 2,
    label_model: Path = LABEL_MODEL,
    on_progress: Callable[[int, int], None] | None = None,
) -> RunSummary:
    """Analyses what needs it, regroups people, and refreshes the search index for those photos."""
    run_id = uuid.uuid4().hex[:12]
    photos = pending_photos(data_dir)
    summary = RunSummary(run_id)
    done = 0
    if on_progress:
        on_progress(done, len(photos))
    if photos:
        # forkserver, not fork: the caller may have threads (a serving gateway, its queue) holding SQLite's or
        # Python's locks at the moment of a fork, and a forked worker then waits for them forever (seen in CI:
        # a worker stuck in sqlite3.connect).
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(data_dir, label_model),
                                 mp_context=context) as pool:
            futures = {pool.submit(_analyse_chunk, chunk, run_id): len(chunk) for chunk in chunks(photos)}
            for future in as_completed(futures):
                summary = summary.merge(future.result())
                done += futures[future]
                if on_progress:
                    on_progress(done, len(photos))
    refresh_owners(data_dir, photos)
    return summary


def refresh_owners(data_dir: Path, photos: list[PhotoRecord]) -> None:
    """People are regrouped once per owner (cheap), then the analysed photos are re-indexed for search."""
    from photo_organizer.bootstrap import build_services, local_settings

    refresh_with(build_services(local_settings(data_dir)), photos)


def refresh_with(services, photos: list[PhotoRecord]) -> None:
    """refresh_owners with services of the caller's own (their people hook is swapped meanwhile: never pass the
    services API requests use)."""
    for owner in sorted({p.owner for p in photos}):
        to_index = {p.photo_id for p in photos if p.owner == owner}
        if services.user_settings.biometric_consent(owner):
            # Regrouping reports the photos whose people changed; they join this one index pass instead of
            # being embedded and written twice.
            hook = services.people.on_people_changed
            services.people.on_people_changed = lambda _owner, photo_ids: to_index.update(photo_ids)
            try:
                services.people.recluster(owner)
            finally:
                services.people.on_people_changed = hook
        if services.search is not None:
            services.search.index_photos(owner, sorted(to_index))
