"""`photo-organizer cloud smoke`'s steps against the local stack over real HTTP: the same service, with the local
analysis runner standing in for the Glue job (the deploy rehearsal runs it against the cloud code)."""

from __future__ import annotations

from pathlib import Path

import pytest

from photo_organizer.local_stack.analysis_runner import LABEL_MODEL, analyse_library
from photo_organizer.local_stack.client import PhotoApiClient
from photo_organizer.ports.operations import JobRun
from photo_organizer.services.cloud_smoke import CloudSmoke, SmokeSettings

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
ROOT = Path(__file__).resolve().parents[2]


class LocalAnalysisJob:
    """The local backend's analysis run behind the JobRunner port: it runs to the end when started."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self.runs: list[int] = []

    def start(self, job_name: str) -> str:
        summary = analyse_library(self._data_dir, workers=1, label_model=ROOT / LABEL_MODEL)
        self.runs.append(summary.photos)
        return f"local-{len(self.runs)}"

    def run(self, job_name: str, run_id: str) -> JobRun:
        return JobRun(run_id, "SUCCEEDED")


def test_smoke_passes_on_the_local_stack_and_leaves_the_library_as_it_was(stack):
    user, _ = stack.identity.add_user("smoky", "smoky's long password")
    job = LocalAnalysisJob(stack.settings.data_dir)
    sample = (ROOT / "samples" / "coffee_exif_gps.jpg").read_bytes()
    with PhotoApiClient(stack.url, stack.identity.issue_token(user)) as client:
        before = client.all_photos()
        report = CloudSmoke(client, job, SmokeSettings(analysis_job="analyze", poll_interval_s=0.2,
                                                       search_timeout_s=30)).run(sample, run_id="e2e")
        after = client.all_photos()
    assert report.ok, [(s.name, s.detail) for s in report.steps if not s.ok]
    assert job.runs == [1]  # exactly the smoke photo was analysed
    analysed = next(s for s in report.steps if s.name == "analysed")
    assert "tags:" in analysed.detail and analysed.detail != "tags: none"
    assert before == after == []
