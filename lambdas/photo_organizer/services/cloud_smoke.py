"""The post-deploy smoke test an operator runs against a real stack: one photo through every stage, then gone.

Steps, each timed and reported: upload a sample through the deployed API (POST /uploads + the presigned POST,
exactly as a browser does), wait for the validator to make it READY, start the analysis Glue job and wait for
its run, read the photo's analysis, find it with GET /search, delete it, and check that it is gone from the
library and from search. The photo is deleted whatever step fails, so a failed smoke leaves nothing behind.

The sample's bytes are made unique per run (a JPEG comment holding the run id), so the owner's duplicate check
never turns the smoke photo into a DUPLICATE of an earlier run's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from photo_organizer.errors import PermanentError, PhotoOrganizerError
from photo_organizer.ports.operations import JobRun, JobRunner, SmokeApi

READY = "READY"
JOB_SUCCEEDED = "SUCCEEDED"
JOB_FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "ERROR", "TIMEOUT", "STOPPED", "EXPIRED"})


class SmokeFailedError(PermanentError):
    """A smoke step found the deployment not working; the message says which step and what it saw."""


@dataclass
class _StepNote:
    detail: str = ""


@dataclass(frozen=True)
class SmokeStep:
    name: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass
class SmokeReport:
    run_id: str
    photo_id: str | None = None
    steps: list[SmokeStep] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)


@dataclass(frozen=True)
class SmokeSettings:
    analysis_job: str | None  # None: skip the analysis stage (a deployment without the analysis stack)
    ready_timeout_s: float = 120.0
    job_timeout_s: float = 1800.0
    search_timeout_s: float = 120.0
    poll_interval_s: float = 5.0


def unique_jpeg(jpeg: bytes, marker: str) -> bytes:
    """The same image with a JPEG comment (COM segment) right after SOI: new SHA-256, same pixels and EXIF."""
    if jpeg[:2] != b"\xff\xd8":
        raise SmokeFailedError("the smoke sample must be a JPEG")
    text = marker.encode()[:65000]
    return jpeg[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + jpeg[2:]


class CloudSmoke:
    def __init__(
        self,
        api: SmokeApi,
        jobs: JobRunner,
        settings: SmokeSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._jobs = jobs
        self._settings = settings
        self._sleep = sleep
        self._clock = clock

    def run(self, sample_jpeg: bytes, *, run_id: str) -> SmokeReport:
        report = SmokeReport(run_id=run_id)
        filename = f"smoke-{run_id}.jpg"
        try:
            with self._step(report, "upload") as note:
                report.photo_id = self._api.upload_bytes(unique_jpeg(sample_jpeg, f"smoke {run_id}"), filename,
                                                         "image/jpeg")
                note.detail = report.photo_id
            with self._step(report, "validated") as note:
                photo = self._api.wait_until_processed(report.photo_id, timeout=self._settings.ready_timeout_s)
                if photo.get("status") != READY:
                    raise SmokeFailedError(f"status {photo.get('status')} "
                                           f"({photo.get('rejection_reason') or 'still processing'})")
                note.detail = READY
            query = filename
            if self._settings.analysis_job:
                with self._step(report, "analysis job") as note:
                    outcome = self._run_job(self._settings.analysis_job)
                    note.detail = f"{outcome.run_id} {outcome.state}"
                with self._step(report, "analysed") as note:
                    analysis = self._api.photo(report.photo_id).get("analysis") or {}
                    if not analysis:
                        raise SmokeFailedError("the job succeeded but the photo has no analysis")
                    tags = analysis.get("tags") or []
                    query = tags[0] if tags else filename
                    note.detail = f"tags: {', '.join(tags[:5]) or 'none'}"
            with self._step(report, "found by search") as note:
                self._wait_for_search(query, report.photo_id, present=True)
                note.detail = f"q={query!r}"
        except PhotoOrganizerError:
            pass  # recorded on its step; the photo is still deleted below
        finally:
            if report.photo_id is not None:
                self._clean_up(report, report.photo_id, filename)
        return report

    def _clean_up(self, report: SmokeReport, photo_id: str, filename: str) -> None:
        try:
            self._delete(report, photo_id, filename)
        except PhotoOrganizerError:
            pass  # recorded on its step

    def _delete(self, report: SmokeReport, photo_id: str, filename: str) -> None:
        with self._step(report, "deleted"):
            self._api.delete(photo_id)
            try:
                self._api.photo(photo_id)
            except Exception as exc:  # the client's 404 (any client: only "it is gone" matters here)
                if getattr(exc, "status", None) != 404:
                    raise SmokeFailedError(f"GET after delete failed: {exc}") from exc
            else:
                raise SmokeFailedError("the photo is still served after DELETE")
        with self._step(report, "gone from search"):
            self._wait_for_search(filename, photo_id, present=False)

    def _run_job(self, job_name: str) -> JobRun:
        run_id = self._jobs.start(job_name)
        deadline = self._clock() + self._settings.job_timeout_s
        while True:
            outcome = self._jobs.run(job_name, run_id)
            if outcome.state in JOB_FINAL_STATES:
                if outcome.state != JOB_SUCCEEDED:
                    raise SmokeFailedError(f"job run {run_id} ended {outcome.state}: {outcome.error or 'no message'}")
                return outcome
            if self._clock() > deadline:
                raise SmokeFailedError(f"job run {run_id} still {outcome.state} after {self._settings.job_timeout_s:.0f} s")
            self._sleep(self._settings.poll_interval_s)

    def _wait_for_search(self, query: str, photo_id: str, *, present: bool) -> None:
        """The index follows the table through a stream: poll until the photo shows up (or is gone)."""
        deadline = self._clock() + self._settings.search_timeout_s
        while True:
            items = self._api.search(query, limit=100).get("items", [])
            if any(item.get("photo_id") == photo_id for item in items) == present:
                return
            if self._clock() > deadline:
                state = "not found" if present else "still found"
                raise SmokeFailedError(f"{state} by GET /search?q={query} after {self._settings.search_timeout_s:.0f} s")
            self._sleep(min(self._settings.poll_interval_s, 2.0))

    @contextmanager
    def _step(self, report: SmokeReport, name: str) -> Iterator[_StepNote]:
        """Times the block and records it as a step: failed with the error, or passed with the note's detail."""
        started = self._clock()
        note = _StepNote()
        try:
            yield note
        except PhotoOrganizerError as exc:
            report.steps.append(SmokeStep(name, False, self._clock() - started, str(exc)))
            raise
        except Exception as exc:  # an HTTP or SDK failure: report it as this step's failure, never a traceback
            report.steps.append(SmokeStep(name, False, self._clock() - started, f"{type(exc).__name__}: {exc}"))
            raise SmokeFailedError(f"{name}: {exc}") from exc
        report.steps.append(SmokeStep(name, True, self._clock() - started, note.detail))
