"""Ports of operator commands against a deployment (the post-deploy smoke test)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class SmokeApi(Protocol):
    """What the smoke test needs of the deployed HTTP API (photo_organizer.local_stack.client.PhotoApiClient)."""

    def upload_bytes(self, data: bytes, filename: str, content_type: str) -> str: ...
    def wait_until_processed(self, photo_id: str, *, timeout: float) -> dict: ...
    def photo(self, photo_id: str) -> dict: ...
    def search(self, query: str, *, limit: int = 50) -> dict: ...
    def delete(self, photo_id: str) -> None: ...


@dataclass(frozen=True)
class JobRun:
    run_id: str
    state: str
    error: str = ""


class JobRunner(Protocol):
    """Starts a batch job (the analysis Glue job) and reports its run."""

    def start(self, job_name: str) -> str: ...
    def run(self, job_name: str, run_id: str) -> JobRun: ...
