"""The local feedback dataset forgets one owner's lines on account erasure: other owners' lines stay, in order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from photo_organizer.adapters.local.feedback_files import FileFeedbackDataset
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
    assert not list((tmp_path / "datasets").rglob("*.erasing")), "no temporary file left"
