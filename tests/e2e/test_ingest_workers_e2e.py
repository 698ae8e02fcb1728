"""Ingest in worker processes (LocalStack(ingest_workers=2), what `photo-organizer serve` runs): the unchanged
handler runs in other processes, the serving process indexes what they made READY, duplicates are found across
workers, and a killed worker loses nothing (its batch comes back, as after a crashed Lambda invocation)."""

from __future__ import annotations

import io
import os
import signal
import time

import numpy as np
import pytest
from PIL import Image

from photo_organizer.local_stack.client import PhotoApiClient
from photo_organizer.local_stack.stack import LocalStack


def jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="module")
def workers_stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("ingest-workers"), port=0, analyse=False, ingest_workers=2) as running:
        assert running.ingest_workers.wait_started()
        yield running


def client_of(stack: LocalStack, name: str) -> PhotoApiClient:
    user, _ = stack.identity.add_user(name, "a long enough password")
    return PhotoApiClient(stack.url, stack.identity.issue_token(user))


def worker_pids(stack: LocalStack) -> set[int]:
    return {p.pid for p in stack.ingest_workers._pool._processes.values()}


def test_uploads_are_ingested_in_other_processes_and_indexed_by_the_server(workers_stack):
    pids = worker_pids(workers_stack)
    assert len(pids) == 2 and os.getpid() not in pids
    with client_of(workers_stack, "ana") as client:
        ids = [client.upload_bytes(jpeg(n), f"harbour_{n}.jpg", "image/jpeg") for n in range(6)]
        repeat = client.upload_bytes(jpeg(0), "harbour_again.jpg", "image/jpeg")
        statuses = {pid: client.wait_until_processed(pid)["status"] for pid in [*ids, repeat]}
        ready = {pid for pid, status in statuses.items() if status == "READY"}
        # The server indexes a photo once its worker's invocation returns, a moment after the record reads READY
        # (as the cloud's stream indexer follows the table): searchable soon, not at the same instant.
        deadline = time.monotonic() + 60
        while (found := {item["photo_id"] for item in client.search("harbour")["items"]}) != ready:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert sorted(statuses.values()) == ["DUPLICATE"] + ["READY"] * 6
    assert found == ready
    assert workers_stack.queue.dead_letters() == []


def test_workers_run_at_a_lower_cpu_priority_than_the_server(workers_stack):
    """Ingest is bulk work: the serving process, which answers people meanwhile, gets the CPU first."""
    server = os.getpriority(os.PRIO_PROCESS, 0)
    lowered = min(19, server + workers_stack.settings.background_niceness)
    pids = worker_pids(workers_stack)
    assert workers_stack.settings.background_niceness > 0 and len(pids) == 2
    assert {pid: os.getpriority(os.PRIO_PROCESS, pid) for pid in pids} == dict.fromkeys(pids, lowered)


def test_a_killed_worker_loses_no_upload(workers_stack):
    for pid in worker_pids(workers_stack):
        os.kill(pid, signal.SIGKILL)
    with client_of(workers_stack, "ben") as client:
        ids = [client.upload_bytes(jpeg(100 + n), f"snow_{n}.jpg", "image/jpeg") for n in range(3)]
        statuses = [client.wait_until_processed(pid, timeout=180)["status"] for pid in ids]
    assert statuses == ["READY"] * 3
    assert workers_stack.queue.dead_letters() == []
