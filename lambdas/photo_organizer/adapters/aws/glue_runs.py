"""Glue job runs for operator commands (the post-deploy smoke test): start one, read its state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from photo_organizer.adapters.aws.clients import LazyClient
from photo_organizer.adapters.aws.errors import error_code, translate
from photo_organizer.errors import ConflictError
from photo_organizer.ports.operations import JobRun


class GlueJobRunner:
    def __init__(self, *, region: str | None = None, client_factory: Callable[[], Any] | None = None) -> None:
        if client_factory is None:
            import boto3

            client_factory = lambda: boto3.client("glue", region_name=region)  # noqa: E731
        self._client = LazyClient(client_factory)

    def start(self, job_name: str) -> str:
        try:
            return self._client().start_job_run(JobName=job_name)["JobRunId"]
        except ClientError as exc:
            if error_code(exc) == "ConcurrentRunsExceededException":
                # The nightly run (or another operator's) is under way: it would analyse the photo too, but its
                # outcome is not ours to wait for. Say so rather than report a broken deployment.
                raise ConflictError(f"job {job_name} is already running: run the smoke again when it ends") from exc
            raise translate(exc, what=f"starting Glue job {job_name}") from exc
        except BotoCoreError as exc:
            raise translate(exc, what=f"starting Glue job {job_name}") from exc

    def run(self, job_name: str, run_id: str) -> JobRun:
        try:
            run = self._client().get_job_run(JobName=job_name, RunId=run_id, PredecessorsIncluded=False)["JobRun"]
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, what=f"reading Glue job run {run_id}") from exc
        return JobRun(run_id=run_id, state=run["JobRunState"], error=run.get("ErrorMessage", ""))
