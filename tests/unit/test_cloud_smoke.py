"""The post-deploy smoke test's steps, against an in-memory deployment (the rehearsal runs it for real)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from photo_organizer.ports.operations import JobRun
from photo_organizer.services.cloud_smoke import CloudSmoke, SmokeFailedError, SmokeSettings, unique_jpeg

SAMPLE = (Path(__file__).resolve().parents[2] / "samples" / "coffee_exif_gps.jpg").read_bytes()


class NotFound(Exception):
    status = 404


class FakeDeployment:
    """The API and the Glue job of a deployment that works, with switches to break one stage."""

    def __init__(self, *, status: str = "READY", job_state: str = "SUCCEEDED", indexes: bool = True,
                 analyses: bool = True) -> None:
        self.photos: dict[str, dict] = {}
        self.index: set[str] = set()
        self.uploads: list[tuple[bytes, str]] = []
        self.status, self.job_state, self.indexes, self.analyses = status, job_state, indexes, analyses
        self.calls: list[str] = []

    # SmokeApi
    def upload_bytes(self, data: bytes, filename: str, content_type: str) -> str:
        self.calls.append("upload")
        photo_id = f"p{len(self.photos) + 1}"
        self.uploads.append((data, filename))
        self.photos[photo_id] = {"photo_id": photo_id, "filename": filename, "status": self.status}
        if self.indexes and self.status == "READY":
            self.index.add(photo_id)
        return photo_id

    def wait_until_processed(self, photo_id: str, *, timeout: float) -> dict:
        return self.photo(photo_id)

    def photo(self, photo_id: str) -> dict:
        if photo_id not in self.photos:
            raise NotFound(photo_id)
        return self.photos[photo_id]

    def search(self, query: str, *, limit: int = 50) -> dict:
        self.calls.append(f"search {query}")
        return {"items": [{"photo_id": p} for p in sorted(self.index)]}

    def delete(self, photo_id: str) -> None:
        self.calls.append("delete")
        self.photos.pop(photo_id, None)
        self.index.discard(photo_id)

    # JobRunner
    def start(self, job_name: str) -> str:
        self.calls.append(f"start {job_name}")
        if self.analyses:
            for photo in self.photos.values():
                photo["analysis"] = {"tags": ["Cup", "Coffee"]}
        return "jr_1"

    def run(self, job_name: str, run_id: str) -> JobRun:
        return JobRun(run_id, self.job_state, "" if self.job_state == "SUCCEEDED" else "boom")


def smoke(deployment: FakeDeployment, job: str | None = "analyze") -> CloudSmoke:
    ticks = iter(range(10_000))
    settings = SmokeSettings(analysis_job=job, job_timeout_s=50, search_timeout_s=20, poll_interval_s=1)
    return CloudSmoke(deployment, deployment, settings, sleep=lambda _s: None, clock=lambda: float(next(ticks)))


def test_working_deployment_passes_every_step_and_leaves_nothing_behind():
    deployment = FakeDeployment()
    report = smoke(deployment).run(SAMPLE, run_id="r1")
    assert report.ok, report.steps
    assert [s.name for s in report.steps] == [
        "upload", "validated", "analysis job", "analysed", "found by search", "deleted", "gone from search"]
    assert deployment.photos == {} and deployment.index == set()
    assert "search Cup" in deployment.calls  # found through what analysis tagged, not only the filename
    assert deployment.uploads[0][1] == "smoke-r1.jpg"


def test_each_run_uploads_new_bytes_so_the_duplicate_check_never_catches_the_smoke_photo():
    first, second = unique_jpeg(SAMPLE, "smoke r1"), unique_jpeg(SAMPLE, "smoke r2")
    assert hashlib.sha256(first).digest() != hashlib.sha256(second).digest()
    assert first[:2] == b"\xff\xd8" and first.endswith(SAMPLE[2:])


def test_a_marked_sample_still_decodes_to_the_same_pixels():
    from io import BytesIO

    from PIL import Image

    assert Image.open(BytesIO(unique_jpeg(SAMPLE, "x"))).tobytes() == Image.open(BytesIO(SAMPLE)).tobytes()


def test_non_jpeg_sample_is_refused_with_a_clear_error():
    with pytest.raises(SmokeFailedError, match="JPEG"):
        unique_jpeg(b"\x89PNG....", "x")


def test_rejected_upload_fails_the_validated_step_and_still_deletes_the_photo():
    deployment = FakeDeployment(status="REJECTED")
    report = smoke(deployment).run(SAMPLE, run_id="r1")
    assert not report.ok
    failed = [s for s in report.steps if not s.ok]
    assert [s.name for s in failed] == ["validated"] and "REJECTED" in failed[0].detail
    assert "start analyze" not in deployment.calls
    assert deployment.photos == {}


def test_failed_glue_run_is_reported_with_its_state_and_message():
    deployment = FakeDeployment(job_state="FAILED")
    report = smoke(deployment).run(SAMPLE, run_id="r1")
    step = next(s for s in report.steps if s.name == "analysis job")
    assert not step.ok and "FAILED" in step.detail and "boom" in step.detail
    assert deployment.photos == {}


def test_job_that_analyses_nothing_fails_the_analysed_step():
    deployment = FakeDeployment(analyses=False)
    report = smoke(deployment).run(SAMPLE, run_id="r1")
    assert [s.name for s in report.steps if not s.ok] == ["analysed"]


def test_photo_never_reaching_search_fails_after_the_search_timeout():
    deployment = FakeDeployment(indexes=False)
    report = smoke(deployment).run(SAMPLE, run_id="r1")
    step = next(s for s in report.steps if s.name == "found by search")
    assert not step.ok and "not found" in step.detail
    assert deployment.photos == {}


def test_without_an_analysis_job_the_photo_is_found_by_its_filename():
    deployment = FakeDeployment()
    report = smoke(deployment, job=None).run(SAMPLE, run_id="r9")
    assert report.ok
    assert "search smoke-r9.jpg" in deployment.calls and not any(c.startswith("start") for c in deployment.calls)
