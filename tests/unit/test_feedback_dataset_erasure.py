"""The local feedback dataset forgets one owner's lines on account erasure: other owners' lines stay, in order."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from photo_organizer.adapters.local.feedback_files import FileFeedbackDataset
from photo_organizer.errors import StorageUnavailableError
from photo_organizer.feedback.dataset import record_from_line
from photo_organizer.feedback.models import FeedbackRecord, FeedbackType, new_feedback_id

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def event(owner: str, minutes: int) -> FeedbackRecord:
    return FeedbackRecord(feedback_id=new_feedback_id(), owner=owner, type=FeedbackType.TAG_ADDED,
                          created_at=T0 + timedelta(minutes=minutes), photo_id="p1", tag="x")


def test_forget_owner_removes_only_that_owners_lines_and_is_idempotent(tmp_path) -> None:
    dataset = FileFeedbackDataset(tmp_path / "datasets")
    records = [event("ana", 0), event("bo", 1), event("ana", 2), event("bo", 60 * 24)]  # two day partitions
    dataset.append(records)
    assert dataset.forget_owner("ana") == 2
    kept = [record_from_line(text) for path in dataset.files() for text in path.read_text().splitlines()]
    assert kept == [records[1], records[3]]
    assert dataset.forget_owner("ana") == 0
    assert not [f for f in (tmp_path / "datasets").rglob("*") if f.is_file() and f.suffix != ".jsonl"], \
        "no temporary file left"


def test_a_failed_rewrite_keeps_every_line_leaves_no_temporary_file_and_says_storage(tmp_path, monkeypatch) -> None:
    dataset = FileFeedbackDataset(tmp_path / "datasets")
    records = [event("ana", 0), event("bo", 1)]
    dataset.append(records)
    [part] = dataset.files()
    before = part.read_bytes()
    synced: list[int] = []
    real_fsync = os.fsync

    def full_disk(fd: int) -> None:
        synced.append(fd)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(StorageUnavailableError, match="No space left on device"):
        dataset.forget_owner("ana")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert synced, "the new lines are flushed to disk before the rename"
    assert part.read_bytes() == before, "the old lines stay whole"
    assert [f.name for f in part.parent.iterdir()] == [part.name], "no temporary file left"
    assert dataset.forget_owner("ana") == 1, "erasure can be run again"
